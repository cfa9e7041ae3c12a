/**
 * The serving side of `/zerostate/plan/1.0.0`: a peer with a loaded model answers
 * other peers' plan requests with its own `LlmEngine`.
 */
import type { Stream } from '@libp2p/interface'
import { framed, logger, type StreamHost } from '../../core/index.ts'
import { toError } from '../errors.ts'
import { PLAN_PROTOCOL_ID, planProtocolDefinition } from '../plan/index.ts'
import type { LlmEngine } from './llm-engine.ts'

const log = logger('orchestrator:plan-service')

/** Answer plan requests on `host` with `engine` (which must be loaded). Returns a stop function. */
export async function servePlans(host: StreamHost, engine: LlmEngine, opts: { timeoutMs?: number } = {}): Promise<() => Promise<void>> {
  await host.handle(PLAN_PROTOCOL_ID, (stream: Stream, peer: string) => {
    void (async () => {
      const f = framed(stream, planProtocolDefinition)
      const signal = AbortSignal.timeout(opts.timeoutMs ?? 120_000)
      try {
        const req = await f.read({ signal })
        if (req.type !== 'plan-request') {
          await f.write({ type: 'plan-error', name: 'InvalidRequest', error: 'expected a plan-request' })
          return
        }
        try {
          const plan = await engine.plan({ description: req.description, capabilities: req.capabilities }, req.catalog, { signal })
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
