import { beforeAll, describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from './memory-task-transport.ts'
import { dispatcher } from './dispatcher.ts'
import { createOrchestrator } from '../index.ts'
import { donorService } from '../donor/index.ts'
import { agent, catalogOf, fnExecutor, peer } from '../test-fixtures.ts'
import { loadIdentity, type Identity } from '../../core/index.ts'
import { MemoryStatementStore, VerificationFailedError, trustService, type TrustService } from '../trust/index.ts'
import { resolvePreferences, router } from '../route/index.ts'

const hash = agent('hasher', ['hashing'], 0.5)
const catalog = catalogOf([hash])
const honest = (i: unknown): unknown => ({ hash: `h(${String(i)})` })
const fast = { retry_policy: { max_attempts: 3, backoff_ms: 1, backoff_multiplier: 1 } }

interface Donor {
  id: string
  /** Index into the users list: donors with the same user are tabs of one profile. */
  user: number
  /** Probability of a wrong answer (0 = honest). */
  lies?: number
  /** Output that breaks the agent's schema. */
  badSchema?: boolean
}

let ids: Identity[]
beforeAll(async () => {
  ids = await Promise.all(Array.from({ length: 6 }, () => loadIdentity()))
})

/** A submitter with trust and donors of the given users on one in-memory network. */
async function mesh(donors: Donor[], opts: { output?: Record<string, unknown>; random?: () => number; trustAfter?: number; spotCheck?: number } = {}) {
  const net = new MemoryTaskNetwork()
  const userOfPeer = new Map<string, string>([['submitter', ids[0].publicKey]])
  const runs = new Map<string, number>()
  const wrong = { n: 0 }
  const statements = new MemoryStatementStore()
  const donorTrust = new Map<string, TrustService>()
  for (const d of donors) {
    userOfPeer.set(d.id, ids[d.user].publicKey)
    const t = net.transport(d.id)
    await t.start()
    const ex = fnExecutor({
      [hash.id]: (i) => {
        runs.set(d.id, (runs.get(d.id) ?? 0) + 1)
        if (d.badSchema === true) return { digest: 42 }
        if (d.lies != null && Math.random() < d.lies) {
          wrong.n++
          return { hash: `forged(${String(i)})` }
        }
        return honest(i)
      }
    })
    await donorService({ leaseMs: 500 })({ transport: t, executor: ex }).start()
    // Each donor tab runs a dispatcher too (as in the app): it receives the receipts.
    const trust = trustService({ publishEveryMs: 10 })({
      identity: ids[d.user],
      users: { userOf: (p) => userOfPeer.get(p) },
      statements: statements.as(ids[d.user])
    })
    await trust.start()
    donorTrust.set(d.id, trust)
    await dispatcher()({ transport: t, router: router()({ catalog, peers: { peers: () => [] } }), trust }).start()
  }
  const trust = trustService({ policy: { random: opts.random, trustAfter: opts.trustAfter ?? 3, spotCheck: opts.spotCheck }, publishEveryMs: 10 })({
    identity: ids[0],
    users: { userOf: (p) => userOfPeer.get(p) },
    contracts: { contract: (id) => (id === hash.id ? { output: opts.output } : undefined) },
    statements: statements.as(ids[0])
  })
  await trust.start()
  const peers = donors.map((d, i) => peer(d.id, { rttMs: 10 + i }))
  const orch = createOrchestrator(
    { catalog, peers: { peers: () => peers }, transport: net.transport('submitter'), trust },
    { dispatcher: { offerTimeoutMs: 300 } }
  )
  await orch.start()
  return { net, orch, trust, runs, wrong, donorTrust, statements }
}

const submit = (orch: ReturnType<typeof createOrchestrator>, input: string, extra: Record<string, unknown> = {}) =>
  orch.submit({ description: 'hash it', input, preferences: { strategy: 'round-robin', ...fast, ...extra } }).done

describe('verification in the dispatcher', () => {
  it("replicates an untrusted user's result to a donor of another user and accepts it when they agree", async () => {
    const { orch, runs } = await mesh([
      { id: 'a', user: 1 },
      { id: 'b', user: 2 }
    ])
    const r = await submit(orch, 'x')
    expect(r.output).toEqual({ hash: 'h(x)' })
    expect(r.steps[0].verification).toMatchObject({ replicas: 2, agreed: 2, status: 'verified' })
    expect(new Set(r.steps[0].verification!.peers)).toEqual(new Set(['a', 'b']))
    expect((runs.get('a') ?? 0) + (runs.get('b') ?? 0)).toBe(2)
    // Both results are paid from the task's budget.
    expect(r.cost).toBeCloseTo(1)
  })

  it("a donor tab of the submitter's own profile is paid nothing: the task costs 0 and no receipt is issued", async () => {
    // 'mine' is another tab of user 0, the submitter's profile.
    const { orch, trust, runs } = await mesh([{ id: 'mine', user: 0 }])
    const r = await submit(orch, 'x')
    expect(r.steps[0].peer).toBe('mine')
    expect(runs.get('mine')).toBe(1)
    expect(r.steps[0].verification).toMatchObject({ replicas: 1, status: 'trusted' })
    expect(r.cost).toBe(0)
    expect(trust.credits()).toMatchObject({ spent: 0, receipts: [] })
    // The same agent on another user's donor is paid its price.
    const other = await mesh([{ id: 'b', user: 2 }])
    const paid = await submit(other.orch, 'x', { verification: 'none' })
    expect(paid.steps[0].peer).toBe('b')
    expect(paid.cost).toBe(0.5)
  })

  it('two tabs of one profile never make a quorum: the replica goes to another user, or verification fails', async () => {
    // 'a' and 'a2' are two tabs of user 1; 'b' is user 2.
    const { orch, runs } = await mesh([
      { id: 'a', user: 1 },
      { id: 'a2', user: 1 },
      { id: 'b', user: 2 }
    ])
    for (let i = 0; i < 6; i++) {
      const r = await submit(orch, `x${i}`)
      const peers = r.steps[0].verification!.peers
      expect(peers).toHaveLength(2)
      // Never a and a2 together.
      expect(peers.includes('b')).toBe(true)
    }
    expect(runs.get('b')).toBe(6)
    // Only one profile donating: 'always' cannot verify with its two tabs.
    const only = await mesh([
      { id: 'a', user: 1 },
      { id: 'a2', user: 1 }
    ])
    await expect(submit(only.orch, 'y', { verification: 'always' })).rejects.toBeInstanceOf(VerificationFailedError)
    expect((only.runs.get('a') ?? 0) + (only.runs.get('a2') ?? 0)).toBe(1)
  })

  it('a lying replica is outvoted: more replicas until a strict majority of users agrees, the liar loses trust', async () => {
    // Every trusted result is spot-checked (random 0): once b or c reach a streak of 6 the default
    // spot-check probability drops below 1 and an unchecked result would read 'trusted' (a flake).
    const { orch, trust } = await mesh(
      [
        { id: 'liar', user: 1, lies: 1 },
        { id: 'b', user: 2 },
        { id: 'c', user: 3 }
      ],
      { random: () => 0 }
    )
    for (let i = 0; i < 9; i++) {
      const r = await submit(orch, `t${i}`)
      expect(r.output).toEqual({ hash: `h(t${i})` })
      const v = r.steps[0].verification!
      expect(v.status).toBe('verified')
      expect(v.agreed).toBeGreaterThanOrEqual(2)
      expect(v.agreed * 2).toBeGreaterThan(v.replicas)
      if (v.peers.includes('liar')) expect(v.replicas).toBe(3)
      expect(r.steps[0].peer).not.toBe('liar')
    }
    const liar = trust.userReputation(ids[1].publicKey)
    const b = trust.userReputation(ids[2].publicKey)
    expect(liar.invalid).toBeGreaterThan(0)
    expect(liar.valid).toBe(0)
    expect(liar.score).toBeLessThan(b.score)
    expect(trust.policy.trust(ids[1].publicKey, hash.id).streak).toBe(0)
  })

  it('fails the step clearly when no strict majority can be reached', async () => {
    const { orch } = await mesh([
      { id: 'l1', user: 1, lies: 1 },
      { id: 'b', user: 2 }
    ])
    const err = await submit(orch, 'q').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(VerificationFailedError)
    expect((err as Error).message).toMatch(/no strict majority/)
  })

  it('earns trust by consecutive agreements, then spot-checks at random; a disagreement costs the trust at once', async () => {
    let roll = 0.99 // above any spot-check probability: trusted results go unchecked
    const { orch, trust, runs } = await mesh(
      [
        { id: 'a', user: 1 },
        { id: 'b', user: 2 }
      ],
      { random: () => roll, trustAfter: 3, spotCheck: 1 }
    )
    // Learning: 3 verified steps make both users trusted.
    for (let i = 0; i < 3; i++) expect((await submit(orch, `l${i}`)).steps[0].verification!.replicas).toBe(2)
    expect(trust.policy.trust(ids[1].publicKey, hash.id).trusted).toBe(true)
    const before = (runs.get('a') ?? 0) + (runs.get('b') ?? 0)
    const r = await submit(orch, 'trusted')
    expect(r.steps[0].verification).toMatchObject({ replicas: 1, agreed: 1, status: 'trusted' })
    expect((runs.get('a') ?? 0) + (runs.get('b') ?? 0)).toBe(before + 1)
    // A spot check (the roll falls under the probability) replicates a trusted user's result.
    roll = 0
    const s = await submit(orch, 'spot')
    expect(s.steps[0].verification!.replicas).toBe(2)
    expect(trust.policy.trust(ids[1].publicKey, hash.id).streak).toBeGreaterThan(3)
  })

  it('refuses an output that breaks the manifest output schema, counts it against its user, and runs the step elsewhere', async () => {
    const schema = { type: 'object', required: ['hash'], properties: { hash: { type: 'string' } } }
    const { orch, trust } = await mesh(
      [
        { id: 'bad', user: 1, badSchema: true },
        { id: 'b', user: 2 },
        { id: 'c', user: 3 }
      ],
      { output: schema }
    )
    for (let i = 0; i < 3; i++) {
      const r = await submit(orch, `s${i}`)
      expect(r.output).toEqual({ hash: `h(s${i})` })
      expect(r.steps[0].verification!.peers).not.toContain('bad')
    }
    expect(orch.stats().invalidOutputs).toBeGreaterThan(0)
    expect(trust.userReputation(ids[1].publicKey).invalid).toBeGreaterThan(0)
  })

  it("verification 'none' accepts the first result; adaptive with no other user accepts it unverified", async () => {
    const { orch, runs, trust } = await mesh([
      { id: 'a', user: 1 },
      { id: 'b', user: 2 }
    ])
    const r = await submit(orch, 'n', { verification: 'none' })
    expect(r.steps[0].verification).toBeUndefined()
    expect((runs.get('a') ?? 0) + (runs.get('b') ?? 0)).toBe(1)
    await expect(submit(orch, 'n', { verification: 'sometimes' })).rejects.toMatchObject({ name: 'InvalidTaskRequestError' })
    // 'none' takes the result at the submitter's word: its donor is paid, and the task's cost is that receipt.
    expect(r.cost).toBe(0.5)
    expect(trust.credits()).toMatchObject({ spent: 0.5, receipts: [{ price: 0.5, step: 's1' }] })
    const lone = await mesh([{ id: 'a', user: 1 }])
    const u = await submit(lone.orch, 'u')
    expect(u.steps[0].verification).toMatchObject({ replicas: 1, status: 'unverified' })
    // Adaptive with nobody to check it: accepted, but unpaid, so it cost nothing.
    expect(lone.trust.credits().receipts).toHaveLength(0)
    expect(u.cost).toBe(0)
  })

  it('replicas are paid from max_cost: a budget that fits one run cannot buy the replica, and the step fails instead of going unverified', async () => {
    const { orch, runs } = await mesh([
      { id: 'a', user: 1 },
      { id: 'b', user: 2 }
    ])
    // The plan's estimate counts the replica (issue 12): refused before anything runs…
    await expect(submit(orch, 'm', { max_cost: 0.5 })).rejects.toThrow(/with verification .*over max_cost 0.5/)
    expect(runs.size).toBe(0)
    // …and a plan that reaches the dispatcher with too little budget still cannot buy the replica.
    const plan = {
      subtasks: [{ id: 's1', description: 'h', capabilities: ['hashing'], dependencies: [], input: { from: 'task.input' as const }, estimated_cost: 0.5 }],
      execution_mode: 'sequential' as const,
      total_estimated_cost: 0.5,
      planner: 'direct' as const
    }
    const prefs = resolvePreferences({ strategy: 'round-robin', ...fast, max_cost: 0.5 }, (m) => new Error(m))
    await expect(orch.runPlan(plan, { taskId: 't-m', input: 'm', prefs, signal: new AbortController().signal })).rejects.toBeInstanceOf(VerificationFailedError)
    const ok = await submit(orch, 'm', { max_cost: 1 })
    expect(ok.cost).toBeCloseTo(1)
  })

  it('signs a receipt for each verified result and the donor keeps it; the ledgers add up', async () => {
    const { orch, trust, donorTrust } = await mesh([
      { id: 'a', user: 1 },
      { id: 'b', user: 2 }
    ])
    let costs = 0
    for (let i = 0; i < 3; i++) costs += (await submit(orch, `r${i}`)).cost
    const mine = trust.credits()
    expect(mine.receipts).toHaveLength(6)
    expect(mine.spent).toBeCloseTo(3)
    // What the tasks said they cost is what the ledger spent.
    expect(costs).toBeCloseTo(mine.spent)
    expect(mine.balance).toBeCloseTo(-3)
    await expect.poll(() => donorTrust.get('a')!.credits().receipts.length).toBe(3)
    await expect.poll(() => donorTrust.get('b')!.credits().receipts.length).toBe(3)
    expect(donorTrust.get('a')!.credits()).toMatchObject({ earned: 1.5, spent: 0, balance: 1.5 })
  })
})
