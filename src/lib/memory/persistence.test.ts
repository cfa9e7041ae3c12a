import 'fake-indexeddb/auto'
import { describe, it, expect, afterEach } from 'vitest'
import * as Y from 'yjs'
import { IndexeddbPersistence as YIndexeddbPersistence } from 'y-indexeddb'
import { createMemoryLayer, type MemoryLayer } from './layer.ts'
import { IndexedDbPersistence } from './indexeddb-persistence.ts'
import { fakeSha, newIdentity, until } from './test-helpers.ts'
import { generateNamespaceKey } from './namespace-crypto.ts'
import { Counters, type Identity } from '../core/index.ts'

// Node + fake-indexeddb: checks behaviour, not speed (bench/memory.mjs measures Chromium).
const open: MemoryLayer[] = []
afterEach(async () => {
  while (open.length > 0) await open.pop()!.stop()
})
let dbn = 0

async function layer(prefix: string, identity: Identity, limits = {}) {
  const l = createMemoryLayer({ identity, persistence: 'indexeddb', dbPrefix: prefix, tabSync: false, limits })
  await l.start()
  open.push(l)
  return l
}

function rawPut(dbName: string, value: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(dbName)
    req.onsuccess = () => {
      const tx = req.result.transaction('updates', 'readwrite')
      tx.objectStore('updates').add(value)
      tx.oncomplete = () => {
        req.result.close()
        resolve()
      }
      tx.onerror = () => reject(tx.error)
    }
    req.onerror = () => reject(req.error)
  })
}

function rawCount(dbName: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(dbName)
    req.onsuccess = () => {
      const r = req.result.transaction('updates', 'readonly').objectStore('updates').count()
      r.onsuccess = () => {
        req.result.close()
        resolve(r.result)
      }
    }
    req.onerror = () => reject(req.error)
  })
}

describe('IndexedDB persistence', () => {
  it('a reload keeps memory, registry, namespaces (with saved keys) and the journal', async () => {
    const prefix = `t${dbn++}:`
    const id = await newIdentity()
    const a = await layer(prefix, id)
    await a.memory.set('notes', 'k', { v: 1 })
    await a.memory.createNamespace('mine', { mode: 'private' })
    await a.memory.set('mine', 'p', 'private')
    const key = generateNamespaceKey()
    await a.memory.createNamespace('team', { mode: 'encrypted', key })
    await a.memory.set('team', 'secret', 42)
    await a.registry.publish({ id: 'agent', manifest: { name: 'A', capabilities: ['x'] }, moduleSha256: fakeSha(1) })
    await a.journal.put({ id: 't1', status: 'running', createdAt: 1, updatedAt: 1, steps: [{ id: 's', status: 'pending' }] })
    await a.stop()
    open.pop()
    const b = await layer(prefix, id)
    expect(b.memory.get('notes', 'k')).toEqual({ v: 1 })
    expect(b.memory.get('mine', 'p')).toBe('private')
    expect(b.memory.get('team', 'secret')).toBe(42)
    expect(b.memory.namespaces().map((n) => `${n.name}:${n.mode}`)).toEqual(['mine:private', 'notes:shared', 'team:encrypted'])
    expect(b.registry.list({ capability: 'x' }).map((e) => e.id)).toEqual(['agent'])
    expect(b.journal.get('t1')?.steps[0]?.status).toBe('pending')
  })

  it('what set() reported saved survives a crash (no stop, no final flush)', async () => {
    const prefix = `t${dbn++}:`
    const id = await newIdentity()
    const a = await layer(prefix, id)
    await a.memory.set('crash', 'k', 'saved')
    // Simulate a killed tab: abandon `a` without stop(); open the same databases fresh.
    open.pop()
    const b = await layer(prefix, id)
    expect(b.memory.get('crash', 'k')).toBe('saved')
  })

  it('writes at once once the page is hidden or left (the batch timer may never fire)', async () => {
    const name = `lifecycle-${dbn++}`
    class Page extends EventTarget {
      visibilityState = 'visible'
    }
    const page = new Page()
    const doc = new Y.Doc()
    const counters = new Counters('idb')
    const p = new IndexedDbPersistence(name, doc, { delayMs: 60_000, lifecycle: page as never, counters })
    await p.whenSynced
    // whenSaved waits for the batch (60 s here): it settling tells that a write went out.
    const watch = (): { saved: boolean } => {
      const w = { saved: false }
      void p.whenSaved.then(() => {
        w.saved = true
      })
      return w
    }
    doc.getMap('m').set('before', 1)
    const before = watch()
    expect(await rawCount(name)).toBe(0) // still batched (one IndexedDB round trip later)
    expect(before.saved).toBe(false)
    page.visibilityState = 'hidden'
    page.dispatchEvent(new Event('visibilitychange'))
    await until(() => before.saved, 5000, 'the pending batch written on hide')
    expect(await rawCount(name)).toBe(1)
    doc.getMap('m').set('while-hidden', 2)
    await until(async () => (await rawCount(name)) === 2, 5000, 'an update while hidden written at once')
    page.visibilityState = 'visible'
    page.dispatchEvent(new Event('visibilitychange'))
    doc.getMap('m').set('visible-again', 3)
    const again = watch()
    expect(await rawCount(name)).toBe(2) // batched again
    expect(again.saved).toBe(false)
    expect(counters.get('writes')).toBe(2)
    page.dispatchEvent(new Event('pagehide'))
    await until(() => again.saved, 5000, 'the pending batch written on pagehide')
    expect(await rawCount(name)).toBe(3)
    expect(counters.get('writes')).toBe(3)
    await p.destroy()
  })

  it('flushes asked while a write is under way share the next write; each resolves once its update is stored', async () => {
    const name = `group-${dbn++}`
    const doc = new Y.Doc()
    const counters = new Counters('idb')
    const p = new IndexedDbPersistence(name, doc, { delayMs: 60_000, counters })
    await p.whenSynced
    // 50 updates, each flushed at once, as 50 tasks that end in different turns ask for.
    const flushed: Array<Promise<void>> = []
    const storedWhenSaved: number[] = []
    for (let i = 0; i < 50; i++) {
      doc.getMap('m').set(`k${i}`, i)
      flushed.push(
        p.flush().then(async () => {
          // Whatever this flush reported saved is in IndexedDB: a fresh doc read from it holds k0..ki.
          const fresh = new Y.Doc()
          const reader = new IndexedDbPersistence(name, fresh, { delayMs: 60_000 })
          await reader.whenSynced
          storedWhenSaved[i] = Object.keys(fresh.getMap('m').toJSON()).length
          await reader.destroy()
        })
      )
      await Promise.resolve()
    }
    await Promise.all(flushed)
    for (let i = 0; i < 50; i++) expect(storedWhenSaved[i]).toBeGreaterThanOrEqual(i + 1)
    // The first write, then one for everything flushed while it was under way (not one per flush).
    expect(counters.get('writes')).toBe(2)
    expect(await rawCount(name)).toBe(2)
    await p.destroy()
  })

  it('batches many writes into few transactions, and compacts', async () => {
    const prefix = `t${dbn++}:`
    const a = await layer(prefix, await newIdentity(), { compactAfterRecords: 10 })
    await a.memory.createNamespace('bulk', { mode: 'private' }) // doc `memory/bulk`, unsigned values
    const writes = Array.from({ length: 1000 }, (_, i) => a.memory.set('bulk', `k${i}`, i))
    await Promise.all(writes)
    expect(a.metrics()['memory.idb.writes']).toBeLessThan(10)
    for (let i = 0; i < 30; i++) await a.memory.set('bulk', `late${i}`, i)
    expect(a.metrics()['memory.idb.compactions']).toBeGreaterThan(0)
    expect(await rawCount(`${prefix}memory/bulk`)).toBeLessThanOrEqual(10)
    const id2 = await newIdentity()
    const b = await layer(prefix, id2)
    expect(b.memory.keys('bulk')).toHaveLength(1030)
    expect(b.memory.get('bulk', 'k999')).toBe(999)
  })

  it('skips and counts invalid stored records', async () => {
    const prefix = `t${dbn++}:`
    const id = await newIdentity()
    const a = await layer(prefix, id)
    await a.memory.createNamespace('ns', { mode: 'private' }) // doc `memory/ns`
    await a.memory.set('ns', 'good', 1)
    await a.stop()
    open.pop()
    await rawPut(`${prefix}memory/ns`, 'not bytes')
    await rawPut(`${prefix}memory/ns`, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]))
    const b = await layer(prefix, id)
    expect(b.memory.get('ns', 'good')).toBe(1)
    expect(b.metrics()['memory.idb.invalidRecords']).toBe(2)
  })

  it('reads what y-indexeddb wrote (same storage layout)', async () => {
    const name = `t${dbn++}:compat`
    const doc = new Y.Doc()
    const yp = new YIndexeddbPersistence(name, doc)
    await yp.whenSynced
    const stored = await rawCount(name)
    doc.getMap('kv').set('from', 'y-indexeddb')
    await until(async () => (await rawCount(name)) === stored + 1, 5000, 'y-indexeddb stored the update')
    await yp.destroy()
    const doc2 = new Y.Doc()
    const mine = new IndexedDbPersistence(name, doc2)
    await mine.whenSynced
    expect(doc2.getMap('kv').get('from')).toBe('y-indexeddb')
    doc2.getMap('kv').set('back', 'zerostate')
    await mine.flush()
    await mine.destroy()
    const doc3 = new Y.Doc()
    const yp3 = new YIndexeddbPersistence(name, doc3)
    await yp3.whenSynced
    expect(doc3.getMap('kv').toJSON()).toEqual({ from: 'y-indexeddb', back: 'zerostate' })
    await yp3.destroy()
  })
})
