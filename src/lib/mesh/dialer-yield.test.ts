// One handshake per pair (issue 11, join time): a dial the larger peer id stepped in with gives
// way as soon as the smaller id's dial shows up as a signalling stream to it. Two dials of one
// pair at once (each side offering over the same circuit) both failed by timeout under load.
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Counters } from '../core/index.ts'
import { DirectDialer, STEP_IN_BUSY_MS, STEP_IN_MS } from './dialer.ts'
import { DialYieldedError } from './errors.ts'

const RELAY = '12D3KooWRJbgdJz8hXYpkSv4NLE9Hi38jx5kZUv3TNNvFGHGrJkk'
const ours = multiaddr(`/ip4/127.0.0.1/tcp/4001/ws/p2p/${RELAY}`)
const SMALL = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const MID = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const LARGE = '12D3KooWzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'

/** A libp2p stand-in whose dials never settle unless aborted; each dial's abort reason is kept. */
function harness(self: string, peer: string) {
  const reasons: unknown[] = []
  const dial = vi.fn(
    (_addrs: unknown, opts: { signal: AbortSignal }) =>
      new Promise((_resolve, reject) => {
        opts.signal.addEventListener('abort', () => {
          reasons.push(opts.signal.reason)
          reject(opts.signal.reason)
        })
      })
  )
  const node = {
    peerId: { toString: () => self },
    getConnections: () => [],
    peerStore: { get: async () => ({ addresses: [{ multiaddr: multiaddr(`${ours.toString()}/p2p-circuit/webrtc/p2p/${peer}`) }] }) },
    dial
  }
  const counters = new Counters('mesh')
  const dialer = new DirectDialer({ node: () => node as never, skip: () => false, counters, maxPeers: 48, relayAddrs: () => [ours] })
  return { dial, reasons, counters, dialer }
}

describe('one handshake per pair', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it("a dial that stepped in gives way to the smaller id's, and steps in again only after STEP_IN_BUSY_MS", async () => {
    const h = harness(LARGE, MID)
    h.dialer.discovered(MID)
    await vi.advanceTimersByTimeAsync(STEP_IN_MS + 100)
    expect(h.dial).toHaveBeenCalledTimes(1)
    // MID's dial reaches us: its signalling stream opens.
    h.dialer.answering(MID)
    await vi.advanceTimersByTimeAsync(0)
    expect(h.reasons[0]).toBeInstanceOf(DialYieldedError)
    const c = h.counters.toRecord()
    expect(c['mesh.dial.yielded']).toBe(1)
    expect(c['mesh.dial.failed']).toBeUndefined()
    // Its dial is given time; a new presence or update does not start ours meanwhile.
    h.dialer.maybeDial(MID)
    await vi.advanceTimersByTimeAsync(STEP_IN_BUSY_MS - 500)
    expect(h.dial).toHaveBeenCalledTimes(1)
    // It never linked: we dial again.
    await vi.advanceTimersByTimeAsync(1_000)
    expect(h.dial).toHaveBeenCalledTimes(2)
    h.dialer.stop()
  })

  it('a larger id that has not dialled yet waits STEP_IN_BUSY_MS from its signalling, not STEP_IN_MS from discovery', async () => {
    const h = harness(LARGE, MID)
    h.dialer.answering(MID)
    h.dialer.discovered(MID)
    await vi.advanceTimersByTimeAsync(STEP_IN_MS + 500)
    expect(h.dial).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(STEP_IN_BUSY_MS)
    expect(h.dial).toHaveBeenCalledTimes(1)
    h.dialer.stop()
  })

  it("the smaller id's own dial goes on when the larger one's signalling reaches it", async () => {
    const h = harness(SMALL, MID)
    h.dialer.discovered(MID)
    await vi.advanceTimersByTimeAsync(10)
    expect(h.dial).toHaveBeenCalledTimes(1)
    h.dialer.answering(MID)
    await vi.advanceTimersByTimeAsync(0)
    expect(h.reasons).toEqual([])
    expect(h.counters.toRecord()['mesh.dial.yielded']).toBeUndefined()
    h.dialer.stop()
  })
})
