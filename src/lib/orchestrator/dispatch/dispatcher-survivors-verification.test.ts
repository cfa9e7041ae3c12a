/**
 * Mutation survivors (issue 9), verification in the dispatcher: which decisions settle, when a
 * strict majority is reached, what outvoted results record, and how a step that cannot be
 * verified fails. A scripted verifier (the StepVerifier contract) makes each decision fixed.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { TaskCancelledError } from '../errors.ts'
import { agent, fnExecutor } from '../test-fixtures.ts'
import { VerificationFailedError, type Receipt, type ReplicationDecision, type SettledStep, type StepVerifier } from '../trust/index.ts'
import { dispatcher } from './dispatcher.ts'
import { router } from '../route/index.ts'
import { catalogOf } from '../test-fixtures.ts'
import { MemoryTaskNetwork, answers, peer, planOf, prefs, scriptedDonor, type ScriptedDonor } from './survivors.test-fixtures.ts'
import type { LocalExecutor, StepOutcome } from '../components.ts'
import type { VerificationMode } from '../trust/index.ts'

const hash = agent('hasher', ['hashing'], 0.5)
const ERR = '<error>'

/** A verifier whose users, decision and replica cap the test sets; outputs agree when equal. */
function scriptedTrust(users: Record<string, string>, decision: ReplicationDecision, maxReplicas = 5) {
  const settled: SettledStep[] = []
  const trust: StepVerifier = {
    self: 'u-me',
    userOf: (p) => users[p] ?? `peer:${p}`,
    decide: () => decision,
    maxReplicas,
    checkOutput: () => undefined,
    agree: async (_agent, a, b) => a === b,
    refused: () => {},
    // As the trust service does: a receipt for each agreed result of another user, once verified or trusted.
    settle: async (s) => {
      settled.push(s)
      if (s.outcome === 'failed') return []
      return s.results.filter((x) => x.agreed && x.user !== 'u-me').map((x) => ({ peer: x.peer, receipt: { price: x.price } as unknown as Receipt }))
    },
    receive: async () => false
  }
  return { trust, settled }
}

/** Donors `ids` answering `outputs[i]`, each of its own user `u-<id>`, ranked in this order (speed). */
async function verifyingMesh(outputs: Record<string, string>, decision: ReplicationDecision, opts: { maxReplicas?: number; executor?: LocalExecutor } = {}) {
  const net = new MemoryTaskNetwork()
  const ids = Object.keys(outputs)
  const donors = new Map<string, ScriptedDonor>()
  // A donor whose output is ERR answers with an error.
  for (const id of ids)
    donors.set(
      id,
      await scriptedDonor(
        net,
        id,
        outputs[id] === ERR
          ? (o, d) => {
              d.accept(o.rid)
              d.send({ type: 'error', rid: o.rid, name: 'Error', message: 'replica failed' })
            }
          : answers(() => outputs[id])
      )
    )
  const users = Object.fromEntries(ids.map((id) => [id, `u-${id}`]))
  const { trust, settled } = scriptedTrust(users, decision, opts.maxReplicas)
  const t = net.transport('me')
  await t.start()
  const outcomes: StepOutcome[] = []
  const peers = ids.map((id, i) => peer(id, { rttMs: 10 + 10 * i }))
  const d = dispatcher({ offerTimeoutMs: 500 })({
    transport: t,
    router: router()({ catalog: catalogOf([hash]), peers: { peers: () => peers } }),
    trust,
    executor: opts.executor,
    outcomes: { record: (o) => outcomes.push(o) }
  })
  await d.start()
  const run = (verification: VerificationMode = 'always', signal = new AbortController().signal) =>
    d.run(planOf([{ id: 's1' }]), {
      taskId: 'tv',
      input: 'x',
      prefs: prefs({ strategy: 'speed', retry_policy: { max_attempts: 2, backoff_ms: 1, backoff_multiplier: 1 } }),
      signal,
      verification
    })
  return { d, run, donors, settled, outcomes }
}

const replicate: ReplicationDecision = { replicate: true, reason: 'always', probability: 1 }

// Replicas go to a donor drawn at random among other users': with Math.random at its top the
// shuffle keeps the router's order, so each test knows which donor answers next.
afterEach(() => {
  vi.restoreAllMocks()
})
const routerOrder = (): void => {
  vi.spyOn(Math, 'random').mockReturnValue(0.999)
}

describe('verification decisions (mutation survivors)', () => {
  it("this profile's own result is trusted without a replica and nothing is settled", async () => {
    const m = await verifyingMesh({ a: 'x', b: 'x' }, { replicate: false, reason: 'self', probability: 0 })
    const r = await m.run('adaptive')
    expect(r.steps[0].verification).toEqual({ replicas: 1, agreed: 1, peers: ['a'], status: 'trusted' })
    expect(m.donors.get('b')!.offers).toHaveLength(0)
    expect(m.settled).toHaveLength(0)
    // No receipt is signed to oneself: it cost nothing.
    expect(r.cost).toBe(0)
  })

  it("a trusted user's unchecked result is settled as trusted (and paid) with that one result", async () => {
    const m = await verifyingMesh({ a: 'x', b: 'x' }, { replicate: false, reason: 'trusted', probability: 0.1 })
    const r = await m.run('adaptive')
    expect(r.steps[0].verification).toEqual({ replicas: 1, agreed: 1, peers: ['a'], status: 'trusted' })
    expect(m.settled).toEqual([
      { taskId: 'tv', stepId: 's1', agentId: hash.id, outcome: 'trusted', results: [{ peer: 'a', user: 'u-a', ms: 1, price: 0.5, agreed: true }] }
    ])
    expect(r.cost).toBe(0.5)
  })

  it('any other decision not to replicate is accepted unverified, unsettled', async () => {
    const m = await verifyingMesh({ a: 'x' }, { replicate: false, reason: 'none', probability: 0 })
    const r = await m.run('adaptive')
    expect(r.steps[0].verification).toMatchObject({ replicas: 1, status: 'unverified' })
    expect(m.settled).toHaveLength(0)
    // Nothing paid for it: the task's cost says so.
    expect(r.cost).toBe(0)
  })
})

describe('majority (mutation survivors)', () => {
  it('stops at the first strict majority: two agreeing results, no third replica; each result is its own request and is paid', async () => {
    routerOrder()
    const m = await verifyingMesh({ a: 'x', b: 'x', c: 'x', d: 'x' }, replicate)
    const r = await m.run()
    expect(r.steps[0].verification).toEqual({ replicas: 2, agreed: 2, peers: ['a', 'b'], status: 'verified' })
    expect([...m.donors.values()].map((d) => d.offers.map((o) => o.idempotencyKey))).toEqual([['tv/s1'], ['tv/s1.v2'], [], []])
    expect(r.cost).toBe(1)
    expect(m.d.stats()).toMatchObject({ replicas: 1, committed: 1, verificationFailed: 0 })
  })

  it('a replica whose donor errs is retried on the next donor of another user (replicas report no events)', async () => {
    routerOrder()
    const m = await verifyingMesh({ a: 'x', b: ERR, c: 'x' }, replicate)
    const r = await m.run()
    expect(r.steps[0].verification).toEqual({ replicas: 2, agreed: 2, peers: ['a', 'c'], status: 'verified' })
    expect(m.donors.get('b')!.offers).toHaveLength(1)
  })

  it('an outvoted result is recorded as a failure of its donor; the accepted output is the majority one', async () => {
    routerOrder()
    const m = await verifyingMesh({ a: 'x', b: 'y', c: 'x' }, replicate)
    const r = await m.run()
    expect(r.outputs.get('s1')).toBe('x')
    expect(r.steps[0].verification).toEqual({ replicas: 3, agreed: 2, peers: ['a', 'b', 'c'], status: 'verified' })
    expect(m.outcomes.map((o) => [o.peerId, o.success, o.errorName ?? null, o.errorMessage ?? null])).toEqual([
      ['a', true, null, null],
      ['b', false, 'InvalidOutputError', 'outvoted by the replicas of other users'],
      ['c', true, null, null]
    ])
    expect(m.settled[0]?.results.map((x) => [x.peer, x.agreed])).toEqual([
      ['a', true],
      ['b', false],
      ['c', true]
    ])
    // The two agreeing results are paid; the outvoted one is not, and costs the task nothing.
    expect(r.cost).toBe(1)
  })

  it('half is not a majority: x, y, z, x from four users fails at the replica cap even with a fifth donor that would agree', async () => {
    routerOrder()
    const m = await verifyingMesh({ a: 'x', b: 'y', c: 'z', d: 'x', e: 'x' }, replicate, { maxReplicas: 4 })
    const err = await m.run().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(VerificationFailedError)
    expect((err as Error).message).toBe('Step "s1" could not be verified: 4 results from 4 different users and no strict majority agrees')
    expect(m.donors.get('e')!.offers).toHaveLength(0)
    expect(m.d.stats().verificationFailed).toBe(1)
    expect(m.settled.map((s) => [s.outcome, s.results.map((x) => x.agreed)])).toEqual([['failed', [false, false, false, false]]])
  })

  it('a result nobody of another user can check fails verification naming why, and never runs as a replica on this peer', async () => {
    const local = fnExecutor({ [hash.id]: () => 'x' })
    const m = await verifyingMesh({ a: 'x' }, replicate, { executor: local })
    const err = await m.run().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(VerificationFailedError)
    expect((err as Error).message).toMatch(
      /^Step "s1" could not be verified: no donor of another user could run it \(.+\)\. Try again when more donors are online, or set preferences\.verification to 'adaptive' or 'none'$/
    )
    expect((err as Error).cause).toBeInstanceOf(Error)
    expect(local.runs).toBe(0)
    expect(m.d.stats()).toMatchObject({ localRuns: 0, verificationFailed: 1 })
  })

  it('a cancel while a replica runs rejects with TaskCancelledError, not a verification failure', async () => {
    const net = new MemoryTaskNetwork()
    const ac = new AbortController()
    await scriptedDonor(
      net,
      'a',
      answers(() => 'x')
    )
    // b takes the replica and the task is cancelled while it runs.
    await scriptedDonor(net, 'b', (o, d) => {
      d.accept(o.rid)
      setTimeout(() => ac.abort(), 1)
    })
    const { trust } = scriptedTrust({ a: 'u-a', b: 'u-b' }, replicate)
    const t = net.transport('me')
    await t.start()
    const peers = [peer('a', { rttMs: 10 }), peer('b', { rttMs: 20 })]
    const d = dispatcher()({ transport: t, router: router()({ catalog: catalogOf([hash]), peers: { peers: () => peers } }), trust })
    await d.start()
    const err = await d
      .run(planOf([{ id: 's1' }]), { taskId: 'tc', input: 'x', prefs: prefs({ strategy: 'speed' }), signal: ac.signal, verification: 'always' })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TaskCancelledError)
    expect(d.stats().verificationFailed).toBe(0)
  })
})
