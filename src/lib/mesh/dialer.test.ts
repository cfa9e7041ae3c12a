import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Counters } from '../core/index.ts'
import { DIAL_REST_MS, DIAL_STALL_MS, DirectDialer, STEP_IN_BUSY_MS, STEP_IN_MS, circuitRelayOf, dialAllowed, dialableAddrs, isPrivateHost } from './dialer.ts'

const RELAY = '12D3KooWRJbgdJz8hXYpkSv4NLE9Hi38jx5kZUv3TNNvFGHGrJkk'
const OTHER_RELAY = '12D3KooWSk5Bf5bwmCuZTwQKsNSyZjoQAGtXAJeGExZoXBgfzJkd'
const PEER = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const ours = multiaddr(`/ip4/127.0.0.1/tcp/4001/ws/p2p/${RELAY}`)

describe('discovery dials (issue 11 item 10)', () => {
  it('dials only through a relay this tab reached, on its own address of that relay', () => {
    const announced = [
      // An honest announcement, through our relay.
      multiaddr(`/ip4/127.0.0.1/tcp/4001/ws/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`),
      // Our relay's id behind an attacker-chosen host and port: rebuilt on our address.
      multiaddr(`/ip4/10.9.8.7/tcp/22/ws/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`),
      // A relay we do not know, a plain ws:// address, a non-circuit webrtc address.
      multiaddr(`/dns4/evil.example/tcp/443/wss/p2p/${OTHER_RELAY}/p2p-circuit/webrtc/p2p/${PEER}`),
      multiaddr('/ip4/192.168.1.1/tcp/80/ws'),
      multiaddr(`/ip4/1.2.3.4/udp/9/webrtc/p2p/${PEER}`)
    ]
    expect(dialableAddrs(PEER, announced, [ours]).map(String)).toEqual([`${ours.toString()}/p2p-circuit/webrtc/p2p/${PEER}`])
    expect(dialableAddrs(PEER, announced, [])).toEqual([])
  })

  it('gates every outbound dial: our relays and circuits through them, private hosts only where allowed', () => {
    const scope = { ids: new Set([RELAY]), addrs: new Set([ours.toString()]) }
    const circuit = multiaddr(`${ours.toString()}/p2p-circuit/webrtc/p2p/${PEER}`)
    expect(dialAllowed(ours, scope, true)).toBe(true)
    expect(dialAllowed(circuit, scope, true)).toBe(true)
    // Private hosts need the deployment's word.
    expect(dialAllowed(ours, scope, false)).toBe(false)
    expect(dialAllowed(circuit, scope, false)).toBe(false)
    // Attacker-chosen hosts, even naming our relay's id or a public host, are refused.
    expect(dialAllowed(multiaddr(`/ip4/10.9.8.7/tcp/22/ws/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`), scope, true)).toBe(false)
    expect(dialAllowed(multiaddr('/ip4/8.8.8.8/tcp/80/ws'), scope, true)).toBe(false)
    expect(dialAllowed(multiaddr(`/ip4/8.8.8.8/tcp/80/ws/p2p/${PEER}`), scope, true)).toBe(false)
    expect(dialAllowed(multiaddr(`/ip4/8.8.8.8/udp/9/webrtc-direct/p2p/${PEER}`), scope, true)).toBe(false)
    // A public relay of the deployment is allowed without private hosts.
    const pub = multiaddr(`/dns4/relay.example.org/tcp/443/wss/p2p/${RELAY}`)
    const pubScope = { ids: new Set([RELAY]), addrs: new Set([pub.toString()]) }
    expect(dialAllowed(pub, pubScope, false)).toBe(true)
    expect(dialAllowed(multiaddr(`${pub.toString()}/p2p-circuit/webrtc/p2p/${PEER}`), pubScope, false)).toBe(true)
  })

  it('knows private hosts', () => {
    for (const h of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.5.4',
      '172.31.255.255',
      '192.168.0.1',
      '169.254.1.1',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      'fd00::1',
      'fe80::1',
      'localhost',
      'printer.local'
    ])
      expect(isPrivateHost(h), h).toBe(true)
    for (const h of ['8.8.8.8', '172.32.0.1', '100.128.0.1', '2001:db8::1', 'relay.example.org']) expect(isPrivateHost(h), h).toBe(false)
    expect(circuitRelayOf(multiaddr(`${ours.toString()}/p2p-circuit/webrtc/p2p/${PEER}`))).toEqual({ relayId: RELAY, relayAddr: ours.toString() })
  })
})

describe('dial scheduling (join time)', () => {
  const LARGER = '12D3KooWzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'
  const SMALLER = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

  /** A libp2p stand-in: `conns` are the open connections, `dial` never settles unless aborted. */
  function harness(
    self: string,
    peerStore = { known: true },
    degree: { targetPeers?: number; wanted?: (id: string) => boolean } = {},
    opts: { refuse?: boolean } = {}
  ) {
    const conns: Array<{
      remotePeer: { toString(): string }
      status: string
      remoteAddr: ReturnType<typeof multiaddr>
      direction?: string
      limits?: object
      timeline?: { open: number }
    }> = []
    const progress: Array<(e: { type: string }) => void> = []
    const refuse = { on: opts.refuse === true }
    const dial = vi.fn(
      (_addrs: unknown, opts: { signal: AbortSignal; onProgress: (e: { type: string }) => void }) =>
        new Promise((_resolve, reject) => {
          // A peer whose link budget is full: the dial fails at once (the gater closed it).
          if (refuse.on) reject(new Error('the muxer was closed'))
          progress.push(opts.onProgress)
          opts.signal.addEventListener('abort', () => reject(opts.signal.reason))
        })
    )
    const node = {
      peerId: { toString: () => self },
      getConnections: (peer?: { toString(): string }) => conns.filter((c) => peer == null || c.remotePeer.toString() === peer.toString()),
      peerStore: {
        get: async () => {
          if (!peerStore.known) throw new Error('Not found')
          return { addresses: [{ multiaddr: multiaddr(`${ours.toString()}/p2p-circuit/webrtc/p2p/${PEER}`) }] }
        }
      },
      dial
    }
    const counters = new Counters('mesh')
    const dialer = new DirectDialer({ node: () => node as never, skip: () => false, counters, maxPeers: 48, relayAddrs: () => [ours], ...degree })
    return { conns, dial, progress, counters, dialer, refuse }
  }

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('the larger id steps in after STEP_IN_MS when the other side shows no sign of dialling', async () => {
    const h = harness(LARGER)
    h.dialer.discovered(PEER)
    await vi.advanceTimersByTimeAsync(STEP_IN_MS - 200)
    expect(h.dial).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(800)
    expect(h.dial).toHaveBeenCalledTimes(1)
    expect(h.counters.toRecord()['mesh.dial.steppedIn']).toBe(1)
    h.dialer.stop()
  })

  it('gives the other side a dial under way (a connection from it) until STEP_IN_BUSY_MS', async () => {
    const h = harness(LARGER)
    h.conns.push({ remotePeer: { toString: () => PEER }, status: 'open', remoteAddr: multiaddr(`${ours.toString()}/p2p-circuit/p2p/${PEER}`) })
    h.dialer.discovered(PEER)
    await vi.advanceTimersByTimeAsync(STEP_IN_BUSY_MS - 600)
    expect(h.dial).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1200)
    expect(h.dial).toHaveBeenCalledTimes(1)
    h.dialer.stop()
  })

  it("dials a peer a relay's roster named at once, through that relay, once, where this side dials", async () => {
    // A peer not in the peer store: only the roster names it.
    const store = { known: false }
    const h = harness(SMALLER, store)
    h.dial.mockImplementationOnce(() => Promise.reject(new Error('the peer is gone')))
    h.dialer.rostered(PEER, multiaddr(`/ip4/10.9.8.7/tcp/22/ws/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`))
    await vi.advanceTimersByTimeAsync(10)
    expect(h.dial).toHaveBeenCalledTimes(1)
    // Rebuilt on our own address of that relay, like any announced address.
    expect(h.dial.mock.calls[0]?.[0]).toEqual([multiaddr(`${ours.toString()}/p2p-circuit/webrtc/p2p/${PEER}`)])
    expect(h.counters.toRecord()['mesh.dial.rostered']).toBe(1)
    // A roster's peer that does not answer is not retried...
    await vi.advanceTimersByTimeAsync(15_000)
    expect(h.dial).toHaveBeenCalledTimes(1)
    // ...until it is heard of the usual way.
    store.known = true
    h.dialer.discovered(PEER)
    await vi.advanceTimersByTimeAsync(10)
    expect(h.dial).toHaveBeenCalledTimes(2)
    h.dialer.stop()
  })

  it("leaves a roster's peer with the smaller id to dial us (two dials that meet both fail)", async () => {
    const h = harness(LARGER)
    h.dialer.rostered(PEER, multiaddr(`${ours.toString()}/p2p-circuit/webrtc/p2p/${PEER}`))
    await vi.advanceTimersByTimeAsync(STEP_IN_BUSY_MS * 2)
    expect(h.dial).not.toHaveBeenCalled()
    expect(h.counters.toRecord()['mesh.dial.rostered']).toBeUndefined()
    // Presence later: the usual rule (the larger id steps in if no dial comes).
    h.dialer.discovered(PEER)
    await vi.advanceTimersByTimeAsync(STEP_IN_MS + 600)
    expect(h.dial).toHaveBeenCalledTimes(1)
    h.dialer.stop()
  })

  it('a roster names nobody twice, nor ourselves, nor a peer already heard of', async () => {
    const h = harness(SMALLER)
    h.dialer.rostered(SMALLER, multiaddr(`${ours.toString()}/p2p-circuit/webrtc/p2p/${SMALLER}`))
    h.dialer.discovered(PEER)
    h.dialer.rostered(PEER, multiaddr(`${ours.toString()}/p2p-circuit/webrtc/p2p/${PEER}`))
    await vi.advanceTimersByTimeAsync(10)
    expect(h.dial).toHaveBeenCalledTimes(1)
    expect(h.counters.toRecord()['mesh.dial.rostered']).toBeUndefined()
    h.dialer.stop()
  })

  it('abandons a dial that made no progress for DIAL_STALL_MS and retries at once', async () => {
    const h = harness(SMALLER)
    h.dialer.discovered(PEER)
    await vi.advanceTimersByTimeAsync(10)
    expect(h.dial).toHaveBeenCalledTimes(1)
    // Progress keeps it alive...
    await vi.advanceTimersByTimeAsync(DIAL_STALL_MS - 500)
    h.progress[0]?.({ type: 'webrtc:send-sdp-offer' })
    await vi.advanceTimersByTimeAsync(DIAL_STALL_MS - 500)
    expect(h.dial).toHaveBeenCalledTimes(1)
    // ...silence does not: abandoned and dialled again without a backoff.
    await vi.advanceTimersByTimeAsync(600)
    expect(h.counters.toRecord()['mesh.dial.stalled']).toBe(1)
    expect(h.dial).toHaveBeenCalledTimes(2)
    expect(h.dialer.state().find((p) => p.peerId === PEER)?.lastError).toMatch(/^DialStalledError/)
    // The next attempt is given twice as long: a step that is slow but moving still finishes.
    await vi.advanceTimersByTimeAsync(DIAL_STALL_MS * 2 - 100)
    expect(h.dial).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(200)
    expect(h.dial).toHaveBeenCalledTimes(3)
    h.dialer.stop()
  })

  it('past targetPeers direct links (dials under way counted) it dials only a peer it still wants, a donor', async () => {
    const donors = new Set([PEER])
    const h = harness(SMALLER, { known: true }, { targetPeers: 3, wanted: (id) => donors.has(id) })
    const linked = (id: string) => ({
      remotePeer: { toString: () => id },
      status: 'open',
      remoteAddr: multiaddr(`${ours.toString()}/p2p-circuit/webrtc/p2p/${id}`)
    })
    h.conns.push(linked('12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'))
    // One link and a dial under way: one more may start, then the target is reached.
    h.dialer.discovered('12D3KooWCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC')
    h.dialer.discovered('12D3KooWDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD')
    h.dialer.discovered('12D3KooWEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE')
    await vi.advanceTimersByTimeAsync(10)
    expect(h.dial).toHaveBeenCalledTimes(2)
    expect(h.counters.toRecord()['mesh.dial.skipped.target']).toBe(1)
    // A donor is still dialled past the target, while it is wanted.
    h.dialer.discovered(PEER)
    await vi.advanceTimersByTimeAsync(10)
    expect(h.dial).toHaveBeenCalledTimes(3)
    donors.clear()
    h.dialer.discovered('12D3KooWFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF')
    await vi.advanceTimersByTimeAsync(10)
    expect(h.dial).toHaveBeenCalledTimes(3)
    expect(h.counters.toRecord()['mesh.dial.skipped.target']).toBe(2)
    h.dialer.stop()
  })

  it('rests a peer that refused a whole round of dials for DIAL_REST_MS, however often it is announced', async () => {
    const h = harness(SMALLER, { known: true }, {}, { refuse: true })
    h.dialer.discovered(PEER)
    // A dial and eight retries, backing off to 10 s (and within the per-peer dial budget): ~42 s.
    await vi.advanceTimersByTimeAsync(45_000)
    expect(h.dial).toHaveBeenCalledTimes(9)
    // Announced again (a presence, a peer-store update): not dialled while it rests.
    h.dialer.maybeDial(PEER)
    await vi.advanceTimersByTimeAsync(10)
    expect(h.dial).toHaveBeenCalledTimes(9)
    expect(h.counters.toRecord()['mesh.dial.skipped.resting']).toBe(1)
    // Past the rest, an announcement starts a new round, which succeeds once the peer has room.
    await vi.advanceTimersByTimeAsync(DIAL_REST_MS)
    h.refuse.on = false
    h.dialer.maybeDial(PEER)
    await vi.advanceTimersByTimeAsync(10)
    expect(h.dial).toHaveBeenCalledTimes(10)
    h.dialer.stop()
  })
})
