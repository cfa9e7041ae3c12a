import { describe, expect, it } from 'vitest'
import { abortableSleep, settledWithin } from './backoff.ts'

describe('abortableSleep', () => {
  const cancelled = (reason: unknown) => new Error(`cancelled: ${String(reason)}`)
  it('rejects at once when the signal has already aborted (a listener would never fire)', async () => {
    const ac = new AbortController()
    ac.abort('before')
    const t0 = performance.now()
    await expect(abortableSleep(60_000, ac.signal, cancelled)).rejects.toThrow('cancelled: before')
    expect(performance.now() - t0).toBeLessThan(1000)
  })
  it('rejects when the signal aborts during the wait, and resolves after the time otherwise', async () => {
    const ac = new AbortController()
    const p = abortableSleep(60_000, ac.signal, cancelled)
    ac.abort('during')
    await expect(p).rejects.toThrow('cancelled: during')
    await expect(abortableSleep(1, new AbortController().signal, cancelled)).resolves.toBeUndefined()
  })
})

describe('settledWithin', () => {
  it('is true when the promise settles in time, fulfilled or rejected, and false when the bound comes first', async () => {
    expect(await settledWithin(Promise.resolve(1), 1000)).toBe(true)
    expect(await settledWithin(Promise.reject(new Error('x')), 1000)).toBe(true)
    expect(await settledWithin(new Promise(() => {}), 5)).toBe(false)
    // Nothing to wait for (a component without a catalogReady): settled, at once.
    expect(await settledWithin(undefined, 60_000)).toBe(true)
  })
  it('is false at once when the signal aborts first, before or during the wait, and leaves no listener behind', async () => {
    const before = new AbortController()
    before.abort()
    const t0 = performance.now()
    expect(await settledWithin(new Promise(() => {}), 60_000, before.signal)).toBe(false)
    const during = new AbortController()
    const waiting = settledWithin(new Promise(() => {}), 60_000, during.signal)
    during.abort()
    expect(await waiting).toBe(false)
    expect(performance.now() - t0).toBeLessThan(1000)
    const kept = new AbortController()
    let listeners = 0
    const add = kept.signal.addEventListener.bind(kept.signal)
    const remove = kept.signal.removeEventListener.bind(kept.signal)
    kept.signal.addEventListener = (...a: Parameters<typeof add>) => {
      listeners++
      add(...a)
    }
    kept.signal.removeEventListener = (...a: Parameters<typeof remove>) => {
      listeners--
      remove(...a)
    }
    expect(await settledWithin(Promise.resolve(), 60_000, kept.signal)).toBe(true)
    expect(listeners).toBe(0)
  })
})
