import { beforeAll, describe, expect, it } from 'vitest'
import { loadIdentity, type Identity } from '../core/index.ts'
import { MemoryTaskNetwork } from './dispatch/index.ts'
import { donorService } from './donor/index.ts'
import { PlanValidationError } from './errors.ts'
import { createOrchestrator } from './orchestrator.ts'
import { agent, catalogOf, fnExecutor, peer } from './test-fixtures.ts'
import { CreditLimitError, DailyBudgetExceededError, SpendingGuard, trustService } from './trust/index.ts'

// Issue 12, budgets: max_cost covers verification replicas (the plan's estimate counts them), and a
// task over the profile's allowance or daily budget is refused with a typed error before any step runs.
const hash = agent('hasher', ['hashing'], 0.5)
const catalog = catalogOf([hash])
const fast = { strategy: 'round-robin', retry_policy: { max_attempts: 2, backoff_ms: 1, backoff_multiplier: 1 } } as const

let ids: Identity[]
beforeAll(async () => {
  ids = await Promise.all([loadIdentity(), loadIdentity(), loadIdentity()])
})

async function mesh(limits?: { allowance?: number; dailyBudget?: number }) {
  const net = new MemoryTaskNetwork()
  const users = new Map([['submitter', ids[0].publicKey]])
  let runs = 0
  for (const [i, id] of ['a', 'b'].entries()) {
    users.set(id, ids[i + 1].publicKey)
    const t = net.transport(id)
    await t.start()
    const ex = fnExecutor({
      [hash.id]: (x) => {
        runs++
        return { hash: `h(${String(x)})` }
      }
    })
    await donorService({})({ transport: t, executor: ex }).start()
  }
  const trust = trustService()({ identity: ids[0], users: { userOf: (p) => users.get(p) } })
  await trust.start()
  const spending = limits == null ? undefined : new SpendingGuard({ self: ids[0].publicKey, credits: () => trust.credits(), limits })
  const orch = createOrchestrator({
    catalog,
    peers: { peers: () => [peer('a', { rttMs: 5 }), peer('b', { rttMs: 6 })] },
    transport: net.transport('submitter'),
    trust,
    spending
  })
  await orch.start()
  return { orch, trust, runs: () => runs, spending }
}

describe('budgets (issue 12)', () => {
  it("max_cost covers the verification replica: a budget of one result is refused before anything runs, unless verification is 'none'", async () => {
    const m = await mesh()
    await expect(m.orch.submit({ description: 'h', agent: 'hasher', input: 'x', preferences: { ...fast, max_cost: 0.5 } }).done).rejects.toThrow(
      /estimated cost to 1 credits with verification .*over max_cost 0.5/
    )
    await expect(m.orch.submit({ description: 'h', agent: 'hasher', input: 'x', preferences: { ...fast, max_cost: 0.5 } }).done).rejects.toBeInstanceOf(
      PlanValidationError
    )
    expect(m.runs()).toBe(0)
    const ok = await m.orch.submit({ description: 'h', agent: 'hasher', input: 'x', preferences: { ...fast, max_cost: 1 } }).done
    expect(ok.steps[0].verification).toMatchObject({ replicas: 2, agreed: 2 })
    expect(ok.cost).toBeCloseTo(1)
    expect(ok.plan?.total_estimated_cost).toBeCloseTo(1)
    const none = await m.orch.submit({ description: 'h', agent: 'hasher', input: 'y', preferences: { ...fast, max_cost: 0.5, verification: 'none' } }).done
    expect(none.cost).toBeCloseTo(0.5)
  })

  it('a fresh profile spends its allowance and then is refused with CreditLimitError before any step runs', async () => {
    const m = await mesh({ allowance: 1.5 })
    const r = await m.orch.submit({ description: 'h', agent: 'hasher', input: 'x', preferences: fast }).done
    expect(r.cost).toBeCloseTo(1) // the result and its check
    expect(m.trust.credits()).toMatchObject({ spent: 1, balance: -1 })
    const before = m.runs()
    const refused = m.orch.submit({ description: 'h', agent: 'hasher', input: 'y', preferences: fast }).done
    await expect(refused).rejects.toBeInstanceOf(CreditLimitError)
    await expect(refused).rejects.toThrow(/may spend only 0.5 more \(balance -1 \+ allowance 1.5\)/)
    expect(m.runs()).toBe(before)
    // Without verification the estimate is one result: it fits.
    await m.orch.submit({ description: 'h', agent: 'hasher', input: 'z', preferences: { ...fast, verification: 'none' } }).done
    expect(m.runs()).toBe(before + 1)
  })

  it("a task that would pass today's budget is refused with DailyBudgetExceededError before any step runs", async () => {
    const m = await mesh({ allowance: 1000, dailyBudget: 1.5 })
    await m.orch.submit({ description: 'h', agent: 'hasher', input: 'x', preferences: fast }).done
    expect(m.spending?.state()).toMatchObject({ spentToday: 1, dailyBudget: 1.5, available: 0.5 })
    const before = m.runs()
    const refused = m.orch.submit({ description: 'h', agent: 'hasher', input: 'y', preferences: fast }).done
    await expect(refused).rejects.toBeInstanceOf(DailyBudgetExceededError)
    await expect(refused).rejects.toThrow(/1 of today's budget of 1.5 are spent/)
    expect(m.runs()).toBe(before)
    expect(m.orch.tasks().find((t) => t.status === 'failed')?.error).toMatch(/today's budget/)
    // Tasks sent together hold their estimates: of three at once with 2 credits left today, two run.
    m.spending?.setLimits({ dailyBudget: 3 })
    const all = await Promise.allSettled(['p', 'q', 'r'].map((input) => m.orch.submit({ description: 'h', agent: 'hasher', input, preferences: fast }).done))
    expect(all.filter((x) => x.status === 'fulfilled')).toHaveLength(2)
    expect(all.filter((x) => x.status === 'rejected' && x.reason instanceof DailyBudgetExceededError)).toHaveLength(1)
    expect(m.spending?.state()).toMatchObject({ spentToday: 3, reserved: 0, available: 0 })
  })

  it('runPlan (workflow steps, resumed tasks) is held to the same limits, replicas counted, before the plan runs', async () => {
    const plan = {
      subtasks: [{ id: 'w1', description: 'w', capabilities: ['hashing'], dependencies: [], input: { from: 'task.input' }, estimated_cost: 0.5 }],
      execution_mode: 'sequential',
      total_estimated_cost: 0.5,
      planner: 'direct'
    } as const
    const run = (m: Awaited<ReturnType<typeof mesh>>, input: string, verification?: 'none') =>
      m.orch.runPlan(structuredClone(plan) as never, {
        taskId: `wf-${input}`,
        input,
        prefs: fast as never,
        signal: new AbortController().signal,
        pinned: new Map([['w1', hash.id]]),
        ...(verification != null ? { verification } : {})
      })
    // One result costs 0.5, but with its check it is 1: over an allowance of 0.8.
    const m = await mesh({ allowance: 0.8 })
    await expect(run(m, 'x')).rejects.toBeInstanceOf(CreditLimitError)
    await expect(run(m, 'x')).rejects.toThrow(/Step "w1" of wf-x is estimated at 1 credits \(verification included\)/)
    expect(m.runs()).toBe(0)
    expect(m.spending?.state().reserved).toBe(0)
    const r = await run(m, 'y', 'none')
    expect(r.cost).toBeCloseTo(0.5)
    expect(m.runs()).toBe(1)
    // Taken unchecked at the submitter's word ('none'): its donor is paid, and today's spending says so.
    expect(m.spending?.state()).toMatchObject({ reserved: 0, spentToday: 0.5 })
    // Today's budget too.
    const d = await mesh({ allowance: 1000, dailyBudget: 1.5 })
    await run(d, 'a')
    expect(d.spending?.state().spentToday).toBe(1)
    const before = d.runs()
    await expect(run(d, 'b')).rejects.toBeInstanceOf(DailyBudgetExceededError)
    expect(d.runs()).toBe(before)
  })
})
