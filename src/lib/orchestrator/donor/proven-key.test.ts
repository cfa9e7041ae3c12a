import { describe, expect, it } from 'vitest'
import { loadIdentity } from '../../core/index.ts'
import { MemoryTaskNetwork, type TaskMessage } from '../dispatch/index.ts'
import { aid, fnExecutor, offerMessage, pollUntil } from '../test-fixtures.ts'
import { ProvenPeerKeys, signPeerKey, type PeerKeyClaim } from '../trust/index.ts'
import { donorService } from './donor-service.ts'
import { dispatcher } from '../dispatch/index.ts'
import { resolvePreferences, router } from '../route/index.ts'
import { trustService } from '../trust/index.ts'
import { agent, catalogOf, peer } from '../test-fixtures.ts'
import type { Plan } from '../plan/index.ts'

// Issue 12: the donor's result cache is keyed by the submitting user. If that user were the key a
// peer merely claims in presence, a thief claiming Alice's key would be answered with Alice's cached
// result of the same step. With proven keys, only a peer that signed its own id with the key is Alice.
const offer = (rid: string, key: string): TaskMessage => offerMessage({ rid, agent: 'count', idempotencyKey: key })

const until = (fn: () => boolean): Promise<void> => pollUntil(fn)

describe('donor result cache keyed by the proven profile key', () => {
  it("a peer claiming another profile's key (no proof, a copied proof, its own signature) never reads that profile's cached result", async () => {
    const alice = await loadIdentity()
    const thief = await loadIdentity()
    const claims: PeerKeyClaim[] = [
      { id: 'alice-tab-1', publicKey: alice.publicKey, keyProof: await signPeerKey(alice, 'alice-tab-1') },
      { id: 'alice-tab-2', publicKey: alice.publicKey, keyProof: await signPeerKey(alice, 'alice-tab-2') },
      { id: 'thief-none', publicKey: alice.publicKey },
      { id: 'thief-copied', publicKey: alice.publicKey, keyProof: await signPeerKey(alice, 'alice-tab-1') },
      { id: 'thief-own', publicKey: alice.publicKey, keyProof: await signPeerKey(thief, 'thief-own') }
    ]
    const keys = new ProvenPeerKeys(() => claims)
    await keys.check()
    expect(keys.userOf('alice-tab-1')).toBe(alice.publicKey)
    expect(keys.userOf('alice-tab-2')).toBe(alice.publicKey)
    for (const t of ['thief-none', 'thief-copied', 'thief-own']) expect(keys.userOf(t)).toBeUndefined()
    expect(keys.refused).toBe(3)

    const net = new MemoryTaskNetwork()
    const executor = fnExecutor({ [aid('count')]: async () => 'secret of alice' }, 4)
    const donorT = net.transport('donor')
    // As the orchestrator wires it: an unproven peer is its own user.
    const donor = donorService({})({ transport: donorT, executor, users: { userOf: (p) => keys.userOf(p) ?? `peer:${p}` } })
    await donor.start()
    const tabs = Object.fromEntries(claims.map((c) => [c.id, net.transport(c.id)]))
    for (const t of [donorT, ...Object.values(tabs)]) await t.start()
    const answers = (to: string) => net.log.filter((l) => l.from === 'donor' && l.to === to).map((l) => l.message.type)

    await tabs['alice-tab-1'].send('donor', offer('r1', 'task-1/s1'))
    await until(() => answers('alice-tab-1').includes('result'))
    expect(executor.runs).toBe(1)
    let runs = 1
    for (const t of ['thief-none', 'thief-copied', 'thief-own']) {
      await tabs[t].send('donor', offer(`r-${t}`, 'task-1/s1'))
      await until(() => answers(t).includes('result'))
      runs++
      expect(executor.runs, `${t} ran its own step`).toBe(runs)
    }
    expect(donor.stats().cachedReplies).toBe(0)
    // Alice's other tab, proven, is answered from the cache.
    await tabs['alice-tab-2'].send('donor', offer('r2', 'task-1/s1'))
    await until(() => answers('alice-tab-2').includes('result'))
    expect(executor.runs).toBe(runs)
    expect(donor.stats().cachedReplies).toBe(1)
    await donor.stop()
  })

  it('a claim is unproven while it is checked, and a changed claim is checked again', async () => {
    const alice = await loadIdentity()
    const bob = await loadIdentity()
    const claims: PeerKeyClaim[] = [{ id: 'p1', publicKey: alice.publicKey, keyProof: await signPeerKey(alice, 'p1') }]
    const keys = new ProvenPeerKeys(() => claims)
    expect(keys.userOf('p1')).toBeUndefined() // checking started, not finished
    await until(() => keys.userOf('p1') === alice.publicKey)
    // The peer now claims Bob's key with Alice's proof: refused, not Bob and not Alice any more.
    claims[0] = { id: 'p1', publicKey: bob.publicKey, keyProof: claims[0].keyProof }
    await keys.check()
    expect(keys.userOf('p1')).toBeUndefined()
    expect(keys.refused).toBe(1)
    claims[0] = { id: 'p1', publicKey: bob.publicKey, keyProof: await signPeerKey(bob, 'p1') }
    await keys.check()
    expect(keys.userOf('p1')).toBe(bob.publicKey)
  })

  describe("an offer's own claim (a tab reloaded under a new peer id, whose presence is not here yet)", () => {
    /** A donor whose users are the proven keys of `claims` (presence) plus what offers prove, as the app wires it. */
    async function setup(claims: PeerKeyClaim[], checking: Promise<void> = Promise.resolve()) {
      const keys = new ProvenPeerKeys(() => claims)
      await keys.check()
      const net = new MemoryTaskNetwork()
      let release: () => void = () => {}
      const gate = new Promise<void>((r) => {
        release = r
      })
      const executor = fnExecutor({ [aid('count')]: () => gate.then(() => 'ran') }, 4)
      const donorT = net.transport('donor')
      const donor = donorService({})({
        transport: donorT,
        executor,
        users: {
          userOf: (p) => keys.userOf(p) ?? `peer:${p}`,
          proveUser: async (p, c) => {
            await checking
            return await keys.prove(p, c)
          }
        }
      })
      await donor.start()
      await donorT.start()
      const tab = async (id: string) => {
        const t = net.transport(id)
        await t.start()
        return t
      }
      const answers = (to: string) => net.log.filter((l) => l.from === 'donor' && l.to === to).map((l) => l.message)
      return { keys, donor, executor, tab, answers, release }
    }
    const claimed = (rid: string, key: string, user?: { publicKey: string; keyProof: string }): TaskMessage =>
      ({ ...offer(rid, key), ...(user != null ? { user } : {}) }) as TaskMessage

    it('a re-offer from the reloaded tab joins the run in flight, then the result cache answers it', async () => {
      const alice = await loadIdentity()
      // Only the old tab's presence is known (and proven); the reloaded tab's is not here yet.
      const s = await setup([{ id: 'alice-old', publicKey: alice.publicKey, keyProof: await signPeerKey(alice, 'alice-old') }])
      const old = await s.tab('alice-old')
      await old.send('donor', claimed('r1', 'task-1/s1', { publicKey: alice.publicKey, keyProof: await signPeerKey(alice, 'alice-old') }))
      await until(() => s.executor.running === 1)
      const reloaded = await s.tab('alice-new')
      await reloaded.send('donor', claimed('r2', 'task-1/s1', { publicKey: alice.publicKey, keyProof: await signPeerKey(alice, 'alice-new') }))
      await until(() => s.answers('alice-new').some((m) => m.type === 'accept'))
      s.release()
      await until(() => s.answers('alice-new').some((m) => m.type === 'result'))
      expect(s.executor.runs, 'the step ran once').toBe(1)
      expect(s.keys.userOf('alice-new')).toBe(alice.publicKey)
      // A second reload, after the step finished: the result cache answers.
      const again = await s.tab('alice-newer')
      await again.send('donor', claimed('r3', 'task-1/s1', { publicKey: alice.publicKey, keyProof: await signPeerKey(alice, 'alice-newer') }))
      await until(() => s.answers('alice-newer').some((m) => m.type === 'result'))
      expect(s.executor.runs).toBe(1)
      expect(s.donor.stats()).toMatchObject({ cachedReplies: 1, claimsChecked: 2, claimsRefused: 0 })
      await s.donor.stop()
    })

    it("a claim that does not hold (another peer's proof, or another key's signature) is declined as invalid, counted, and never reads that profile's cache", async () => {
      const alice = await loadIdentity()
      const thief = await loadIdentity()
      const s = await setup([{ id: 'alice-tab', publicKey: alice.publicKey, keyProof: await signPeerKey(alice, 'alice-tab') }])
      s.release()
      const tab = await s.tab('alice-tab')
      await tab.send('donor', claimed('r1', 'task-1/s1'))
      await until(() => s.answers('alice-tab').some((m) => m.type === 'result'))
      const t = await s.tab('thief')
      const copied = { publicKey: alice.publicKey, keyProof: await signPeerKey(alice, 'alice-tab') }
      const own = { publicKey: alice.publicKey, keyProof: await signPeerKey(thief, 'thief') }
      await t.send('donor', claimed('r2', 'task-1/s1', copied))
      await t.send('donor', claimed('r3', 'task-1/s1', own))
      await until(() => s.answers('thief').length === 2)
      for (const m of s.answers('thief')) expect(m).toMatchObject({ type: 'decline', reason: 'invalid' })
      expect(s.executor.runs).toBe(1)
      expect(s.donor.stats()).toMatchObject({ cachedReplies: 0, claimsRefused: 2 })
      expect(s.keys.userOf('thief')).toBeUndefined()
      expect(s.keys.refused).toBe(2)
      // Without a claim the thief is its own user: its step runs, apart from Alice's.
      await t.send('donor', claimed('r4', 'task-1/s1'))
      await until(() => s.answers('thief').some((m) => m.type === 'result'))
      expect(s.executor.runs).toBe(2)
      await s.donor.stop()
    })

    it('a cancel that comes while the claim is checked drops the offer: it never runs', async () => {
      const alice = await loadIdentity()
      const checking = Promise.withResolvers<void>()
      const s = await setup([], checking.promise)
      s.release()
      const tab = await s.tab('alice-new')
      const user = { publicKey: alice.publicKey, keyProof: await signPeerKey(alice, 'alice-new') }
      await tab.send('donor', claimed('r1', 'task-1/s1', user))
      await tab.send('donor', { type: 'cancel', rid: 'r1' })
      await until(() => s.donor.stats().claimsChecked === 1)
      checking.resolve()
      // A later offer of the same peer and claim is taken (the claim is checked once) and runs.
      await tab.send('donor', claimed('r2', 'task-1/s2', user))
      await until(() => s.answers('alice-new').some((m) => m.type === 'result'))
      expect(s.executor.runs).toBe(1)
      expect(s.answers('alice-new').map((m) => m.type)).toEqual(['accept', 'result'])
      expect(s.donor.stats()).toMatchObject({ claimsChecked: 1, claimsRefused: 0 })
      await s.donor.stop()
    })
  })

  it("end to end: a submitter's trust puts its claim in its offers, and the donor's trust proves it before keying the step", async () => {
    const alice = await loadIdentity()
    const donorUser = await loadIdentity()
    const net = new MemoryTaskNetwork()
    const count = agent('count', ['hashing'], 0)
    const plan: Plan = {
      planner: 'direct',
      execution_mode: 'dag',
      total_estimated_cost: 0,
      subtasks: [{ id: 's1', description: 'count', capabilities: ['hashing'], dependencies: [], input: { from: 'task.input' }, estimated_cost: 0 }]
    }
    const gate = Promise.withResolvers<void>()
    const executor = fnExecutor({ [count.id]: () => gate.promise.then(() => 'ran') }, 4)
    // The donor has seen no presence at all: what it knows of its submitters comes from their offers.
    const keys = new ProvenPeerKeys(() => [])
    const donorTrust = trustService({})({ identity: donorUser, users: { userOf: (p) => keys.userOf(p), prove: (p, c) => keys.prove(p, c) } })
    const donorT = net.transport('donor')
    await donorT.start()
    const donor = donorService({})({ transport: donorT, executor, users: donorTrust })
    await donor.start()
    /** One tab of Alice's under `id` (a reload is another id, the same profile). */
    const tab = async (id: string) => {
      const own = { publicKey: alice.publicKey, keyProof: await signPeerKey(alice, id) }
      const trust = trustService({})({ identity: alice, users: { userOf: () => undefined, claim: () => own } })
      const t = net.transport(id)
      await t.start()
      const d = dispatcher({ offerTimeoutMs: 2000 })({
        transport: t,
        router: router()({ catalog: catalogOf([count]), peers: { peers: () => [peer('donor')] } }),
        trust
      })
      await d.start()
      return (taskId: string) =>
        d.run(plan, {
          taskId,
          input: 'x',
          prefs: resolvePreferences({ strategy: 'speed' }, (m) => new Error(m)),
          verification: 'none',
          signal: new AbortController().signal
        })
    }
    const first = (await tab('alice-1'))('run-1')
    await until(() => executor.running === 1)
    const second = (await tab('alice-2'))('run-1')
    await until(() => donor.stats().accepted === 1 && net.log.some((l) => l.from === 'donor' && l.to === 'alice-2' && l.message.type === 'accept'))
    gate.resolve()
    const [a, b] = await Promise.all([first, second])
    expect(a.outputs.get('s1')).toBe('ran')
    expect(b.outputs.get('s1')).toBe('ran')
    expect(executor.runs, 'one run for both tabs of the profile').toBe(1)
    const offers = net.log.filter((l) => l.to === 'donor' && l.message.type === 'offer').map((l) => l.message as Extract<TaskMessage, { type: 'offer' }>)
    expect(offers.map((o) => o.user?.publicKey)).toEqual([alice.publicKey, alice.publicKey])
    expect(keys.userOf('alice-2')).toBe(alice.publicKey)
    await donor.stop()
  })

  it('a donor whose trust cannot check claims takes an offer carrying one as before (keyed by presence), and never refuses it', async () => {
    const alice = await loadIdentity()
    const donorUser = await loadIdentity()
    const net = new MemoryTaskNetwork()
    const executor = fnExecutor({ [aid('count')]: async () => 'ran' }, 2)
    const donorTrust = trustService({})({ identity: donorUser, users: { userOf: () => undefined } })
    expect(donorTrust.proveUser).toBeUndefined()
    const donorT = net.transport('donor')
    const donor = donorService({})({ transport: donorT, executor, users: donorTrust })
    await donor.start()
    const tab = net.transport('alice-tab')
    for (const t of [donorT, tab]) await t.start()
    await tab.send('donor', {
      ...offer('r1', 'task-1/s1'),
      user: { publicKey: alice.publicKey, keyProof: await signPeerKey(alice, 'alice-tab') }
    } as TaskMessage)
    await until(() => net.log.some((l) => l.from === 'donor' && l.message.type === 'result'))
    expect(donor.stats()).toMatchObject({ claimsChecked: 0, claimsRefused: 0, accepted: 1 })
    await donor.stop()
  })
})
