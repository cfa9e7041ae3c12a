import { describe, expect, it, vi } from 'vitest'
import { Budget, BudgetExceededError } from './budget.ts'
import { dispatcher, type StepEvent } from './dispatcher.ts'
import { MemoryTaskNetwork } from './memory-task-transport.ts'
import { donorService } from '../donor/index.ts'
import { createOrchestrator } from '../index.ts'
import { createRouter, resolvePreferences, type RoutingPreferences } from '../route/index.ts'
import { TaskCancelledError } from '../errors.ts'
import { agent, catalogOf, delay, fnExecutor, peer } from '../test-fixtures.ts'
import type { AgentCandidate, StepOutcome } from '../components.ts'
import type { Plan } from '../plan/index.ts'

describe('Budget', () => {
  it('holds, releases and spends; a holder replaces its own hold', () => {
    const b = new Budget(1)
    expect(b.reserve('s1', 0.6)).toBe(true)
    expect(b.available()).toBeCloseTo(0.4)
    expect(b.reserve('s2', 0.6)).toBe(false)
    expect(b.holds('s2')).toBe(false)
    expect(b.reserve('s2', 0.3)).toBe(true)
    // s1 may swap its 0.6 hold for a 0.7 one: its own hold counts as free for it.
    expect(b.fits('s1', 0.7)).toBe(true)
    expect(b.fits('s1', 0.71)).toBe(false)
    b.release('s1')
    expect(b.available()).toBeCloseTo(0.7)
    expect(b.commit('s2')).toBeCloseTo(0.3)
    expect(b.spent).toBeCloseTo(0.3)
    expect(b.reserved).toBe(0)
    expect(b.reserve('s1', 0.7)).toBe(true) // 0.3 + 0.7 fits exactly despite float noise
    expect(b.available()).toBe(0)
  })

  it('without a limit everything fits', () => {
    const b = new Budget()
    expect(b.reserve('a', 1e9)).toBe(true)
    expect(b.available()).toBe(Infinity)
  })

  it('refuses nonsense', () => {
    expect(() => new Budget(-1)).toThrow(RangeError)
    expect(() => new Budget(Number.NaN)).toThrow(RangeError)
    expect(() => new Budget(1).reserve('a', -0.1)).toThrow(RangeError)
  })
})

const a6 = agent('x-agent', ['cap-x'], 0.6, { quality: 0.9 })
const b6 = agent('y-best', ['cap-y'], 0.6, { quality: 0.95 })
const c3 = agent('y-cheap', ['cap-y'], 0.3, { quality: 0.2 })
const z6 = agent('z-agent', ['cap-z'], 0.6, { quality: 0.9 })

function plan(caps: string[], mode: Plan['execution_mode'] = 'parallel'): Plan {
  return {
    subtasks: caps.map((c, i) => ({
      id: `s${i + 1}`,
      description: c,
      capabilities: [c],
      dependencies: [],
      input: { from: 'task.input' as const },
      estimated_cost: 0.3
    })),
    execution_mode: mode,
    total_estimated_cost: 0.3 * caps.length,
    planner: 'deterministic'
  }
}

async function setup(agents: AgentCandidate[], opts: { ms?: number; failFirst?: string; donors?: string[] } = {}) {
  const net = new MemoryTaskNetwork()
  const donors = opts.donors ?? ['donor-a']
  let failures = opts.failFirst != null ? 1 : 0
  const services: Array<ReturnType<ReturnType<typeof donorService>>> = []
  for (const id of donors) {
    const t = net.transport(id)
    await t.start()
    const fns = Object.fromEntries(
      agents.map((a) => [
        a.id,
        async (input: unknown, signal: AbortSignal) => {
          if (id === opts.failFirst && failures-- > 0) throw new Error('boom')
          for (let i = 0; i < (opts.ms ?? 0) / 10 && !signal.aborted; i++) await delay(10)
          return { by: a.name, input }
        }
      ])
    )
    const svc = donorService({ leaseMs: 200 })({ transport: t, executor: fnExecutor(fns, 4) })
    await svc.start()
    services.push(svc)
  }
  const outcomes: StepOutcome[] = []
  const transport = net.transport('submitter')
  const peers = donors.map((d, i) => peer(d, { rttMs: 10 + i, freeWorkers: 4 }))
  const router = createRouter({ catalog: catalogOf(agents), peers: { peers: () => peers } })
  const d = dispatcher({ offerTimeoutMs: 300, runLocallyWhenNoPeer: false })({ transport, router, outcomes: { record: (o) => outcomes.push(o) } })
  await transport.start()
  await d.start()
  const run = (p: Plan, prefs: RoutingPreferences, extra: { signal?: AbortSignal; onStep?: (e: StepEvent) => void } = {}) =>
    d.run(p, {
      taskId: 't1',
      input: 'in',
      prefs: resolvePreferences(
        { strategy: 'quality', retry_policy: { max_attempts: 3, backoff_ms: 5, backoff_multiplier: 1 }, ...prefs },
        (m) => new Error(m)
      ),
      signal: extra.signal ?? new AbortController().signal,
      onStep: extra.onStep
    })
  const paid = (): number => outcomes.filter((o) => o.success).reduce((n, o) => n + o.cost, 0)
  return { net, run, outcomes, paid, services }
}

describe('dispatch under max_cost', () => {
  it('parallel steps share max_cost: the second step sees the first one hold and takes the cheaper agent', async () => {
    const { run, paid } = await setup([a6, b6, c3], { ms: 30 })
    const r = await run(plan(['cap-x', 'cap-y']), { max_cost: 1 })
    expect(r.steps.map((s) => s.agent)).toEqual([a6.id, c3.id])
    expect(r.cost).toBeCloseTo(0.9)
    expect(paid()).toBeLessThanOrEqual(1)
  })

  it('a step that cannot fit in what is left fails with a sentence naming it, its price and what is left; nothing over max_cost is paid', async () => {
    const { run, paid, net } = await setup([a6, z6], { ms: 30 })
    const err = await run(plan(['cap-x', 'cap-z']), { max_cost: 1 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BudgetExceededError)
    expect((err as BudgetExceededError).stepId).toBe('s2')
    expect((err as Error).message).toBe('Step "s2" (cap-z) needs 0.6 credits but only 0.4 of max_cost 1 are left (0 spent, 0.6 held by steps running now)')
    // Only the step that fits was ever offered.
    expect(net.log.filter((l) => l.message.type === 'offer').map((l) => (l.message as { stepId: string }).stepId)).toEqual(['s1'])
    await vi.waitFor(() => {
      expect(paid()).toBeLessThanOrEqual(1)
    })
  })

  it('the budget sentence rounds credits: no float noise from what earlier steps spent', async () => {
    // 0.3 - 0.1 is 0.19999999999999998 in floating point; the user reads 0.2.
    const x1 = agent('x-tenth', ['cap-x'], 0.1)
    const z21 = agent('z-dear', ['cap-z'], 0.21)
    const { run } = await setup([x1, z21])
    const err = await run(plan(['cap-x', 'cap-z'], 'sequential'), { max_cost: 0.3 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BudgetExceededError)
    expect((err as Error).message).toBe('Step "s2" (cap-z) needs 0.21 credits but only 0.2 of max_cost 0.3 are left (0.1 spent)')
  })

  it('sequential steps see what earlier ones spent', async () => {
    const { run } = await setup([a6, b6, c3])
    const r = await run(plan(['cap-x', 'cap-y'], 'sequential'), { max_cost: 1 })
    expect(r.steps.map((s) => s.agent)).toEqual([a6.id, c3.id])
    expect(r.cost).toBeCloseTo(0.9)
  })

  it('a failed attempt releases its hold: the retry is not counted twice', async () => {
    // s1 fails once on donor-a and is retried on donor-b; s2 runs meanwhile. If the failed
    // attempt kept its 0.6, the retry would find only 0.1 left (1 - 0.6 - 0.3) and fail.
    const { run, outcomes } = await setup([a6, c3], { ms: 20, failFirst: 'donor-a', donors: ['donor-a', 'donor-b'] })
    const r = await run(plan(['cap-x', 'cap-y']), { max_cost: 1 })
    expect(outcomes.some((o) => !o.success && o.stepId === 's1')).toBe(true)
    expect(r.steps.map((s) => s.agent)).toEqual([a6.id, c3.id])
    expect(r.cost).toBeCloseTo(0.9)
  })
})

describe('a step run on this peer', () => {
  it('pays no one: the task costs 0', async () => {
    const here = createOrchestrator({
      catalog: catalogOf([a6]),
      peers: { peers: () => [] },
      transport: new MemoryTaskNetwork().transport('me'),
      executor: fnExecutor({ [a6.id]: (i) => ({ i }) })
    })
    await here.start()
    const r = await here.submit({ description: 'cap-x', input: 1 }).done
    expect(r.steps[0]).toMatchObject({ peer: 'me', output: { i: 1 } })
    expect(r.cost).toBe(0)
    expect(here.stats().localRuns).toBe(1)
    // The plan's estimate still says what the agent's price would be on a donor.
    expect(r.plan?.total_estimated_cost).toBeCloseTo(0.6)
  })

  it('is not ruled out by a max_cost below its price (nothing is paid), while a donor at that price is', async () => {
    const transport = new MemoryTaskNetwork().transport('me')
    await transport.start()
    const router = createRouter({ catalog: catalogOf([a6]), peers: { peers: () => [] } })
    const d = dispatcher()({ transport, router, executor: fnExecutor({ [a6.id]: (i) => ({ i }) }) })
    await d.start()
    const prefs = resolvePreferences({ max_cost: 0.1 }, (m) => new Error(m))
    const r = await d.run(plan(['cap-x']), { taskId: 't-here', input: 2, prefs, signal: new AbortController().signal })
    expect(r.steps[0]).toMatchObject({ peer: 'me', output: { i: 2 }, cost: 0 })
    expect(r.cost).toBe(0)
    const { run } = await setup([a6])
    await expect(run(plan(['cap-x']), { max_cost: 0.1 })).rejects.toBeInstanceOf(BudgetExceededError)
  })
})

describe('dispatch cancel', () => {
  it('cancelling moves every unfinished step to cancelled, tells the donors and commits nothing after', async () => {
    const { run, net, outcomes, services } = await setup([a6, b6, z6], { ms: 2000 })
    const p: Plan = { ...plan(['cap-x', 'cap-y', 'cap-z'], 'dag') }
    p.subtasks[2].dependencies = ['s1']
    const controller = new AbortController()
    const events: StepEvent[] = []
    const accepted = new Set<string>()
    const done = run(
      p,
      {},
      {
        signal: controller.signal,
        onStep: (e) => {
          events.push(e)
          if (e.status === 'accepted') accepted.add(e.stepId)
          if (accepted.size === 2) controller.abort()
        }
      }
    )
    await expect(done).rejects.toBeInstanceOf(TaskCancelledError)
    const last = new Map(events.map((e) => [e.stepId, e.status]))
    // s1 and s2 were accepted (running), s3 never started: all three are cancelled.
    expect(Object.fromEntries(last)).toEqual({ s1: 'cancelled', s2: 'cancelled', s3: 'cancelled' })
    await vi.waitFor(() => {
      const cancels = net.log.filter((l) => l.message.type === 'cancel' && l.to === 'donor-a').map((l) => l.message.rid)
      expect(cancels.sort()).toEqual(['t1_s1#1', 't1_s2#1'])
    })
    // The donor stopped both runs (the agent saw the abort) and answers neither: no result comes
    // back and nothing is recorded as a success.
    await vi.waitFor(() => {
      expect(services[0].stats()).toMatchObject({ cancelled: 2, completed: 0 })
    })
    expect(net.log.some((l) => l.message.type === 'result')).toBe(false)
    expect(outcomes.filter((o) => o.success)).toEqual([])
    expect(events.some((e) => e.status === 'succeeded')).toBe(false)
  })
})

describe('orchestrator cancel', () => {
  async function orchestrator() {
    const net = new MemoryTaskNetwork()
    const agents = [agent('upper', ['text-summarization'], 0.1), agent('hasher', ['hashing'], 0.02)]
    const t = net.transport('donor-a')
    await t.start()
    const slow = async (_: unknown, signal: AbortSignal) => {
      while (!signal.aborted) await delay(10)
      return 'late'
    }
    await donorService({ leaseMs: 200 })({ transport: t, executor: fnExecutor(Object.fromEntries(agents.map((a) => [a.id, slow])), 2) }).start()
    const peers = [peer('donor-a')]
    const orch = createOrchestrator(
      { catalog: catalogOf(agents), peers: { peers: () => peers }, transport: net.transport('submitter') },
      { dispatcher: { offerTimeoutMs: 300 } }
    )
    await orch.start()
    return orch
  }

  it('a task cancelled while its first step runs ends both steps as cancelled, once each', async () => {
    const orch = await orchestrator()
    const h = orch.submit({ description: 'summarize this, then hash it', input: 'q' })
    const events: string[] = []
    h.on('step', (e) => {
      events.push(`${e.stepId}:${e.status}`)
      if (e.status === 'accepted') h.cancel()
    })
    await expect(h.done).rejects.toBeInstanceOf(TaskCancelledError)
    expect(events).toEqual(['s1:dispatched', 's1:accepted', 's1:cancelled', 's2:cancelled'])
    expect(orch.tasks()[0]).toMatchObject({ status: 'cancelled', stepsDone: 0 })
  })

  it('a task cancelled once planned, before any step is dispatched, still ends every step as cancelled', async () => {
    const orch = await orchestrator()
    const h = orch.submit({ description: 'summarize this, then hash it', input: 'q' })
    const events: string[] = []
    h.on('progress', (e) => {
      if (e.phase === 'planned') h.cancel()
    })
    h.on('step', (e) => {
      events.push(`${e.stepId}:${e.status}`)
    })
    await expect(h.done).rejects.toBeInstanceOf(TaskCancelledError)
    expect(events).toEqual(['s1:cancelled', 's2:cancelled'])
  })
})
