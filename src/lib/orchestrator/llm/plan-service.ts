/**
 * The serving side of `/zerostate/plan/1.0.0`: a peer with a loaded model answers
 * other peers' plan requests with its own `LlmEngine`.
 */
import type { Stream } from '@libp2p/interface'
import { framed, logger, type StreamHost } from '../../core/index.ts'
import { PeerBudget, type PeerBudgetInit, type StrikeSink } from '../../mesh/index.ts'
import { toError } from '../errors.ts'
import { PLAN_PROTOCOL_ID, planProtocolDefinition } from '../plan/index.ts'
import type { LlmEngine } from './llm-engine.ts'

const log = logger('orchestrator:plan-service')

/** Per-peer budget of plan requests: a plan costs seconds of a GPU (issue 11 item 11). */
export const PLAN_BUDGET: PeerBudgetInit = { requests: 6, windowS: 60 }

/** Options of `servePlans`. */
export interface ServePlansOptions {
  /** Deadline of one request, in ms. Default 120 s. */
  timeoutMs?: number
  /** How long a peer may take to send its request once the stream is open, in ms. Default 10 s. */
  requestTimeoutMs?: number
  /** The mesh's strike policy (invalid frames, requests over budget). */
  strikes?: StrikeSink
  /** Per-peer request budget. Default PLAN_BUDGET. */
  budget?: PeerBudget
}

/** Answer plan requests on `host` with `engine` (which must be loaded). Returns a stop function. */
export async function servePlans(host: StreamHost, engine: LlmEngine, opts: ServePlansOptions = {}): Promise<() => Promise<void>> {
  const budget = opts.budget ?? new PeerBudget('plan', { strikes: opts.strikes }, PLAN_BUDGET)
  await host.handle(PLAN_PROTOCOL_ID, (stream: Stream, peer: string) => {
    void (async () => {
      const f = framed(stream, planProtocolDefinition, { onInvalid: (err) => opts.strikes?.strike(peer, 'plan', err.name) })
      const signal = AbortSignal.timeout(opts.timeoutMs ?? 120_000)
      try {
        const req = await f.read({ signal: AbortSignal.any([signal, AbortSignal.timeout(opts.requestTimeoutMs ?? 10_000)]) })
        const refused = budget.request(peer)
        if (refused != null) {
          await f.write({ type: 'plan-error', name: refused.name, error: refused.message })
          return
        }
        if (req.type !== 'plan-request') {
          await f.write({ type: 'plan-error', name: 'InvalidRequest', error: 'expected a plan-request' })
          return
        }
        try {
          const plan = await engine.plan(
            { description: req.description, capabilities: req.capabilities, ...(req.input != null ? { inputPreview: req.input } : {}) },
            req.catalog,
            { signal }
          )
          await f.write({ type: 'plan-response', plan })
        } catch (err) {
          const e = toError(err)
          await f.write({ type: 'plan-error', name: e.name, error: e.message.slice(0, 1000) })
        }
      } catch (err) {
        log('plan request from %s failed: %s', peer, toError(err).message)
      } finally {
        await stream.close().catch(() => {})
      }
    })()
  })
  return async () => {
    await host.unhandle(PLAN_PROTOCOL_ID)
  }
}
