// Owners, writers and keys of shared namespaces against hostile peers (issue 10 items 9–11,
// issue 11 item 3), over the in-memory multi-peer network.
import { describe, it, expect, afterEach } from 'vitest'
import * as Y from 'yjs'
import { fromString } from 'uint8arrays'
import { signJson, type Identity } from '../core/index.ts'
import { createMemoryLayer, type MemoryLayer } from './layer.ts'
import { MemoryNetwork, MemorySyncTransport } from './memory-sync-transport.ts'
import { newIdentity, until } from './test-helpers.ts'
import { MissingKeyError, NotOwnerError, NotWriterError, WrongKeyError } from './errors.ts'
import { deriveNamespaceKeys, generateNamespaceKey, slotOf } from './namespace-crypto.ts'
import { namespaceDoc } from './memory-store.ts'
import { MEMORY_INDEX_DOC } from './constants.ts'
import { OWNED_ROOT } from './namespace-index.ts'
import type { NamespaceRecord } from './namespace-schema.ts'

type Peer = MemoryLayer & { identity: Identity }
const layers: MemoryLayer[] = []
afterEach(async () => {
  while (layers.length > 0) await layers.pop()!.stop()
})

let nextPeer = 0
async function peer(net?: MemoryNetwork, limits: Record<string, number> = {}): Promise<Peer> {
  const identity = await newIdentity()
  const layer = createMemoryLayer({
    identity,
    transport: net == null ? undefined : new MemorySyncTransport(net, `peer-${nextPeer++}`),
    persistence: 'none',
    tabSync: false,
    limits: { resyncIntervalMs: 0, pbkdf2Iterations: 2000, ...limits }
  })
  await layer.start()
  layers.push(layer)
  return Object.assign(layer, { identity })
}

/** A write as a hostile peer makes it: its own signed record, straight into the doc. */
async function forgeEntry(p: Peer, docName: string, ns: string, key: string, value: unknown, signer: Identity = p.identity) {
  const payload = { kind: 'zerostate/memory-entry/1' as const, ns, key, writer: p.identity.publicKey, t: Date.now() + 1000, value: JSON.stringify(value) }
  const record = { ...payload, signature: await signJson(signer, payload) }
  p.doc(docName)!.getMap('kv').set(`${p.identity.publicKey}/${key}`, record)
}

describe('encrypted namespaces', () => {
  it('a peer with the doc but not the key cannot confirm a guessed key name', async () => {
    const a = await peer()
    const passphrase = 'correct horse battery staple'
    await a.memory.createNamespace('vault', { mode: 'encrypted', key: passphrase })
    await a.memory.createNamespace('vault2', { mode: 'encrypted', key: passphrase })
    for (const ns of ['vault', 'vault2']) {
      await a.memory.set(ns, 'openai-api-key', 'sk-1')
      await a.memory.set(ns, 'openai-api-key', 'sk-1') // the same value again
    }
    await a.memory.settled()
    const me = a.identity.publicKey
    const stored = (ns: string) => a.doc(namespaceDoc(me, ns))!.getMap('kv').toJSON() as Record<string, { key: string; value: string }>
    const [e1] = Object.values(stored('vault'))
    const [e2] = Object.values(stored('vault2'))
    // The old scheme's IV: SHA-256("zs-key-name:" + name). Neither slot nor IV is computable from the name.
    const guess = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('zs-key-name:openai-api-key'))).slice(0, 12)
    const iv = fromString(e1!.value, 'base64url').slice(0, 12)
    expect(Buffer.from(iv).equals(Buffer.from(guess))).toBe(false)
    expect(JSON.stringify(stored('vault'))).not.toContain('openai')
    // Same passphrase, same name, another namespace: another salt, so another slot.
    expect(e1!.key).not.toBe(e2!.key)
    // Whoever holds the key finds the slot; it is the HMAC under the derived key, not a hash of the name.
    const r = a.doc(MEMORY_INDEX_DOC)!.getMap(OWNED_ROOT).get(`${me}/vault`) as NamespaceRecord
    expect(r.iterations).toBe(2000)
    const keys = await deriveNamespaceKeys(passphrase, r.salt!, r.iterations!)
    expect(await slotOf(keys, 'openai-api-key')).toBe(e1!.key)
    const wrongSalt = await deriveNamespaceKeys(passphrase, 'AAAAAAAAAAAAAAAAAAAAAA', r.iterations!)
    expect(await slotOf(wrongSalt, 'openai-api-key')).not.toBe(e1!.key)
    // Rewriting a value gives a new random IV.
    const before = stored('vault')[`${me}/${e1!.key}`]!.value
    await a.memory.set('vault', 'openai-api-key', 'sk-1')
    expect(stored('vault')[`${me}/${e1!.key}`]!.value.slice(0, 16)).not.toBe(before.slice(0, 16))
  })

  it('a wrong key is refused with a typed error before anything is written or saved', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net)
    const c = await peer(net)
    const key = generateNamespaceKey()
    await a.memory.createNamespace('vault', { mode: 'encrypted', key, writers: ['*'] })
    await a.memory.set('vault', 'k', 1)
    await until(() => c.memory.mode('vault') === 'encrypted')
    expect(c.memory.get('vault', 'k')).toBeUndefined() // opens it
    const docName = namespaceDoc(a.identity.publicKey, 'vault')
    await until(() => (c.doc(docName)?.getMap('kv').size ?? 0) === 1)
    const updates: Uint8Array[] = []
    for (const name of [docName, 'local', MEMORY_INDEX_DOC]) c.doc(name)!.on('update', (u: Uint8Array) => updates.push(u))
    for (const wrong of ['not a key', generateNamespaceKey()]) {
      const err = await c.memory.createNamespace('vault', { mode: 'encrypted', key: wrong }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(WrongKeyError)
      expect((err as Error).message).toMatch(/this key does not decrypt this namespace/i)
    }
    await expect(c.memory.createNamespace('vault', { mode: 'encrypted' })).rejects.toBeInstanceOf(MissingKeyError)
    expect(updates).toEqual([])
    expect(c.memory.namespaces()[0]?.locked).toBe(true)
    await expect(c.memory.set('vault', 'k', 2)).rejects.toBeInstanceOf(MissingKeyError)
    expect(updates).toEqual([])
    await c.memory.createNamespace('vault', { mode: 'encrypted', key })
    await until(() => c.memory.get('vault', 'k') === 1)
  })
})

describe('owners and writers', () => {
  it('a non-writer is refused locally; its forged writes are ignored and counted on every peer; a grant lets it write', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net)
    const b = await peer(net)
    const c = await peer(net)
    await a.memory.createNamespace('team', { mode: 'shared' })
    await a.memory.set('team', 'plan', 'launch')
    const docName = namespaceDoc(a.identity.publicKey, 'team')
    const id = `${a.identity.publicKey}/team`
    for (const p of [b, c]) {
      await until(() => p.memory.get('team', 'plan') === 'launch')
      expect(p.memory.namespaces()).toEqual([{ name: 'team', mode: 'shared', locked: false, owner: a.identity.publicKey, writers: [], canWrite: false }])
    }
    await expect(b.memory.set('team', 'plan', 'abort')).rejects.toBeInstanceOf(NotWriterError)
    await expect(b.memory.grant('team', b.identity.publicKey)).rejects.toBeInstanceOf(NotOwnerError)
    // B goes around the API: its own signed record, and one that claims to be A's.
    await forgeEntry(b, docName, id, 'plan', 'abort')
    const forged = { kind: 'zerostate/memory-entry/1', ns: id, key: 'plan', writer: a.identity.publicKey, t: Date.now() + 5000, value: '"hijacked"' }
    b.doc(docName)!
      .getMap('kv')
      .set(`${a.identity.publicKey}/plan`, { ...forged, signature: await signJson(b.identity, forged) })
    // ... and tries to lock everyone out by re-marking the namespace encrypted.
    const rec = b.doc(MEMORY_INDEX_DOC)!.getMap(OWNED_ROOT).get(id) as NamespaceRecord
    const locked = { ...rec, mode: 'encrypted', version: rec.version + 1, writers: [b.identity.publicKey], salt: 'AAAA', iterations: 2000, check: 'AAAA' }
    b.doc(MEMORY_INDEX_DOC)!.getMap(OWNED_ROOT).set(id, locked)
    const total = (name: string) => [a, b, c].reduce((n, p) => n + (p.metrics()[name] ?? 0), 0)
    for (const p of [a, c]) {
      await until(() => (p.metrics()['memory.kv.writesRefused'] ?? 0) >= 1, 5000, 'refusal counted')
      await p.memory.settled()
      expect(p.memory.get('team', 'plan')).toBe('launch')
      expect(p.memory.mode('team')).toBe('shared')
    }
    // Forgeries are removed by the first honest reader (B's own layer may beat A and C to it).
    await until(() => total('memory.kv.forgedEntries') >= 1 && total('memory.kv.forgedNamespaceRecords') >= 1, 5000, 'forgeries counted')
    // Healed everywhere: the map holds A's own record again.
    await until(() => (c.doc(docName)!.getMap('kv').get(`${a.identity.publicKey}/plan`) as { value: string }).value === '"launch"')
    // The owner grants B: B's write lands everywhere (and its earlier record, newer, now counts too).
    await a.memory.grant('team', b.identity.publicKey)
    await until(() => b.memory.namespaces()[0]?.canWrite === true)
    await b.memory.set('team', 'plan', 'go')
    for (const p of [a, b, c]) await until(() => p.memory.get('team', 'plan') === 'go', 5000, 'granted write lands')
    // Revoked: B's records stop counting; A's stands.
    await a.memory.revoke('team', b.identity.publicKey)
    for (const p of [a, b, c]) await until(() => p.memory.get('team', 'plan') === 'launch', 5000, 'revoked write hidden')
    await expect(b.memory.set('team', 'plan', 'again')).rejects.toBeInstanceOf(NotWriterError)
  })

  it('the view does not depend on the order updates arrive in', async () => {
    const a = await peer()
    const b = await peer()
    await a.memory.createNamespace('ordered', { mode: 'shared' })
    await a.memory.set('ordered', 'k', 'by owner')
    const indexBefore = Y.encodeStateAsUpdate(a.doc(MEMORY_INDEX_DOC)!)
    await a.memory.grant('ordered', b.identity.publicKey)
    const grant = Y.encodeStateAsUpdate(a.doc(MEMORY_INDEX_DOC)!, Y.encodeStateVectorFromUpdate(indexBefore))
    const docName = namespaceDoc(a.identity.publicKey, 'ordered')
    // B writes (it learnt of the grant) and a third party forges an entry under B's key.
    Y.applyUpdate(b.doc(MEMORY_INDEX_DOC)!, Y.encodeStateAsUpdate(a.doc(MEMORY_INDEX_DOC)!))
    await until(() => b.memory.namespaces()[0]?.canWrite === true)
    b.memory.get('ordered', 'k')
    Y.applyUpdate(b.doc(docName)!, Y.encodeStateAsUpdate(a.doc(docName)!))
    await b.memory.set('ordered', 'k', 'by writer')
    const entries = Y.encodeStateAsUpdate(b.doc(docName)!)
    const views: unknown[] = []
    for (const order of [
      ['grant', 'entries'],
      ['entries', 'grant']
    ]) {
      const v = await peer()
      Y.applyUpdate(v.doc(MEMORY_INDEX_DOC)!, indexBefore)
      await until(async () => {
        await v.memory.settled()
        return v.memory.mode('ordered') === 'shared'
      })
      v.memory.get('ordered', 'k') // opens the doc
      for (const step of order) {
        if (step === 'grant') Y.applyUpdate(v.doc(MEMORY_INDEX_DOC)!, grant)
        else Y.applyUpdate(v.doc(docName)!, entries)
        await v.memory.settled()
        v.memory.get('ordered', 'k')
      }
      views.push(v.memory.get('ordered', 'k'))
    }
    expect(views).toEqual(['by writer', 'by writer'])
  })
})

/** `n` namespace records signed by `owner`, created in that order. */
async function signedNamespaces(owner: Identity, n: number, first = 0): Promise<NamespaceRecord[]> {
  const records: NamespaceRecord[] = []
  for (let i = first; i < first + n; i++) {
    const payload = {
      kind: 'zerostate/namespace/1' as const,
      name: `bomb-${i}`,
      owner: owner.publicKey,
      mode: 'shared' as const,
      createdAt: i,
      version: 1,
      writers: ['*']
    }
    records.push({ ...payload, signature: await signJson(owner, payload) } as NamespaceRecord)
  }
  return records
}

describe('namespace bomb (issue 11 item 3)', () => {
  it("the guard admits an owner's quota of namespaces and refuses the update that goes past it", async () => {
    const net = new MemoryNetwork()
    const victim = await peer(net, { maxNamespacesPerOwner: 4 })
    const evil = await peer(net, { maxNamespacesPerOwner: 1000 })
    const index = evil.doc(MEMORY_INDEX_DOC)!
    const put = (records: NamespaceRecord[]) =>
      index.transact(() => {
        for (const r of records) index.getMap(OWNED_ROOT).set(`${r.owner}/${r.name}`, r)
      })
    put(await signedNamespaces(evil.identity, 3))
    await until(() => victim.memory.namespaces().filter((n) => n.owner === evil.identity.publicKey).length === 3, 10_000, 'three admitted')
    // One more is within the quota of 4; two more would make 6.
    put(await signedNamespaces(evil.identity, 2, 3))
    await until(() => (victim.metrics()['memory.kv.namespaceOverQuotaRefused'] ?? 0) === 1, 10_000, 'the fifth refused')
    await victim.memory.settled()
    expect(victim.memory.namespaces().filter((n) => n.owner === evil.identity.publicKey)).toHaveLength(3)
  })

  it('600 namespaces pushed in one update are refused whole at the guard: nothing applied, no record verified, no doc opened; honest namespaces still sync', async () => {
    const net = new MemoryNetwork()
    const victim = await peer(net)
    const honest = await peer(net)
    const evil = await peer(net)
    await honest.memory.set('before', 'k', 1)
    await until(() => victim.memory.get('before', 'k') === 1)
    await victim.memory.settled()
    const docsBefore = victim.metrics()['memory.docs']
    const rejectedBefore = victim.metrics()['memory.sync.rejectedUpdates'] ?? 0
    // 600 validly signed records by one key, and 600 unsigned ones in the index from before owners, in one update.
    const records = await signedNamespaces(evil.identity, 600)
    const index = evil.doc(MEMORY_INDEX_DOC)!
    const updates: Uint8Array[] = []
    index.on('update', (u: Uint8Array) => updates.push(u))
    index.transact(() => {
      for (const r of records) index.getMap(OWNED_ROOT).set(`${r.owner}/${r.name}`, r)
      for (let i = 0; i < 600; i++) index.getMap('namespaces').set(`legacy-${i}`, { mode: 'shared', createdAt: i })
    })
    expect(updates).toHaveLength(1)
    await until(() => (victim.metrics()['memory.kv.namespaceOverQuotaRefused'] ?? 0) >= 1, 10_000, 'bomb refused')
    await victim.memory.settled()
    // Refused before Yjs applied it: the victim's index never held a record of the bomb, so none was parsed or verified.
    expect(victim.doc(MEMORY_INDEX_DOC)!.getMap(OWNED_ROOT).size).toBe(honest.doc(MEMORY_INDEX_DOC)!.getMap(OWNED_ROOT).size)
    expect(victim.memory.namespaces().filter((n) => n.owner === evil.identity.publicKey)).toHaveLength(0)
    expect(victim.metrics()['memory.kv.invalidNamespaceRecords'] ?? 0).toBe(0)
    expect(victim.metrics()['memory.sync.rejectedUpdates']).toBeGreaterThan(rejectedBefore)
    expect(victim.memory.namespaces().some((n) => n.name.startsWith('legacy-'))).toBe(false)
    expect(victim.metrics()['memory.docs']).toBe(docsBefore)
    // Still responsive, and an honest namespace created after the bomb reaches it.
    await victim.memory.set('mine', 'k', 'ok')
    await honest.memory.createNamespace('after', { mode: 'shared' })
    await honest.memory.set('after', 'k', 2)
    await until(() => victim.memory.get('after', 'k') === 2, 5000, 'honest namespace after the bomb')
    await until(() => honest.memory.get('mine', 'k') === 'ok', 5000, "victim's own namespace reaches others")
    expect(victim.metrics()['memory.docs']).toBe((docsBefore ?? 0) + 2)
  })
})
