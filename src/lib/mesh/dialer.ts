/**
 * Schedules direct WebRTC dials to discovered peers: one dial per pair (the
 * smaller peer id dials; the other steps in after STEP_IN_MS unless that dial is
 * seen under way), stalled dials abandoned after DIAL_STALL_MS and retried at once,
 * other failures retried with backoff, a connection budget, and the timings the
 * mesh benchmark reads.
 */
import type { Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { backoffDelay } from '../core/index.ts'
import { logger } from '../core/index.ts'
import type { Counters } from '../core/index.ts'
import { DIAL_BUDGET } from './constants.ts'
import { DialStalledError, DialYieldedError } from './errors.ts'
import { Transport, connectionTransport } from './peer-book.ts'

const log = logger('mesh:dialer')

/**
 * How long the larger peer id waits for the other side to dial before dialling itself
 * (join time, issue 11). The other side's dial shows up here as a connection from it (the
 * circuit its WebRTC signalling runs over) within about a second; a peer that shows
 * nothing by STEP_IN_MS has not heard of us yet, or cannot dial: we dial.
 */
export const STEP_IN_MS = 1500
/** Once the other side's dial is seen under way (a connection from it is open), how long it is given before we dial too. */
export const STEP_IN_BUSY_MS = 7000
/**
 * A dial whose last progress event (circuit, encryption, SDP, ICE) is older than this is
 * abandoned and retried at once, rather than waiting out DIAL_TIMEOUT_MS: a dial stuck on
 * one step (a lost signalling message, a data channel that never opens) does not recover.
 * Each step took at most ~1.7 s at load average 15-20.
 */
export const DIAL_STALL_MS = 4000
/** The most one dial may take. */
export const DIAL_TIMEOUT_MS = 10_000
const MAX_ATTEMPTS = 8
/**
 * After a round of failed dials (the first and MAX_ATTEMPTS retries, ~40 s of backoff) a peer is not dialled again for
 * this long, whatever announces it: a peer whose link budget is full refuses every dial, and
 * each of its presences or peer-store updates started another round of eight. At 200
 * simulated peers, idle, 0.3 dials a second per peer were refused, each a signalling round,
 * an upgrade on both sides and a refusal (issue 16).
 */
export const DIAL_REST_MS = 60_000

/** What the dialer needs from the node that owns it. */
export interface DialerComponents {
  node: () => Libp2p | undefined
  /** Peers that are never dialled directly (relays, blocked peers). */
  skip: (peerId: string) => boolean
  counters: Counters
  maxPeers: number
  /** Direct links this side dials on its own up to (DEFAULT_TARGET_PEERS); past it only peers `wanted` says. Default: maxPeers. */
  targetPeers?: number
  /** Past `targetPeers`: whether this peer is still worth a link of ours (a donor while we link too few). */
  wanted?: (peerId: string) => boolean
  /**
   * Addresses of the relays this tab reached (with `/p2p/<relay>`): the only ones a
   * WebRTC dial is signalled through, whatever a peer announced.
   */
  relayAddrs?: () => Multiaddr[]
  /** The dial budget (DIAL_BUDGET by default). */
  budget?: { perSecond: number; burst: number; perPeerPerMinute: number }
  /**
   * Whether the connection budget (maxPeers) has room for a link with this peer, counted with
   * the links others are opening (LinkBudget). Default: open direct links under maxPeers.
   */
  hasRoom?: (peerId: string) => boolean
  /** Whether an open direct (WebRTC) link with this peer exists, from the owner's index of its links. Default: its connections scanned. */
  isDirect?: (peerId: string) => boolean
  /** Peers (relays aside) with an open direct link, from the owner's index. Default: every connection scanned. */
  directCount?: () => number
  now?: () => number
}

const PRIVATE_V4 = [/^10\./, /^127\./, /^169\.254\./, /^192\.168\./, /^172\.(1[6-9]|2\d|3[01])\./, /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./, /^0\./]

/** True for loopback, private, link-local and unspecified hosts (and `localhost`, `*.local`). */
export function isPrivateHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '')
  if (h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.local')) return true
  if (h.includes(':')) return h === '::' || h === '::1' || /^f[cd]/.test(h) || /^fe[89ab]/.test(h) || h.startsWith('::ffff:127.') || h.startsWith('::ffff:10.')
  return PRIVATE_V4.some((re) => re.test(h))
}

/** The host a multiaddr reaches first (its first ip4/ip6/dns component), if any. */
export function firstHost(ma: Multiaddr): string | undefined {
  return ma.getComponents().find((c) => ['ip4', 'ip6', 'dns', 'dns4', 'dns6', 'dnsaddr'].includes(c.name))?.value
}

/** The relay a circuit address goes through: its peer id and the part before `/p2p-circuit`. */
export function circuitRelayOf(ma: Multiaddr): { relayId: string; relayAddr: string } | undefined {
  const comps = ma.getComponents()
  const i = comps.findIndex((c) => c.name === 'p2p-circuit')
  if (i < 1) return undefined
  const relay = comps[i - 1]
  if (relay?.name !== 'p2p' || relay.value == null) return undefined
  const s = ma.toString()
  return { relayId: relay.value, relayAddr: s.slice(0, s.indexOf('/p2p-circuit')) }
}

/**
 * The WebRTC addresses to dial for `peerId` (issue 11 item 10): only through a relay this
 * tab reached, rebuilt on this tab's own address of that relay, so an announcement names
 * at most which of our relays holds the peer's reservation and never a host or port.
 * Announced addresses through unknown relays, or not through a relay, are dropped.
 */
export function dialableAddrs(peerId: string, announced: Multiaddr[], relays: Multiaddr[]): Multiaddr[] {
  const ours = new Map<string, Multiaddr>()
  for (const r of relays) {
    const id = r.getComponents().findLast((c) => c.name === 'p2p')?.value
    if (id != null && !ours.has(id)) ours.set(id, r)
  }
  const out = new Map<string, Multiaddr>()
  for (const ma of announced) {
    if (!ma.getComponents().some((c) => c.name === 'webrtc')) continue
    const via = circuitRelayOf(ma)
    const relay = via == null ? undefined : ours.get(via.relayId)
    if (relay == null) continue
    const target = multiaddr(`${relay.toString()}/p2p-circuit/webrtc/p2p/${peerId}`)
    out.set(target.toString(), target)
  }
  return [...out.values()]
}

/**
 * The connection gater's rule for a tab's outbound dials: a relay of ours (its own
 * address, or a circuit through it), and a private or loopback host only where the
 * deployment allows it. Everything else (addresses peers announced) is refused.
 */
export function dialAllowed(ma: Multiaddr, relays: { ids: Set<string>; addrs: Set<string> }, allowPrivate: boolean): boolean {
  const host = firstHost(ma)
  if (host != null && !allowPrivate && isPrivateHost(host)) return false
  const via = circuitRelayOf(ma)
  if (via != null) return relays.ids.has(via.relayId) && relays.addrs.has(via.relayAddr)
  if (ma.getComponents().some((c) => c.name === 'webrtc' || c.name === 'webrtc-direct')) return false
  const id = ma.getComponents().findLast((c) => c.name === 'p2p')?.value
  // The relay list's own addresses (DNS ones resolve before the gater sees them).
  return relays.addrs.has(ma.toString()) || (id != null && relays.ids.has(id))
}

/** A token bucket (dials per second, with a burst). */
class Bucket {
  #tokens: number
  #at: number
  constructor(
    readonly perSecond: number,
    readonly burst: number,
    readonly now: () => number
  ) {
    this.#tokens = burst
    this.#at = now()
  }
  take(): boolean {
    const t = this.now()
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#at) / 1000) * this.perSecond)
    this.#at = t
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }
  /** ms until one token is there. */
  wait(): number {
    return Math.max(50, Math.ceil(((1 - this.#tokens) / this.perSecond) * 1000))
  }
}

/** Direct-dial scheduler of one mesh node. */
export class DirectDialer {
  readonly #c: DialerComponents
  readonly #dialing = new Map<string, { attempt: number; stalls?: number; timer?: ReturnType<typeof setTimeout> }>()
  readonly #discoveredAt = new Map<string, number>()
  readonly #directAt = new Map<string, number>()
  readonly #dialStartedAt = new Map<string, number>()
  /** Progress events of the first successful dial per peer: phase name → ms after the dial started. */
  readonly #phases = new Map<string, Record<string, number>>()
  #firstDirectAt: number | undefined
  readonly #bucket: Bucket
  readonly #perPeer = new Map<string, number[]>()
  readonly #budget: { perSecond: number; burst: number; perPeerPerMinute: number }
  readonly #now: () => number
  /**
   * Peers a relay's roster named that nothing else told us of yet (roster.ts), with their
   * circuit through that relay: dialled once, at once, where this side is the one to dial.
   */
  readonly #roster = new Map<string, Multiaddr>()
  /** The abort of each dial in flight (see `answering`). */
  readonly #inflight = new Map<string, AbortController>()
  /** When a peer that dials before us (the smaller id) last opened a signalling stream to us. */
  readonly #answeredAt = new Map<string, number>()
  /** When each peer whose last round of dials all failed may be dialled again (DIAL_REST_MS). */
  readonly #restUntil = new Map<string, number>()
  /** Per peer: dial attempts, failures and the last failure (diagnostics). */
  readonly #history = new Map<string, { attempts: number; failures: number; lastError?: string; lastErrorAt?: number }>()

  constructor(components: DialerComponents) {
    this.#c = components
    this.#budget = components.budget ?? DIAL_BUDGET
    this.#now = components.now ?? (() => performance.now())
    this.#bucket = new Bucket(this.#budget.perSecond, this.#budget.burst, this.#now)
  }

  /**
   * One dial attempt against the budget: all peers together, and one peer per minute
   * (its presence repeats every 2 s; a record of a peer that never answers costs little).
   * Returns 0 when the dial may go, or how many ms to wait.
   */
  #spend(id: string): number {
    const t = this.#now()
    const recent = (this.#perPeer.get(id) ?? []).filter((at) => t - at < 60_000)
    if (recent.length >= this.#budget.perPeerPerMinute) {
      this.#perPeer.set(id, recent)
      return 60_000 - (t - (recent[0] as number))
    }
    if (!this.#bucket.take()) return this.#bucket.wait()
    recent.push(t)
    this.#perPeer.set(id, recent)
    if (this.#perPeer.size > 4096) {
      const oldest = this.#perPeer.keys().next().value
      if (oldest !== undefined) this.#perPeer.delete(oldest)
    }
    return 0
  }

  /** A peer was discovered (discovery event or first presence). */
  discovered(id: string): void {
    if (!this.#discoveredAt.has(id)) this.#discoveredAt.set(id, performance.now())
    // Heard of the usual way: retried as usual from here on (a roster dial under way goes on).
    this.#roster.delete(id)
    this.maybeDial(id)
  }

  /**
   * A relay's roster named `id` as holding a reservation there, reachable at `circuit`
   * (`<relay>/p2p-circuit/webrtc/p2p/<id>`). Where we are the side that dials (the smaller
   * id) we dial now instead of after presence gossip; the other side is left to dial us when
   * it hears of us (its own roster, or presence), so the two never dial each other at once.
   * One attempt: a peer that is gone is not retried until it is heard of the usual way.
   */
  rostered(id: string, circuit: Multiaddr): void {
    const node = this.#c.node()
    if (node == null || id === node.peerId.toString() || this.#c.skip(id)) return
    if (this.#discoveredAt.has(id) || !(node.peerId.toString() < id)) return
    this.#discoveredAt.set(id, performance.now())
    this.#roster.set(id, circuit)
    this.#c.counters.inc('dial.rostered')
    this.maybeDial(id)
  }

  /**
   * `id` opened a WebRTC signalling stream to us: its dial is under way. Where it is the side
   * that dials (the smaller id), a dial we stepped in with gives way, and we do not step in
   * again for STEP_IN_BUSY_MS: two dials of one pair at once (each side offering over the
   * same circuit) failed both, by timeout, under load (mesh-five at load 15-18: 10 s lost
   * per pair, then a retry). Where we are the smaller id, our own dial goes on.
   */
  answering(id: string): void {
    const node = this.#c.node()
    if (node == null || node.peerId.toString() < id) return
    this.#answeredAt.set(id, performance.now())
    if (this.#answeredAt.size > 1024) {
      const oldest = this.#answeredAt.keys().next().value
      if (oldest !== undefined) this.#answeredAt.delete(oldest)
    }
    const dial = this.#inflight.get(id)
    if (dial == null) return
    this.#c.counters.inc('dial.yielded')
    dial.abort(new DialYieldedError(`${id} is dialling this tab`))
  }

  /** A direct connection to `id` opened (either side dialled). */
  connected(id: string): void {
    if (!this.#directAt.has(id)) this.#directAt.set(id, performance.now())
    this.#firstDirectAt ??= performance.now()
    clearTimeout(this.#dialing.get(id)?.timer)
    this.#dialing.delete(id)
  }

  /** Whether any connection with `id` is open (a relayed one: its dial to us is under way). */
  #hasConnection(id: string): boolean {
    return (
      this.#c
        .node()
        ?.getConnections(peerIdFromString(id))
        .some((c) => c.status === 'open') ?? false
    )
  }

  /** Peers being dialled now, or waited on to dial this peer (each holds a slot of the connection budget). */
  dialing(): Iterable<string> {
    return this.#dialing.keys()
  }

  hasDirect(id: string): boolean {
    if (this.#c.isDirect != null) return this.#c.node() != null && this.#c.isDirect(id)
    return (
      this.#c
        .node()
        ?.getConnections(peerIdFromString(id))
        .some((c) => c.status === 'open' && connectionTransport(c) === Transport.webrtc) ?? false
    )
  }

  /** Cancel every pending dial. */
  stop(): void {
    for (const d of this.#dialing.values()) clearTimeout(d.timer)
    this.#dialing.clear()
  }

  /**
   * What the dialer is doing, per peer it heard of: whether a dial is pending (and its
   * attempt), attempts and failures so far, the last failure. For failure reports.
   */
  state(): Array<{ peerId: string; pending?: number; attempts: number; failures: number; lastError?: string; lastErrorAt?: number; direct: boolean }> {
    const ids = new Set([...this.#discoveredAt.keys(), ...this.#dialing.keys(), ...this.#history.keys()])
    return [...ids].map((peerId) => ({
      peerId,
      pending: this.#dialing.get(peerId)?.attempt,
      attempts: 0,
      failures: 0,
      ...this.#history.get(peerId),
      direct: this.hasDirect(peerId)
    }))
  }

  #record(id: string, err?: Error): void {
    const h = this.#history.get(id) ?? { attempts: 0, failures: 0 }
    if (err == null) h.attempts++
    else {
      h.failures++
      h.lastError = `${err.name}: ${err.message}`.slice(0, 300)
      h.lastErrorAt = Math.round(performance.now())
    }
    this.#history.set(id, h)
    if (this.#history.size > 1024) {
      const oldest = this.#history.keys().next().value
      if (oldest !== undefined) this.#history.delete(oldest)
    }
  }

  timings(): {
    firstDirectAt?: number
    peers: Array<{ peerId: string; discoveredAt?: number; dialStartedAt?: number; directAt?: number; phases?: Record<string, number> }>
  } {
    const ids = new Set([...this.#discoveredAt.keys(), ...this.#directAt.keys()])
    return {
      firstDirectAt: this.#firstDirectAt,
      peers: [...ids].map((peerId) => ({
        peerId,
        discoveredAt: this.#discoveredAt.get(peerId),
        dialStartedAt: this.#dialStartedAt.get(peerId),
        directAt: this.#directAt.get(peerId),
        phases: this.#phases.get(peerId)
      }))
    }
  }

  /**
   * Dial a peer's WebRTC address if this side should. Only the smaller peer id
   * dials, or a pair ends up with two connections (FIELD-NOTES).
   */
  maybeDial(id: string): void {
    const node = this.#c.node()
    if (node == null || id === node.peerId.toString() || this.#c.skip(id)) return
    if (this.#dialing.has(id) || this.hasDirect(id)) return
    const rest = this.#restUntil.get(id)
    if (rest != null) {
      if (this.#now() < rest) {
        this.#c.counters.inc('dial.skipped.resting')
        return
      }
      this.#restUntil.delete(id)
    }
    const direct =
      this.#c.directCount?.() ??
      new Set(
        node
          .getConnections()
          .filter((c) => connectionTransport(c) === Transport.webrtc)
          .map((c) => c.remotePeer.toString())
      ).size
    // Dials under way count: a newcomer hears of dozens of peers at once. Checked before the
    // budget: past the target (most peers of a large mesh) no room needs counting.
    if (direct + this.#dialing.size >= (this.#c.targetPeers ?? this.#c.maxPeers) && this.#c.wanted?.(id) !== true) {
      this.#c.counters.inc('dial.skipped.target')
      return
    }
    if (this.#c.hasRoom != null ? !this.#c.hasRoom(id) : direct >= this.#c.maxPeers) {
      this.#c.counters.inc('dial.skipped.budget')
      return
    }
    const mine = node.peerId.toString() < id
    const now = performance.now()
    const answered = this.#answeredAt.get(id)
    // Its dial under way (its signalling seen, or a connection from it) is given STEP_IN_BUSY_MS.
    const busy = answered != null && now - answered < STEP_IN_BUSY_MS
    const waited = busy ? now - (answered as number) : now - (this.#discoveredAt.get(id) ?? now)
    const wait = busy || this.#hasConnection(id) ? STEP_IN_BUSY_MS : STEP_IN_MS
    if (!mine && waited < wait) {
      // Come back soon: to dial if the other side shows no sign of dialling, or to give
      // its dial under way more time.
      this.#dialing.set(id, {
        attempt: 0,
        timer: setTimeout(
          () => {
            this.#dialing.delete(id)
            this.maybeDial(id)
          },
          Math.min(wait - waited, 500)
        )
      })
      return
    }
    if (!mine) this.#c.counters.inc('dial.steppedIn')
    this.#dialing.set(id, { attempt: 0 })
    void this.#dial(id)
  }

  async #webrtcAddrs(node: Libp2p, id: string): Promise<Multiaddr[]> {
    let announced: Multiaddr[] = []
    try {
      announced = (await node.peerStore.get(peerIdFromString(id))).addresses.map((a) => a.multiaddr)
    } catch {
      /* not in the peer store: a roster's peer, or none */
    }
    const circuit = this.#roster.get(id)
    return dialableAddrs(id, circuit == null ? announced : [circuit, ...announced], this.#c.relayAddrs?.() ?? [])
  }

  async #dial(id: string): Promise<void> {
    const state = this.#dialing.get(id)
    const node = this.#c.node()
    if (state == null || node == null) return
    if (this.hasDirect(id)) {
      this.#dialing.delete(id)
      return
    }
    const addrs = await this.#webrtcAddrs(node, id)
    if (addrs.length === 0) {
      // No WebRTC address announced yet: its presence or peer:update brings us back.
      this.#dialing.delete(id)
      return
    }
    const wait = this.#spend(id)
    if (wait > 0) {
      this.#c.counters.inc('dial.skipped.rate')
      state.timer = setTimeout(() => {
        void this.#dial(id)
      }, wait)
      return
    }
    if (!this.#dialStartedAt.has(id)) this.#dialStartedAt.set(id, performance.now())
    const abort = new AbortController()
    this.#inflight.set(id, abort)
    let lastPhase = 'start'
    // Each stall doubles the patience of the next attempt: on a machine so loaded that a
    // step takes longer than DIAL_STALL_MS, dials must still be able to finish.
    const stallMs = Math.min(DIAL_STALL_MS * 2 ** (state.stalls ?? 0), DIAL_TIMEOUT_MS)
    const stalled = () => {
      abort.abort(new DialStalledError(`no progress for ${stallMs} ms after ${lastPhase} dialling ${id}`))
    }
    let stallTimer = setTimeout(stalled, stallMs)
    const overall = setTimeout(() => {
      abort.abort(new DOMException('signal timed out', 'TimeoutError'))
    }, DIAL_TIMEOUT_MS)
    try {
      this.#c.counters.inc('dial.attempts')
      this.#record(id)
      const t0 = performance.now()
      const phases: Record<string, number> = {}
      await node.dial(addrs, {
        signal: abort.signal,
        onProgress: (e: { type: string }) => {
          phases[e.type] ??= Math.round((performance.now() - t0) * 10) / 10
          lastPhase = e.type
          clearTimeout(stallTimer)
          stallTimer = setTimeout(stalled, stallMs)
        }
      } as Parameters<Libp2p['dial']>[1])
      phases.done = Math.round((performance.now() - t0) * 10) / 10
      if (!this.#phases.has(id)) this.#phases.set(id, phases)
      this.#c.counters.inc('dial.ok')
      this.#dialing.delete(id)
    } catch (err) {
      if (abort.signal.reason instanceof DialYieldedError) {
        // Not a failure: the other side's dial goes on; we step in again only if it shows no link.
        this.#dialing.delete(id)
        state.timer = undefined
        this.#dialing.set(id, {
          attempt: 0,
          timer: setTimeout(() => {
            this.#dialing.delete(id)
            this.maybeDial(id)
          }, STEP_IN_BUSY_MS)
        })
        return
      }
      const stall = abort.signal.reason instanceof DialStalledError
      const error = stall ? (abort.signal.reason as Error) : (err as Error)
      this.#c.counters.inc(stall ? 'dial.stalled' : 'dial.failed')
      this.#record(id, error)
      log('dial %s failed (attempt %d): %s', id, state.attempt, error.message)
      if (this.#c.node() !== node || this.hasDirect(id) || state.attempt >= MAX_ATTEMPTS || this.#roster.has(id)) {
        this.#dialing.delete(id)
        if (state.attempt >= MAX_ATTEMPTS && !this.hasDirect(id)) {
          this.#restUntil.set(id, this.#now() + DIAL_REST_MS)
          if (this.#restUntil.size > 1024) this.#restUntil.delete(this.#restUntil.keys().next().value as string)
        }
        return
      }
      state.attempt++
      if (stall) state.stalls = (state.stalls ?? 0) + 1
      // A stalled dial is retried at once (a fresh circuit and negotiation); other failures back off.
      state.timer = setTimeout(
        () => {
          void this.#dial(id)
        },
        stall ? 0 : backoffDelay(state.attempt, { baseMs: 300, maxMs: 10_000 })
      )
    } finally {
      if (this.#inflight.get(id) === abort) this.#inflight.delete(id)
      clearTimeout(stallTimer)
      clearTimeout(overall)
    }
  }
}
