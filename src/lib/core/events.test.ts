import { afterEach, describe, expect, it, vi } from 'vitest'
import { ChangeNotifier, TypedEventEmitter, coalesce, listen } from './events.ts'

interface Events {
  tick: CustomEvent<number>
  tock: Event
}

const microtask = async (): Promise<void> => {
  await Promise.resolve()
}

describe('listen', () => {
  it('delivers typed events until unsubscribed, and only of its type', () => {
    const target = new TypedEventEmitter<Events>()
    const seen: number[] = []
    const off = listen(target, 'tick', (e) => {
      seen.push(e.detail)
    })
    target.safeDispatchEvent('tick', { detail: 1 })
    target.safeDispatchEvent('tock')
    target.safeDispatchEvent('tick', { detail: 2 })
    off()
    target.safeDispatchEvent('tick', { detail: 3 })
    expect(seen).toEqual([1, 2])
    expect(target.listenerCount('tick')).toBe(0)
    off() // a second unsubscribe is harmless
  })

  it('keeps a throwing listener from stopping the others and reports what it threw', () => {
    const target = new TypedEventEmitter<Events>()
    const errors: unknown[] = []
    const seen: string[] = []
    listen(
      target,
      'tock',
      () => {
        throw new Error('boom')
      },
      { onError: (e) => errors.push(e) }
    )
    listen(target, 'tock', () => seen.push('second'))
    // Node would treat a throw inside an EventTarget listener as an uncaught exception.
    expect(() => target.safeDispatchEvent('tock')).not.toThrow()
    expect(seen).toEqual(['second'])
    expect((errors[0] as Error).message).toBe('boom')
  })

  it('unsubscribes when its signal aborts', () => {
    const target = new TypedEventEmitter<Events>()
    const ac = new AbortController()
    let n = 0
    listen(target, 'tock', () => n++, { signal: ac.signal })
    target.safeDispatchEvent('tock')
    ac.abort()
    target.safeDispatchEvent('tock')
    expect(n).toBe(1)
  })
})

describe('coalesce', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('folds calls in one turn into one run at the next microtask', async () => {
    let runs = 0
    const c = coalesce(() => runs++)
    c()
    c()
    c()
    expect(runs).toBe(0)
    await microtask()
    expect(runs).toBe(1)
    c()
    await microtask()
    expect(runs).toBe(2)
  })

  it('tells the first change after a quiet spell at once, then at most once per interval', async () => {
    vi.useFakeTimers()
    const at: number[] = []
    const c = coalesce(() => at.push(Date.now()), { everyMs: 100, now: () => Date.now() })
    const t0 = Date.now()
    c()
    await microtask()
    expect(at).toEqual([t0]) // no timer delay for the first one
    vi.advanceTimersByTime(30)
    c()
    c()
    await microtask()
    expect(at).toHaveLength(1) // within 100 ms of the last: waits
    vi.advanceTimersByTime(69)
    expect(at).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(at).toEqual([t0, t0 + 100]) // one run for both calls, 100 ms after the first
    vi.advanceTimersByTime(500) // a quiet spell
    c()
    await microtask()
    expect(at).toEqual([t0, t0 + 100, t0 + 600])
  })

  it('drops a pending call on cancel and still works afterwards', async () => {
    vi.useFakeTimers()
    let runs = 0
    const c = coalesce(() => runs++, { everyMs: 50, now: () => Date.now() })
    c()
    c.cancel()
    await microtask()
    expect(runs).toBe(0)
    c()
    await microtask()
    expect(runs).toBe(1)
    c() // within 50 ms: a timer
    c.cancel()
    vi.advanceTimersByTime(200)
    expect(runs).toBe(1)
    expect(vi.getTimerCount()).toBe(0)
    c()
    await microtask()
    expect(runs).toBe(2)
  })

  it('reports a throwing function and keeps coalescing', async () => {
    const errors: unknown[] = []
    let runs = 0
    const c = coalesce(
      () => {
        runs++
        throw new Error('bad')
      },
      { onError: (e) => errors.push(e) }
    )
    c()
    await microtask()
    c()
    await microtask()
    expect(runs).toBe(2)
    expect(errors).toHaveLength(2)
  })
})

describe('ChangeNotifier', () => {
  it('tells every subscriber once per coalesced burst; notify() tells at once', async () => {
    const changes = new ChangeNotifier()
    let a = 0
    let b = 0
    const offA = changes.subscribe(() => a++)
    changes.subscribe(() => b++)
    for (let i = 0; i < 1000; i++) changes.changed()
    await microtask()
    expect([a, b]).toEqual([1, 1])
    changes.notify()
    expect([a, b]).toEqual([2, 2])
    offA()
    changes.notify()
    expect([a, b]).toEqual([2, 3])
  })

  it('is a real EventTarget whose subscribers cannot break each other', async () => {
    const errors: unknown[] = []
    const changes = new ChangeNotifier({ onError: (e) => errors.push(e) })
    expect(changes).toBeInstanceOf(EventTarget)
    let raw = 0
    changes.addEventListener('change', () => raw++)
    changes.subscribe(() => {
      throw new Error('listener bug')
    })
    let after = 0
    changes.subscribe(() => after++)
    changes.changed()
    await microtask()
    expect([raw, after, errors.length]).toEqual([1, 1, 1])
  })

  it('drops a pending notification on cancel', async () => {
    const changes = new ChangeNotifier({ everyMs: 100 })
    let n = 0
    changes.subscribe(() => n++)
    changes.changed()
    changes.cancel()
    await microtask()
    expect(n).toBe(0)
  })
})
