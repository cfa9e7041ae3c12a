import { afterEach, describe, expect, it } from 'vitest'
import { Worker } from 'node:worker_threads'
import { SupervisedWorker, nodeWorkerHandle, type SupervisedWorkerInit, type WorkerHandle } from './supervised-worker.ts'
import { WorkerAbortedError, WorkerCrashedError, WorkerStoppedError, WorkerTimeoutError } from './errors.ts'

interface TestApi {
  echo<T>(x: T): T
  calls(): number
  hang(): Promise<never>
  spin(): never
  fail(message: string): never
  exitSoon(code: number): Promise<never>
}

const SCRIPT = new URL('./supervised-worker.test-worker.mjs', import.meta.url)
const made: SupervisedWorker<TestApi>[] = []

function supervised(init: Partial<SupervisedWorkerInit<TestApi>> = {}): { w: SupervisedWorker<TestApi>; spawned: () => number } {
  let spawned = 0
  const spawn = (): WorkerHandle => {
    spawned++
    const worker = new Worker(SCRIPT)
    worker.unref()
    return nodeWorkerHandle(worker)
  }
  const w = new SupervisedWorker<TestApi>({ spawn, deadlineMs: 10_000, label: 'the test worker', ...init })
  made.push(w)
  return { w, spawned: () => spawned }
}

afterEach(async () => {
  await Promise.all(made.splice(0).map((w) => w.stop()))
})

describe('SupervisedWorker', () => {
  it('a call past its deadline rejects with WorkerTimeoutError, the worker is replaced and the next call works on a fresh one', async () => {
    const { w, spawned } = supervised()
    expect(await w.call((r) => r.echo('a'))).toBe('a')
    const t0 = performance.now()
    await expect(w.call((r) => r.hang(), { deadlineMs: 150 })).rejects.toSatisfy(
      (e) => e instanceof WorkerTimeoutError && /the test worker did not answer within 150 ms/.test((e as Error).message)
    )
    expect(performance.now() - t0).toBeGreaterThanOrEqual(145)
    expect(w.replaced).toBe(1)
    expect(await w.call((r) => r.echo('b'))).toBe('b')
    // A fresh worker: its own call counter started again.
    expect(await w.call((r) => r.calls())).toBe(1)
    expect(spawned()).toBe(2)
  })

  it('a worker stuck in a busy loop is terminated at the deadline (only terminate can stop it)', async () => {
    const { w } = supervised()
    await expect(w.call((r) => r.spin(), { deadlineMs: 150 })).rejects.toBeInstanceOf(WorkerTimeoutError)
    expect(await w.call((r) => r.echo(7), { deadlineMs: 5000 })).toBe(7)
  })

  it('a worker that dies rejects every pending call at once, not just one', async () => {
    const { w, spawned } = supervised()
    const pending = [w.call((r) => r.hang()), w.call((r) => r.hang()), w.call((r) => r.exitSoon(3))]
    const results = await Promise.allSettled(pending)
    for (const r of results) {
      expect(r.status).toBe('rejected')
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(WorkerCrashedError)
      expect((r as PromiseRejectedResult).reason.message).toMatch(/crashed \(the worker exited with code 3\)/)
    }
    expect(w.replaced).toBe(1)
    expect(w.pending).toBe(0)
    expect(await w.call((r) => r.echo('after'))).toBe('after')
    expect(spawned()).toBe(2)
  })

  it('a deadline frees the other calls waiting on the same worker too', async () => {
    const { w } = supervised()
    const slow = w.call((r) => r.hang(), { deadlineMs: 10_000 })
    const short = w.call((r) => r.hang(), { deadlineMs: 100 })
    await expect(short).rejects.toBeInstanceOf(WorkerTimeoutError)
    const err = await slow.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(WorkerCrashedError)
    expect((err as Error).cause).toBeInstanceOf(WorkerTimeoutError)
    expect(w.replaced).toBe(1)
  })

  it('abort rejects at once with WorkerAbortedError and replaces the worker; an aborted signal never reaches a worker', async () => {
    const { w, spawned } = supervised()
    const ac = new AbortController()
    const p = w.call((r) => r.hang(), { signal: ac.signal })
    await w.call((r) => r.echo(0))
    ac.abort()
    await expect(p).rejects.toBeInstanceOf(WorkerAbortedError)
    expect(w.replaced).toBe(1)
    expect(w.alive).toBe(false)
    await expect(w.call((r) => r.echo(1), { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(WorkerAbortedError)
    expect(spawned()).toBe(1)
    expect(await w.call((r) => r.echo(2))).toBe(2)
    expect(spawned()).toBe(2)
  })

  it('stop() rejects pending calls with WorkerStoppedError, refuses new ones, is idempotent, and start() runs again', async () => {
    const { w } = supervised()
    const pending = [w.call((r) => r.hang()), w.call((r) => r.hang())]
    await w.call((r) => r.echo(0))
    await w.stop()
    await w.stop()
    for (const r of await Promise.allSettled(pending)) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(WorkerStoppedError)
    await expect(w.call((r) => r.echo(1))).rejects.toBeInstanceOf(WorkerStoppedError)
    expect(w.replaced).toBe(0)
    await w.start()
    expect(await w.call((r) => r.echo(3))).toBe(3)
  })

  it('start() is idempotent and waits for the probe; errors thrown in the worker keep their name and do not replace it', async () => {
    const { w, spawned } = supervised({ probe: (r) => r.echo(null) })
    await Promise.all([w.start(), w.start()])
    await w.start()
    expect(spawned()).toBe(1)
    const err = await w.call((r) => r.fail('bad input')).catch((e: unknown) => e)
    expect((err as Error).name).toBe('CustomError')
    expect((err as Error).message).toBe('bad input')
    expect(w.replaced).toBe(0)
    // Still the first worker: only the probe reached it.
    expect(await w.call((r) => r.calls())).toBe(1)
  })

  it("'eager' respawns at once after a crash and tells onSpawn/onReplace", async () => {
    const reasons: string[] = []
    let spawns = 0
    const { w } = supervised({ respawn: 'eager', onSpawn: () => spawns++, onReplace: (e) => reasons.push(e.name) })
    await w.start()
    await w.call((r) => r.exitSoon(1)).catch(() => undefined)
    expect(reasons).toEqual(['WorkerCrashedError'])
    expect(w.alive).toBe(true)
    expect(spawns).toBe(2)
    expect(await w.call((r) => r.echo('x'))).toBe('x')
  })
})
