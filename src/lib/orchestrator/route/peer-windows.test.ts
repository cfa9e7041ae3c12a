import { describe, expect, it } from 'vitest'
import { PeerWindows } from './peer-windows.ts'
import { TaskCancelledError } from '../errors.ts'

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0))

describe('PeerWindows', () => {
  it('admits up to the window, then queues in order and admits one per release', async () => {
    const w = new PeerWindows({ initial: 2 })
    const r1 = (await w.acquire('p')).release
    const r2 = (await w.acquire('p')).release
    expect(w.available('p')).toBe(false)
    const order: number[] = []
    const third = w.acquire('p', undefined, 10_000).then((r) => {
      order.push(3)
      return r.release
    })
    const fourth = w.acquire('p', undefined, 10_000).then((r) => {
      order.push(4)
      return r.release
    })
    await tick()
    expect(order).toEqual([])
    r1()
    r1() // releasing twice gives back one place only
    await tick()
    expect(order).toEqual([3])
    expect(w.get('p').inflight).toBe(2)
    r2()
    await tick()
    expect(order).toEqual([3, 4])
    ;(await third)()
    ;(await fourth)()
    expect(w.get('p').inflight).toBe(0)
    expect(w.available('other')).toBe(true)
  })

  it('a "full" answer shrinks the window to what the donor runs for us; successes widen it again', async () => {
    const w = new PeerWindows({ initial: 8, max: 10 })
    const places = await Promise.all([1, 2, 3, 4, 5].map(() => w.acquire('p')))
    for (const p of places.slice(0, 3)) p.accepted()
    w.full('p')
    expect(w.get('p').limit).toBe(3)
    w.full('p') // a burst of "full" answers does not shrink it further
    expect(w.get('p').limit).toBe(3)
    for (const p of places) p.release()
    for (let i = 0; i < 4; i++) w.ok('p') // about one per window's worth (3) of successes
    expect(w.get('p').limit).toBe(4)
    for (let i = 0; i < 100; i++) w.ok('p')
    expect(w.get('p').limit).toBe(10)
  })

  it('a waiter gives up waiting after maxWaitMs (the offer goes anyway), or on abort', async () => {
    const w = new PeerWindows({ initial: 1 })
    await w.acquire('p')
    const t0 = Date.now()
    const late = (await w.acquire('p', undefined, 30)).release
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25)
    expect(w.get('p').inflight).toBe(2)
    late()
    const ac = new AbortController()
    const waiting = w.acquire('p', ac.signal, 10_000)
    ac.abort()
    await expect(waiting).rejects.toBeInstanceOf(TaskCancelledError)
    expect(w.get('p').inflight).toBe(1)
  })
})
