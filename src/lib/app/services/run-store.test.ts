import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { RUN_LOG_ROOT, RUNS_ROOT, RunJournalFullError, RunStore, type RunMeta } from './run-store.ts'
import { MemoryRunLocks, WebRunLocks } from './run-locks.ts'

const meta = (id: string, patch: Partial<RunMeta> = {}): RunMeta => ({
  id,
  kind: 'workflow',
  name: id,
  status: 'running',
  createdAt: Date.now(),
  updatedAt: Date.now(),
  ...patch
})

/** Two docs joined like two tabs of a profile (every update applied to the other). */
function twoTabs(): [Y.Doc, Y.Doc] {
  const a = new Y.Doc()
  const b = new Y.Doc()
  a.on('update', (u: Uint8Array, origin: unknown) => {
    if (origin !== 'sync') Y.applyUpdate(b, u, 'sync')
  })
  b.on('update', (u: Uint8Array, origin: unknown) => {
    if (origin !== 'sync') Y.applyUpdate(a, u, 'sync')
  })
  return [a, b]
}

describe('RunStore', () => {
  it('keeps each run an append-only log that replays in order, seen by the other tab', () => {
    const [a, b] = twoTabs()
    const sa = new RunStore(a)
    const sb = new RunStore(b)
    sa.put(meta('r1'))
    const log = sa.log<{ type: string; n: number }>('r1')
    for (let n = 0; n < 5; n++) log.append({ type: 'step', n })
    expect(
      sb
        .log<{ n: number }>('r1')
        .events()
        .map((e) => e.n)
    ).toEqual([0, 1, 2, 3, 4])
    expect(sb.unfinished().map((m) => m.id)).toEqual(['r1'])
    sa.update('r1', { status: 'succeeded' })
    expect(sb.unfinished()).toEqual([])
    expect(sb.get('r1')?.status).toBe('succeeded')
  })

  it('refuses an event over the size bound and a log over the event bound, with a typed error, and counts them', () => {
    const store = new RunStore(new Y.Doc(), { limits: { maxEventBytes: 100, maxEvents: 3 } })
    store.put(meta('r'))
    const log = store.log('r')
    expect(() => log.append({ type: 'out', output: 'x'.repeat(200) })).toThrow(RunJournalFullError)
    log.append({ type: 'a' })
    log.append({ type: 'b' })
    log.append({ type: 'c' })
    expect(() => log.append({ type: 'd' })).toThrow(/most one run may journal/)
    expect(log.events()).toHaveLength(3)
    expect(store.metrics()['runs.refusedEvents']).toBe(2)
  })

  it('skips and counts stored garbage instead of crashing a reader', () => {
    const doc = new Y.Doc()
    const store = new RunStore(doc)
    doc.getMap(RUNS_ROOT).set('bad', '{not json')
    doc.getMap(RUNS_ROOT).set('wrong', JSON.stringify({ id: 'wrong', kind: 'spaceship' }))
    const arr = new Y.Array<string>()
    doc.getMap(RUN_LOG_ROOT).set('r', arr)
    arr.push(['{"type":"ok"}', 'nope', '[1,2]'])
    expect(store.list()).toEqual([])
    expect(store.log('r').events()).toEqual([{ type: 'ok' }])
    expect(store.metrics()['runs.invalidRecords']).toBeGreaterThanOrEqual(4)
  })

  it('keeps at most maxFinishedRuns finished runs (oldest dropped with their logs) and never drops an unfinished one', () => {
    const store = new RunStore(new Y.Doc(), { limits: { maxFinishedRuns: 2 } })
    const t0 = Date.now()
    store.put(meta('old-running', { createdAt: t0 - 10_000 }))
    for (let i = 0; i < 4; i++) {
      store.put(meta(`f${i}`, { createdAt: t0 + i, status: 'running' }))
      store.log(`f${i}`).append({ type: 'x' })
      store.update(`f${i}`, { status: 'succeeded' })
    }
    expect(store.list().map((m) => m.id)).toEqual(['f3', 'f2', 'old-running'])
    expect(store.logSize('f0')).toBe(0)
    expect(store.logSize('f3')).toBe(1)
  })

  it('hands an approval decision taken in one tab to the tab that runs the workflow', () => {
    const [a, b] = twoTabs()
    const runner = new RunStore(a)
    const other = new RunStore(b)
    const seen: unknown[] = []
    runner.onDecision('r1', (d) => seen.push(d))
    runner.onDecision('r2', () => seen.push('wrong run'))
    other.decide({ runId: 'r1', stepId: 'review', approved: false, comment: 'no', at: 1 })
    expect(seen).toEqual([{ runId: 'r1', stepId: 'review', approved: false, comment: 'no', at: 1 }])
    expect(runner.decision('r1', 'review')?.approved).toBe(false)
  })

  it('observe() fires on the log and summary of its run only', () => {
    const store = new RunStore(new Y.Doc())
    store.put(meta('r1'))
    store.put(meta('r2'))
    let n = 0
    const off = store.observe('r1', () => n++)
    store.log('r2').append({ type: 'x' })
    expect(n).toBe(0)
    store.log('r1').append({ type: 'x' }) // creates the log
    store.log('r1').append({ type: 'y' }) // appends to it
    store.update('r1', { status: 'waiting' })
    expect(n).toBe(3)
    off()
    store.log('r1').append({ type: 'z' })
    expect(n).toBe(3)
  })
})

describe('run locks', () => {
  it('MemoryRunLocks: one holder; tryAcquire fails while held; a queued acquire gets it on release', async () => {
    const locks = new MemoryRunLocks()
    const first = await locks.tryAcquire('r')
    expect(first).toBeDefined()
    expect(await locks.tryAcquire('r')).toBeUndefined()
    let got = false
    const queued = locks.acquire('r').then((l) => {
      got = true
      return l
    })
    await Promise.resolve()
    expect(got).toBe(false)
    first?.release()
    const second = await queued
    expect(got).toBe(true)
    expect(await locks.tryAcquire('r')).toBeUndefined()
    second.release()
    expect(await locks.tryAcquire('r')).toBeDefined()
  })

  it('MemoryRunLocks: an aborted wait leaves the queue', async () => {
    const locks = new MemoryRunLocks()
    const held = await locks.acquire('r')
    const ac = new AbortController()
    const waiting = locks.acquire('r', { signal: ac.signal })
    ac.abort(new Error('stopped'))
    await expect(waiting).rejects.toThrow('stopped')
    held.release()
    expect(locks.isHeld('r')).toBe(false)
  })

  it('WebRunLocks maps ifAvailable onto navigator.locks and holds the lock until release()', async () => {
    const calls: Array<{ name: string; ifAvailable?: boolean }> = []
    let holder: Promise<void> | undefined
    const fake = {
      async request(name: string, options: { ifAvailable?: boolean }, cb: (lock: unknown) => Promise<void>): Promise<void> {
        calls.push({ name, ifAvailable: options.ifAvailable })
        if (options.ifAvailable === true && holder != null) return await cb(null)
        holder = cb({ name })
        await holder
        holder = undefined
      }
    }
    const locks = new WebRunLocks(fake)
    const lease = await locks.tryAcquire('zerostate:run:r')
    expect(lease).toBeDefined()
    expect(await locks.tryAcquire('zerostate:run:r')).toBeUndefined()
    lease?.release()
    await Promise.resolve()
    await Promise.resolve()
    expect(await locks.tryAcquire('zerostate:run:r')).toBeDefined()
    expect(calls.map((c) => c.ifAvailable)).toEqual([true, true, true])
  })

  it('saved() of many writes in one turn is one flush, which includes all of them; a later write gets its own', async () => {
    const doc = new Y.Doc()
    let flushes = 0
    /** Events each flush saw written (what it would persist). */
    const seen: number[] = []
    const store = new RunStore(doc, {
      saved: async () => {
        flushes++
        seen.push(store.logSize('r'))
      }
    })
    const log = store.log('r')
    const waits = []
    for (let i = 0; i < 64; i++) {
      log.append({ type: 'step-finished', i })
      waits.push(store.saved())
    }
    await Promise.all(waits)
    expect(flushes).toBe(1)
    expect(seen).toEqual([64])
    log.append({ type: 'step-finished', i: 64 })
    await store.saved()
    expect(flushes).toBe(2)
    expect(seen).toEqual([64, 65])
  })
})
