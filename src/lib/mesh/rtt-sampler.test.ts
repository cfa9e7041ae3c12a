import type { Connection } from '@libp2p/interface'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { RttSampler } from './rtt-sampler.ts'

/** Stand-ins for open connections: `pinged` counts pings per connection. */
function links(n: number) {
  const conns = Array.from({ length: n }, (_, i) => ({ id: i, status: 'open', rtt: undefined as number | undefined }))
  const pinged = new Map<number, number>()
  const ping = vi.fn(async (conn: Connection) => {
    const c = conn as unknown as { id: number }
    pinged.set(c.id, (pinged.get(c.id) ?? 0) + 1)
    return 20 + c.id
  })
  return { conns, pinged, ping, connections: () => conns as unknown as Connection[] }
}

describe('RTT sampling within a budget (issue 16)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'performance'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('48 links: at most perSecond pings a second in all, each link measured in turn', async () => {
    const l = links(48)
    const sampler = new RttSampler({ connections: l.connections, ping: l.ping }, { perSecond: 4, minIntervalMs: 1000 })
    sampler.start()
    await vi.advanceTimersByTimeAsync(10_000)
    // libp2p's monitor at 1 s pinged 480 times in these 10 s.
    expect(l.ping.mock.calls.length).toBeLessThanOrEqual(40)
    expect(l.ping.mock.calls.length).toBeGreaterThanOrEqual(39)
    // Round robin: the 40 pings went to 40 different links, and each got its RTT.
    expect(l.pinged.size).toBe(40)
    await vi.advanceTimersByTimeAsync(2_000)
    expect(l.conns.every((c, i) => c.rtt === 20 + i)).toBe(true)
    expect(Math.max(...l.pinged.values())).toBe(1)
    sampler.stop()
  })

  it('a few links: each measured every minIntervalMs, as the 1 s keep-alive did', async () => {
    const l = links(2)
    const sampler = new RttSampler({ connections: l.connections, ping: l.ping }, { perSecond: 4, minIntervalMs: 1000 })
    sampler.start()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(l.pinged.get(0)).toBeGreaterThanOrEqual(9)
    expect(l.pinged.get(0)).toBeLessThanOrEqual(10)
    expect(l.pinged.get(1)).toBeGreaterThanOrEqual(9)
    sampler.stop()
    const before = l.ping.mock.calls.length
    await vi.advanceTimersByTimeAsync(5_000)
    expect(l.ping.mock.calls.length).toBe(before)
  })

  it('skips closed links and one whose ping is still out; a failed ping leaves the last RTT', async () => {
    const l = links(2)
    l.conns[1]!.status = 'closed'
    let release: (() => void) | undefined
    const ping = vi.fn(
      () =>
        new Promise<number>((_ok, fail) => {
          release = () => fail(new Error('timed out'))
        })
    )
    l.conns[0]!.rtt = 33
    const sampler = new RttSampler({ connections: l.connections, ping }, { perSecond: 4, minIntervalMs: 1000 })
    sampler.start()
    await vi.advanceTimersByTimeAsync(3_000)
    expect(ping).toHaveBeenCalledTimes(1)
    release?.()
    await vi.advanceTimersByTimeAsync(1_000)
    expect(l.conns[0]!.rtt).toBe(33)
    expect(ping).toHaveBeenCalledTimes(2)
    sampler.stop()
  })
})
