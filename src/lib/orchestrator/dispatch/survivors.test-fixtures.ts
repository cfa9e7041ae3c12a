/**
 * A dispatcher over the in-memory transport with donors scripted message by message, for the
 * tests that pin what mutation testing found unpinned (dispatcher-*.test.ts). A scripted donor
 * answers offers as the test says (accept, renew, decline, result, silence), so timing-dependent
 * paths (late results, lost leases, capacity waits) run in a fixed order.
 */
import { MemoryTaskNetwork } from './memory-task-transport.ts'
import { dispatcher, type DispatcherInit, type RunPlanOptions, type StepEvent } from './dispatcher.ts'
import { resolvePreferences, router, type RoutingPreferences } from '../route/index.ts'
import { catalogOf, peer } from '../test-fixtures.ts'
import type { AgentCandidate, LocalExecutor, PeerSnapshot, StepOutcome } from '../components.ts'
import type { Plan } from '../plan/index.ts'
import type { TaskMessage, TaskMessageOf } from './task-protocol.ts'

export type Offer = TaskMessageOf<'offer'>

/** A donor whose answers the test writes. */
export interface ScriptedDonor {
  id: string
  /** Offers received, in order. */
  offers: Offer[]
  /** Every message received, in order. */
  received: TaskMessage[]
  send(m: TaskMessage): void
  accept(rid: string, leaseMs?: number): void
  renew(rid: string, leaseMs?: number): void
  decline(rid: string, reason: TaskMessageOf<'decline'>['reason']): void
  result(rid: string, output: unknown): void
}

/** A donor on `net` that calls `onOffer` for each offer (and `onMessage` for everything else). */
export async function scriptedDonor(
  net: MemoryTaskNetwork,
  id: string,
  onOffer: (offer: Offer, d: ScriptedDonor) => void,
  onMessage?: (m: TaskMessage, d: ScriptedDonor) => void
): Promise<ScriptedDonor> {
  const t = net.transport(id)
  await t.start()
  const d: ScriptedDonor = {
    id,
    offers: [],
    received: [],
    send(m) {
      // A killed donor's sends fail; a script carrying on after its kill is not an error.
      t.send('me', m).catch(() => {})
    },
    accept: (rid, leaseMs = 5000) => d.send({ type: 'accept', rid, leaseMs }),
    renew: (rid, leaseMs = 5000) => d.send({ type: 'lease-renew', rid, leaseMs }),
    decline: (rid, reason) => d.send({ type: 'decline', rid, reason }),
    result: (rid, output) => d.send({ type: 'result', rid, output, ms: 1 })
  }
  t.onMessage((_from, m) => {
    d.received.push(m)
    if (m.type === 'offer') {
      d.offers.push(m)
      onOffer(m, d)
    } else onMessage?.(m, d)
  })
  return d
}

/** Answers every offer at once with `output`. */
export const answers =
  (output: (o: Offer) => unknown) =>
  (o: Offer, d: ScriptedDonor): void => {
    d.accept(o.rid)
    d.result(o.rid, output(o))
  }

/** A plan of steps on `capability` (parallel unless dependencies say otherwise). */
export function planOf(steps: Array<{ id: string; capability?: string; deps?: string[] }>, mode: Plan['execution_mode'] = 'dag'): Plan {
  return {
    planner: 'direct',
    execution_mode: mode,
    total_estimated_cost: 0,
    subtasks: steps.map((s) => ({
      id: s.id,
      description: s.id,
      capabilities: [s.capability ?? 'hashing'],
      dependencies: s.deps ?? [],
      input: { from: 'task.input' as const },
      estimated_cost: 0
    }))
  }
}

export const prefs = (p: RoutingPreferences = {}) => resolvePreferences(p, (m) => new Error(m))

/** The submitter: a dispatcher called "me" on `net`, routing over `peers` with the real router. */
export async function submitter(
  net: MemoryTaskNetwork,
  agents: AgentCandidate[],
  peers: PeerSnapshot[] | (() => PeerSnapshot[]),
  init: DispatcherInit = {},
  executor?: LocalExecutor
) {
  const t = net.transport('me')
  await t.start()
  const outcomes: StepOutcome[] = []
  const list = typeof peers === 'function' ? peers : () => peers
  const r = router()({ catalog: catalogOf(agents), peers: { peers: list } })
  const d = dispatcher({ offerTimeoutMs: 500, ...init })({ transport: t, router: r, executor, outcomes: { record: (o) => outcomes.push(o) } })
  await d.start()
  let n = 0
  /** Run `plan`; events are kept in `events` as `status:peer:attempt`. */
  const run = (plan: Plan, opts: Partial<RunPlanOptions> & { events?: string[]; stepEvents?: StepEvent[] } = {}) => {
    const { events, stepEvents, ...rest } = opts
    return d.run(plan, {
      taskId: `t${++n}`,
      input: 'x',
      prefs: prefs({ strategy: 'speed', retry_policy: { max_attempts: 3, backoff_ms: 1, backoff_multiplier: 1 } }),
      signal: new AbortController().signal,
      onStep: (e) => {
        events?.push(`${e.status}:${e.peer}:${e.attempt}`)
        stepEvents?.push(e)
      },
      ...rest
    })
  }
  return { d, t, run, outcomes }
}

export { MemoryTaskNetwork, peer }
