/**
 * The Dashboard's samples in IndexedDB (issue 15): one record per sample keyed by
 * [t, boot], appended in batches and pruned past KEEP_MS, so a reload shows the last hour.
 * Two tabs of one profile each write their own session's samples; `load` keeps one
 * session per stretch of time (a session that overlaps the one before it is left out).
 */
import * as v from 'valibot'
import type { Sample } from './metrics-samples.ts'

const DB = 'zerostate-metrics'
const STORE = 'samples'

const nums = v.array(v.pipe(v.number(), v.finite()))
const byKey = v.record(v.pipe(v.string(), v.maxLength(32)), v.pipe(v.number(), v.finite()))
/** A stored sample is read back like any input: checked, or dropped. */
export const SampleSchema = v.object({
  t: v.pipe(v.number(), v.finite()),
  boot: v.pipe(v.string(), v.maxLength(64)),
  ok: v.number(),
  failed: v.number(),
  lat: v.pipe(nums, v.maxLength(64)),
  latSum: v.number(),
  runs: v.number(),
  queue: v.number(),
  inFlight: v.number(),
  busy: v.number(),
  slots: v.number(),
  peers: byKey,
  conns: byKey,
  bytesIn: v.number(),
  bytesOut: v.number(),
  relay: v.number()
})

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1)
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: ['t', 'boot'] })
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

/** Keep one session per stretch of time: sessions in order of their first sample, each after the previous one ended. */
export function untangle(samples: Sample[]): Sample[] {
  const sessions = new Map<string, Sample[]>()
  for (const s of samples) {
    const list = sessions.get(s.boot)
    if (list == null) sessions.set(s.boot, [s])
    else list.push(s)
  }
  const ordered = [...sessions.values()].map((l) => l.sort((a, b) => a.t - b.t)).sort((a, b) => (a[0] as Sample).t - (b[0] as Sample).t)
  const out: Sample[] = []
  for (const list of ordered) {
    const last = out.at(-1)
    if (last != null && (list[0] as Sample).t <= last.t) continue
    out.push(...list)
  }
  return out
}

/**
 * Samples kept in this profile's IndexedDB. The connection stays open once opened: a save as the
 * page goes away (pagehide) must put its samples in a transaction within that event, and an
 * `indexedDB.open` started then never finished, so the samples of a task that ended just before a
 * reload were lost. Closed when another tab upgrades the database, and reopened on the next use.
 */
export class SampleStore {
  #db: Promise<IDBDatabase> | undefined

  #open(): Promise<IDBDatabase> {
    if (this.#db == null) {
      const db = open()
      this.#db = db
      db.then(
        (d) => {
          const forget = (): void => {
            if (this.#db === db) this.#db = undefined
          }
          d.onversionchange = () => {
            d.close()
            forget()
          }
          d.onclose = forget
        },
        () => {
          if (this.#db === db) this.#db = undefined
        }
      )
    }
    return this.#db
  }

  /** Samples since `since` (epoch ms), checked, untangled, in time order. */
  async load(since: number): Promise<Sample[]> {
    const db = await this.#open()
    const rows = await new Promise<unknown[]>((resolve, reject) => {
      const req = db
        .transaction(STORE, 'readonly')
        .objectStore(STORE)
        .getAll(IDBKeyRange.lowerBound([since]))
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error)
    })
    const ok: Sample[] = []
    for (const row of rows) {
      const r = v.safeParse(SampleSchema, row)
      if (r.success) ok.push(r.output)
    }
    return untangle(ok)
  }

  /** Append samples and drop those before `before`, in one transaction (committed at once: the page may be going away). */
  async append(samples: readonly Sample[], before: number): Promise<void> {
    const db = await this.#open()
    await new Promise<void>((resolve, reject) => {
      const tx = db.transaction(STORE, 'readwrite')
      const store = tx.objectStore(STORE)
      for (const s of samples) store.put(s)
      store.delete(IDBKeyRange.upperBound([before]))
      tx.oncomplete = () => resolve()
      tx.onerror = () => reject(tx.error)
      tx.onabort = () => reject(tx.error ?? new Error('the transaction was aborted'))
      tx.commit?.()
    })
  }
}
