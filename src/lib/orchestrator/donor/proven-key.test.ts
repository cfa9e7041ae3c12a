import { describe, expect, it } from 'vitest'
import { loadIdentity } from '../../core/index.ts'
import { MemoryTaskNetwork, type TaskMessage } from '../dispatch/index.ts'
import { aid, fnExecutor, offerMessage, pollUntil } from '../test-fixtures.ts'
import { ProvenPeerKeys, signPeerKey, type PeerKeyClaim } from '../trust/index.ts'
import { donorService } from './donor-service.ts'

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
})
