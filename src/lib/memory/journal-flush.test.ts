import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createMemoryLayer, type MemoryLayer } from './layer.ts'
import { JOURNAL_DOC } from './constants.ts'
import { newIdentity } from './test-helpers.ts'
import type { TaskRecord } from './journal.ts'

// A submitted task's first step waits for its plan's record (issue 13); the IndexedDB persistence
// batches writes for 10 ms. `put(record, { now: true })` must not wait for that window (issue 14:
// it was most of an LLM step's added time to its first streamed token).
const layers: MemoryLayer[] = []
afterEach(async () => {
  vi.useRealTimers()
  while (layers.length > 0) await layers.pop()!.stop()
})

function count(dbName: string): Promise<number> {
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

const record = (id: string): TaskRecord => ({ id, status: 'planned', createdAt: 1, updatedAt: 1, steps: [{ id: 's1', status: 'pending' }] })

describe('journal put now', () => {
  it('writes the record at once, with what was pending, while the batch timer has not fired', async () => {
    const prefix = `flush${Date.now()}:`
    const l = createMemoryLayer({ identity: await newIdentity(), persistence: 'indexeddb', dbPrefix: prefix, tabSync: false })
    await l.start()
    layers.push(l)
    await l.journal.put(record('t0'))
    const before = await count(prefix + JOURNAL_DOC)
    // The batch timer never fires from here on: only a write started at once can complete.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    let batchedSaved = false
    void l.journal.put(record('t1')).then(() => {
      batchedSaved = true
    })
    await l.journal.put(record('t2'), { now: true })
    expect(await count(prefix + JOURNAL_DOC)).toBe(before + 1)
    // t1 was pending: it went in the same write, and its own put resolved with it.
    await vi.waitFor(() => expect(batchedSaved).toBe(true), { timeout: 2000, interval: 5 })
  }, 10_000)

  it('without now, a put waits for the batch window', async () => {
    const prefix = `batch${Date.now()}:`
    const l = createMemoryLayer({ identity: await newIdentity(), persistence: 'indexeddb', dbPrefix: prefix, tabSync: false })
    await l.start()
    layers.push(l)
    await l.journal.put(record('t0'))
    const before = await count(prefix + JOURNAL_DOC)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    let saved = false
    const put = l.journal.put(record('t1')).then(() => {
      saved = true
    })
    // IndexedDB work (fake-indexeddb) runs on setImmediate, which is real: give it a few turns.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r))
    expect(saved).toBe(false)
    expect(await count(prefix + JOURNAL_DOC)).toBe(before)
    await vi.advanceTimersByTimeAsync(20)
    await put
    expect(await count(prefix + JOURNAL_DOC)).toBe(before + 1)
  }, 10_000)
})
