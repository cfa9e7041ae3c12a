/**
 * `/zerostate/plan/1.0.0`: ask a peer that advertises the `llm` capability to
 * plan. One short stream per request (plans are rare and slow next to the 5 ms
 * of opening a stream). The serving side is `llm/plan-service.ts`.
 */
import * as v from 'valibot'
import type { Stream } from '@libp2p/interface'
import { defineProtocol, framed } from '../../core/index.ts'
import { logger } from '../../core/index.ts'
import type { PeerDirectory } from '../components.ts'
import { PlannerUnavailableError, LlmPlanError, toError } from '../errors.ts'
import { PlanDraftSchema } from './plan-schema.ts'
import { INPUT_PREVIEW_CHARS, type CapabilityInfo, type Planner } from './planner.ts'
import type { StreamHost } from '../../core/index.ts'
import type { StrikeSink } from '../../mesh/index.ts'

const _log = logger('orchestrator:remote-planner')

/** Protocol id. */
export const PLAN_PROTOCOL_ID = '/zerostate/plan/1.0.0'

const CapabilityInfoSchema = v.object({
  capability: v.pipe(v.string(), v.maxLength(64)),
  agents: v.pipe(v.number(), v.integer(), v.minValue(0)),
  minPrice: v.pipe(v.number(), v.minValue(0)),
  examples: v.pipe(v.array(v.pipe(v.string(), v.maxLength(200))), v.maxLength(4))
})

/** Messages of the plan protocol. */
export const PlanMessageSchema = v.variant('type', [
  v.object({
    type: v.literal('plan-request'),
    description: v.pipe(v.string(), v.minLength(1), v.maxLength(4000)),
    capabilities: v.pipe(v.array(v.pipe(v.string(), v.maxLength(64))), v.maxLength(16)),
    catalog: v.pipe(v.array(CapabilityInfoSchema), v.maxLength(256)),
    /** The task input's preview (PlanRequest.inputPreview); peers before it ignore it. */
    input: v.optional(v.pipe(v.string(), v.maxLength(INPUT_PREVIEW_CHARS + 64)))
  }),
  v.object({ type: v.literal('plan-response'), plan: PlanDraftSchema }),
  v.object({ type: v.literal('plan-error'), name: v.pipe(v.string(), v.maxLength(100)), error: v.pipe(v.string(), v.maxLength(1000)) })
])
/** A plan-protocol message. */
export type PlanMessage = v.InferOutput<typeof PlanMessageSchema>

/** The plan protocol's definition. */
export const planProtocolDefinition = defineProtocol(PLAN_PROTOCOL_ID, PlanMessageSchema, { maxFrameBytes: 128 * 1024 })

/** The capability a peer advertises when it serves plans. */
export const LLM_CAPABILITY = 'llm'

/** Options of the remote planner. */
export interface RemotePlannerInit {
  /** Per-request deadline. Default 60 s. */
  timeoutMs?: number
}

/** A planner that asks peers advertising `llm`, nearest first. */
export function remotePlanner(init: RemotePlannerInit = {}): (components: RemotePlannerComponents) => Planner {
  return (components) => createRemotePlanner(components, init)
}

/** What the remote planner needs. */
export interface RemotePlannerComponents {
  host: StreamHost
  peers: PeerDirectory
  strikes?: StrikeSink
}

function createRemotePlanner(components: RemotePlannerComponents, init: RemotePlannerInit): Planner {
  return {
    name: 'remote',
    async plan(request, catalog: readonly CapabilityInfo[], opts) {
      const candidates = components.peers
        .peers()
        .filter((p) => p.id !== components.host.peerId && p.capabilities.includes(LLM_CAPABILITY))
        .sort((a, b) => (a.rttMs ?? Infinity) - (b.rttMs ?? Infinity))
      if (candidates.length === 0) throw new PlannerUnavailableError('no peer advertises the llm capability')
      const errors: string[] = []
      for (const peer of candidates.slice(0, 3)) {
        const timeout = AbortSignal.timeout(init.timeoutMs ?? 60_000)
        const signal = opts?.signal != null ? AbortSignal.any([opts.signal, timeout]) : timeout
        let stream: Stream | undefined
        try {
          stream = await components.host.openStream(peer.id, PLAN_PROTOCOL_ID, { signal })
          const f = framed(stream, planProtocolDefinition, { onInvalid: (err) => components.strikes?.strike(peer.id, 'plan', err.name) })
          await f.write(
            {
              type: 'plan-request',
              description: request.description,
              capabilities: [...(request.capabilities ?? [])],
              catalog: catalog.slice(0, 256).map((c) => ({ ...c, examples: c.examples.slice(0, 4) })),
              ...(request.inputPreview != null ? { input: request.inputPreview.slice(0, INPUT_PREVIEW_CHARS + 64) } : {})
            },
            { signal }
          )
          const res = await f.read({ signal })
          await stream.close().catch(() => {})
          if (res.type === 'plan-response') return res.plan
          errors.push(`${peer.id}: ${res.type === 'plan-error' ? res.error : 'unexpected answer'}`)
        } catch (err) {
          // A silent or hostile peer must not keep the stream (and a slot of the connection's stream limit).
          stream?.abort(toError(err))
          opts?.signal?.throwIfAborted()
          errors.push(`${peer.id}: ${toError(err).message}`)
        }
      }
      throw new LlmPlanError(`No llm peer produced a plan (${errors.join('; ')})`)
    }
  }
}
