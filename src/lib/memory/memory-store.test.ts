import { describe, it, expect, afterEach } from 'vitest'
import { createMemoryLayer, type MemoryLayer } from './layer.ts'
import { MemoryNetwork, MemorySyncTransport } from './memory-sync-transport.ts'
import { newIdentity, until } from './test-helpers.ts'
import { InvalidValueError, NamespaceError, NotWriterError, WrongKeyError } from './errors.ts'
import { generateNamespaceKey } from './namespace-crypto.ts'
import { namespaceDoc } from './memory-store.ts'
import type { Identity } from '../core/index.ts'

const layers: MemoryLayer[] = []
afterEach(async () => {
  while (layers.length > 0) await layers.pop()!.stop()
})

type Peer = MemoryLayer & { identity: Identity }

async function peers(n: number, net = new MemoryNetwork(), start = 0): Promise<Peer[]> {
  const out: Peer[] = []
  for (let i = start; i < start + n; i++) {
    const identity = await newIdentity()
    const layer = createMemoryLayer({
      identity,
      transport: new MemorySyncTransport(net, `peer-${i}`),
      persistence: 'none',
      tabSync: false,
      limits: { resyncIntervalMs: 0 }
    })
    await layer.start()
    layers.push(layer)
    out.push(Object.assign(layer, { identity }))
  }
  return out
}

describe('shared memory', () => {
  it('a value written on one peer is read on the others; unknown namespaces default to shared', async () => {
    const [a, b, c] = await peers(3)
    await a!.memory.set('notes', 'greeting', { text: 'hello', n: 1 })
    await until(() => c!.memory.get('notes', 'greeting') !== undefined)
    expect(c!.memory.get('notes', 'greeting')).toEqual({ text: 'hello', n: 1 })
    await until(() => b!.memory.namespaces().length === 1)
    expect(b!.memory.namespaces()).toEqual([{ name: 'notes', mode: 'shared', locked: false, owner: a!.identity.publicKey, writers: ['*'], canWrite: true }])
    await c!.memory.set('notes', 'other', [1, 2])
    await until(() => a!.memory.keys('notes').length === 2)
    expect(a!.memory.keys('notes')).toEqual(['greeting', 'other'])
    await b!.memory.delete('notes', 'greeting')
    await until(() => a!.memory.get('notes', 'greeting') === undefined && c!.memory.keys('notes').length === 1)
  })

  it('returned values are copies (mutating one does not change the store)', async () => {
    const [a] = await peers(1)
    await a!.memory.set('ns', 'k', { list: [1] })
    ;(a!.memory.get('ns', 'k') as { list: number[] }).list.push(2)
    expect(a!.memory.get('ns', 'k')).toEqual({ list: [1] })
  })

  it('rejects values that are not JSON or too large, and bad namespace names', async () => {
    const [a] = await peers(1)
    await expect(a!.memory.set('ns', 'k', undefined)).rejects.toBeInstanceOf(InvalidValueError)
    await expect(a!.memory.set('ns', 'k', 'x'.repeat(300 * 1024))).rejects.toBeInstanceOf(InvalidValueError)
    await expect(a!.memory.set('no spaces', 'k', 1)).rejects.toBeInstanceOf(NamespaceError)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    await expect(a!.memory.set('ns', 'k', cyclic)).rejects.toBeInstanceOf(InvalidValueError)
  })

  it('private namespaces are never synced, and peers cannot open them', async () => {
    const net = new MemoryNetwork()
    const [a, b] = await peers(2, net)
    await a!.memory.createNamespace('diary', { mode: 'private' })
    await a!.memory.set('diary', 'secret', 'only mine')
    await a!.memory.set('public', 'k', 1)
    await until(() => b!.memory.get('public', 'k') === 1)
    expect(b!.memory.get('diary', 'secret')).toBeUndefined()
    expect(b!.memory.namespaces().map((n) => n.name)).toEqual(['public'])
    // b creating a shared namespace of the same name does not pull a's private data
    await b!.memory.set('diary', 'x', 'b data')
    // A later shared write of b's reaching a tells that b's namespace had its chance to leak.
    await b!.memory.set('public', 'after', 2)
    await until(() => a!.memory.get('public', 'after') === 2)
    expect(a!.memory.keys('diary')).toEqual(['secret'])
    expect(b!.memory.keys('diary')).toEqual(['x'])
    await expect(a!.memory.createNamespace('diary', { mode: 'shared' })).rejects.toBeInstanceOf(NamespaceError)
  })

  it('encrypted namespaces: ciphertext only without the key, plaintext with it', async () => {
    const net = new MemoryNetwork()
    const [a, b, c] = await peers(3, net)
    const key = generateNamespaceKey()
    await a!.memory.createNamespace('team', { mode: 'encrypted', key })
    await a!.memory.set('team', 'plan', { step: 'launch', secret: 'swordfish' })
    await until(() => c!.memory.mode('team') === 'encrypted') // unlock a's namespace, not create another
    await c!.memory.createNamespace('team', { mode: 'encrypted', key })
    await until(() => c!.memory.get('team', 'plan') !== undefined)
    expect(c!.memory.get('team', 'plan')).toEqual({ step: 'launch', secret: 'swordfish' })
    // b syncs the doc (once it reads it) but has no key.
    const docName = namespaceDoc(a!.identity.publicKey, 'team')
    await until(() => b!.memory.namespaces()[0]?.mode === 'encrypted', 2000, JSON.stringify(b!.memory.namespaces()))
    expect(b!.memory.get('team', 'plan')).toBeUndefined()
    await until(() => (b!.doc(docName)?.getMap('kv').size ?? 0) === 1)
    expect(b!.memory.namespaces()).toMatchObject([{ name: 'team', mode: 'encrypted', locked: true, owner: a!.identity.publicKey }])
    expect(b!.memory.get('team', 'plan')).toBeUndefined()
    expect(b!.memory.keys('team')).toEqual([])
    await expect(b!.memory.set('team', 'x', 1)).rejects.toBeInstanceOf(NotWriterError)
    const raw = JSON.stringify(b!.doc(docName)!.getMap('kv').toJSON())
    expect(raw).not.toContain('swordfish')
    expect(raw).not.toContain('plan')
    // A wrong key is refused before anything is stored.
    await expect(b!.memory.createNamespace('team', { mode: 'encrypted', key: generateNamespaceKey() })).rejects.toBeInstanceOf(WrongKeyError)
    expect(b!.memory.namespaces()[0]?.locked).toBe(true)
    // Updates by a writer the owner granted reach a through the same slot.
    await c!.memory.set('team', 'plan', { step: 'no' }).then(
      () => expect.unreachable('c is not a writer yet'),
      (err) => expect(err).toBeInstanceOf(NotWriterError)
    )
    await a!.memory.grant('team', c!.identity.publicKey)
    await until(() => c!.memory.namespaces()[0]?.canWrite === true)
    await c!.memory.set('team', 'plan', { step: 'done' })
    await until(() => (a!.memory.get('team', 'plan') as { step?: string } | undefined)?.step === 'done')
    expect(a!.memory.keys('team')).toEqual(['plan'])
  })

  it('a peer joining late catches up on every namespace', async () => {
    const net = new MemoryNetwork()
    const [a] = await peers(1, net)
    for (let i = 0; i < 5; i++) await a!.memory.set(`ns${i}`, 'k', i)
    const [late] = await peers(1, net, 10)
    await late!.whenSynced
    await until(() => [0, 1, 2, 3, 4].every((i) => late!.memory.get(`ns${i}`, 'k') === i))
  })

  it('subscribers hear about local and remote changes', async () => {
    const [a, b] = await peers(2)
    const seen: string[] = []
    b!.memory.subscribe((c) => {
      seen.push(`${c.namespace}:${c.keys.join()}`)
    })
    await a!.memory.set('s', 'k1', 1)
    // b hears of the new namespace, but opens it only when it reads it.
    await until(() => seen.includes('s:'))
    expect(b!.memory.keys('s')).toEqual([])
    await until(() => seen.includes('s:k1'))
    expect(b!.memory.get('s', 'k1')).toBe(1)
  })
})

describe('task journal', () => {
  it('stores, validates and lists task records', async () => {
    const [a] = await peers(1)
    await a!.journal.put({ id: 't1', status: 'running', createdAt: 1, updatedAt: 2, steps: [{ id: 's1', status: 'done', agent: 'x', output: { ok: true } }] })
    await a!.journal.put({ id: 't2', status: 'done', createdAt: 1, updatedAt: 3, steps: [] })
    expect(a!.journal.get('t1')?.steps[0]?.output).toEqual({ ok: true })
    expect(a!.journal.list().map((t) => t.id)).toEqual(['t2', 't1'])
    expect(a!.journal.list({ status: 'running' }).map((t) => t.id)).toEqual(['t1'])
    await expect(a!.journal.put({ id: '', status: 'x', createdAt: 0, updatedAt: 0, steps: [] })).rejects.toBeInstanceOf(InvalidValueError)
    a!.doc('journal')!.getMap('tasks').set('t3', '{"id":"t3"}') // corrupt record
    expect(a!.journal.get('t3')).toBeUndefined()
    expect(a!.journal.list()).toHaveLength(2)
  })

  it('putMany stores many records as one update, and stores none if one is invalid', async () => {
    const [a] = await peers(1)
    const updates: Uint8Array[] = []
    a!.doc('journal')!.on('update', (u: Uint8Array) => updates.push(u))
    await a!.journal.putMany([1, 2, 3].map((i) => ({ id: `m${i}`, status: 'succeeded', createdAt: i, updatedAt: i, steps: [] })))
    expect(updates).toHaveLength(1)
    expect(a!.journal.list().map((t) => t.id)).toEqual(['m3', 'm2', 'm1'])
    await expect(
      a!.journal.putMany([
        { id: 'ok', status: 'x', createdAt: 1, updatedAt: 1, steps: [] },
        { id: '', status: 'x', createdAt: 0, updatedAt: 0, steps: [] }
      ])
    ).rejects.toBeInstanceOf(InvalidValueError)
    expect(a!.journal.get('ok')).toBeUndefined()
    expect(updates).toHaveLength(1)
  })

  it('is never synced to peers', async () => {
    const [a, b] = await peers(2)
    await a!.journal.put({ id: 't1', status: 'running', createdAt: 1, updatedAt: 2, steps: [] })
    await a!.memory.set('sync-probe', 'k', 1)
    await until(() => b!.memory.get('sync-probe', 'k') === 1)
    expect(b!.journal.list()).toEqual([])
  })
})
