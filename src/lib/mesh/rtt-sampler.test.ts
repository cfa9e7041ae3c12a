import type { Connection } from '@libp2p/interface'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { RttSampler, pingLink } from './rtt-sampler.ts'

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

  it('48 links: at most perSecond pings a second in all, each link measured in turn, in one pass over the links a second', async () => {
    const l = links(48)
    let passes = 0
    const connections = () => {
      passes++
      return l.connections()
    }
    const sampler = new RttSampler({ connections, ping: l.ping }, { perSecond: 4, minIntervalMs: 1000 })
    sampler.start()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(passes).toBe(10)
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

  it("tells a link's first round trip at once, and only its first", async () => {
    const l = links(3)
    const first: number[] = []
    const sampler = new RttSampler(
      { connections: l.connections, ping: l.ping, firstRtt: (conn) => first.push((conn as unknown as { id: number }).id) },
      { perSecond: 4, minIntervalMs: 1000 }
    )
    sampler.measured(l.conns[2] as unknown as Connection, 12)
    sampler.start()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(l.pinged.get(0)).toBeGreaterThanOrEqual(4)
    expect(first.sort()).toEqual([0, 1, 2])
    sampler.stop()
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

  it("a ping's deadline ends with it: an answered ping leaves no timer behind, an unanswered one is aborted after timeoutMs", async () => {
    const signals: AbortSignal[] = []
    let answer = true
    const ping = vi.fn(async (_conn: Connection, signal: AbortSignal) => {
      signals.push(signal)
      if (answer) return 20
      return await new Promise<number>((_ok, fail) => signal.addEventListener('abort', () => fail(signal.reason), { once: true }))
    })
    const l = links(1)
    const sampler = new RttSampler({ connections: l.connections, ping }, { perSecond: 4, minIntervalMs: 1000, timeoutMs: 3000 })
    sampler.start()
    await vi.advanceTimersByTimeAsync(1_000)
    expect(ping).toHaveBeenCalledTimes(1)
    // Only the sampler's own interval is left: the answered ping's deadline was cleared
    // (AbortSignal.timeout's could not be, and fired 3 s later for nothing).
    expect(vi.getTimerCount()).toBe(1)
    answer = false
    await vi.advanceTimersByTimeAsync(1_000)
    expect(ping).toHaveBeenCalledTimes(2)
    const pending = signals[1] as AbortSignal
    expect(vi.getTimerCount()).toBe(2)
    await vi.advanceTimersByTimeAsync(2_999)
    expect(pending.aborted).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(pending.aborted).toBe(true)
    expect((pending.reason as Error).name).toBe('TimeoutError')
    expect(signals[0]?.aborted).toBe(false)
    sampler.stop()
  })

  it('a link with a yamux muxer is pinged by its PING frame, never by a ping stream (issue 16: the streams were the largest idle cost)', async () => {
    const muxerPing = vi.fn(async () => 27)
    const newStream = vi.fn(async () => {
      throw new Error('no stream expected')
    })
    const conn = { id: 'y', status: 'open', rtt: undefined as number | undefined, muxer: { status: 'open', ping: muxerPing }, newStream }
    const sampler = new RttSampler({ connections: () => [conn as unknown as Connection] }, { perSecond: 4, minIntervalMs: 1000 })
    sampler.start()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(muxerPing.mock.calls.length).toBeGreaterThanOrEqual(4)
    expect(newStream).not.toHaveBeenCalled()
    expect(conn.rtt).toBe(27)
    sampler.stop()
  })

  it('a link without a pinging muxer (a WebRTC link whose stats gave no RTT yet) is still pinged on a stream', async () => {
    const newStream = vi.fn(async () => {
      throw new Error('stream refused')
    })
    const conn = { id: 'w', status: 'open', newStream }
    await expect(pingLink(conn as unknown as Connection, AbortSignal.timeout(1000))).rejects.toThrow(/stream refused/)
    expect(newStream).toHaveBeenCalledTimes(1)
  })

  it('a muxer ping not answered in time is not aborted (yamux closes the connection on a pong it gave up), and the next joins it', async () => {
    // As yamux: one ping active at a time, later calls join it; it takes no signal.
    let active: PromiseWithResolvers<number> | undefined
    const muxerPing = vi.fn((...args: unknown[]) => {
      expect(args).toEqual([])
      active ??= Promise.withResolvers<number>()
      return active.promise
    })
    const conn = { id: 'y', status: 'open', muxer: { status: 'open', ping: muxerPing } }
    const ac = new AbortController()
    const first = pingLink(conn as unknown as Connection, ac.signal)
    ac.abort(new Error('timed out'))
    await expect(first).rejects.toThrow(/timed out/)
    const second = pingLink(conn as unknown as Connection, new AbortController().signal)
    active?.resolve(31)
    await expect(second).resolves.toBe(31)
    expect(muxerPing).toHaveBeenCalledTimes(2)
  })

  it('a link whose RTT came from its stats (measured) is not pinged while that stays fresh', async () => {
    const l = links(3)
    const sampler = new RttSampler({ connections: l.connections, ping: l.ping }, { perSecond: 4, minIntervalMs: 1000 })
    sampler.start()
    // The liveness monitor reads link 0's stats every 500 ms and hands over its RTT.
    const feed = setInterval(() => sampler.measured(l.conns[0] as unknown as Connection, 12.4), 500)
    sampler.measured(l.conns[0] as unknown as Connection, 12.4)
    await vi.advanceTimersByTimeAsync(10_000)
    clearInterval(feed)
    expect(l.pinged.get(0)).toBeUndefined()
    expect(l.conns[0]?.rtt).toBe(12)
    expect(l.pinged.get(1)).toBeGreaterThanOrEqual(9)
    expect(l.pinged.get(2)).toBeGreaterThanOrEqual(9)
    sampler.stop()
  })
})
