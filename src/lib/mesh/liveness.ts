/**
 * Leave detection for direct WebRTC links (issue 11 item 8). libp2p's keep-alive ping is
 * answered by the peer's main thread, so a tab that stalls for ~1.5 s looked dead and lost
 * every link. Chromium answers SCTP and ICE on its network thread: while a peer's page is
 * busy its transport keeps sending (acks, consent checks), and when the tab is closed it
 * stops. So a link is judged by the bytes its RTCPeerConnection received, sampled from its
 * stats, and closed after LIVENESS.silenceMs without one. The same stats give the link's round
 * trip (the selected ICE candidate pair's, from the consent checks the browser's network
 * thread sends anyway): the RTT sampler then needs no ping of its own on WebRTC links.
 */
import type { Connection } from '@libp2p/interface'
import type { Counters } from '../core/index.ts'
import { logger } from '../core/index.ts'
import { LIVENESS } from './constants.ts'

const log = logger('mesh:liveness')

/** What one sample of a link's transport says: bytes received so far, and its round trip in ms when the transport measured one. */
export interface LinkStats {
  bytes: number
  rttMs?: number
}

/** The byte counter of one link (or its stats), or undefined when it cannot be read (not a WebRTC link, or closed). */
export type BytesReceived = (conn: Connection) => Promise<number | LinkStats | undefined>

/** Makes a link's transport send something its peer's transport must acknowledge. */
export type Probe = (conn: Connection) => void

/** What the liveness monitor needs. */
export interface LivenessComponents {
  connections: () => Connection[]
  counters: Counters
  /** Defaults to reading RTCPeerConnection stats ({@link rtcLinkStats}). */
  bytesReceived?: BytesReceived
  /** A link's round trip as its transport's stats gave it (ms): the RTT sampler takes it instead of pinging that link. */
  onRtt?: (conn: Connection, rttMs: number) => void
  /** Defaults to {@link streamProbe}. */
  probe?: Probe
  now?: () => number
}

/** Options; defaults in LIVENESS. */
export interface LivenessInit {
  sampleMs?: number
  silenceMs?: number
  /** How long a probed link may stay silent before it is closed (0: closed at once, no probe). */
  confirmMs?: number
}

/** The protocol a probe opens a stream of (answered by every libp2p peer). */
const PROBE_PROTOCOL = '/ipfs/ping/1.0.0'

/**
 * Opens a stream on the link and gives it up shortly after: opening a WebRTC data channel
 * sends SCTP data, which the peer's network thread acknowledges whether or not its main
 * thread is free; a closed tab acknowledges nothing. The stream itself is not needed.
 */
export const streamProbe: Probe = (conn) => {
  conn
    .newStream(PROBE_PROTOCOL, { signal: AbortSignal.timeout(LIVENESS.confirmMs), runOnLimitedConnection: true })
    .then((stream) => {
      stream.abort(new Error('liveness probe done'))
    })
    .catch(() => {
      /* a stalled peer does not answer the negotiation: its transport's acknowledgement is what counts */
    })
}

/** The RTCPeerConnection behind a @libp2p/webrtc connection (its multiaddr connection keeps it). */
function peerConnectionOf(conn: Connection): RTCPeerConnection | undefined {
  const pc = (conn as unknown as { maConn?: { peerConnection?: RTCPeerConnection } }).maConn?.peerConnection
  return pc != null && typeof pc.getStats === 'function' ? pc : undefined
}

/**
 * Bytes received by a link's ICE transport (all transports of the connection together), and
 * the round trip of its selected candidate pair (`currentRoundTripTime`, in seconds in the
 * stats) when the browser has measured one.
 */
export const rtcLinkStats = async (conn: Connection): Promise<LinkStats | undefined> => {
  const pc = peerConnectionOf(conn)
  if (pc == null || pc.connectionState === 'closed') return undefined
  const report = await pc.getStats()
  type Stat = { type?: string; id?: string; bytesReceived?: number; nominated?: boolean; selectedCandidatePairId?: string; currentRoundTripTime?: number }
  let total = 0
  let seen = false
  const selected = new Set<string>()
  const pairs: Stat[] = []
  report.forEach((s: Stat) => {
    if (s.type === 'transport') {
      if (typeof s.bytesReceived === 'number') {
        total += s.bytesReceived
        seen = true
      }
      if (s.selectedCandidatePairId != null) selected.add(s.selectedCandidatePairId)
    } else if (s.type === 'candidate-pair') pairs.push(s)
  })
  if (!seen) {
    for (const s of pairs) {
      if (s.nominated === true && typeof s.bytesReceived === 'number') {
        total += s.bytesReceived
        seen = true
      }
    }
  }
  if (!seen) return undefined
  const pair = pairs.find((s) => s.id != null && selected.has(s.id)) ?? pairs.find((s) => s.nominated === true && typeof s.currentRoundTripTime === 'number')
  const rtt = pair?.currentRoundTripTime
  return typeof rtt === 'number' && Number.isFinite(rtt) && rtt >= 0 ? { bytes: total, rttMs: rtt * 1000 } : { bytes: total }
}

/** Samples every link and closes those that fell silent. */
export class LivenessMonitor {
  readonly #c: LivenessComponents
  readonly #sampleMs: number
  readonly #silenceMs: number
  readonly #confirmMs: number
  readonly #bytes: BytesReceived
  /** Whether a link has transport stats to read at all (an RTCPeerConnection), asked before each read. */
  readonly #measurable: (conn: Connection) => boolean
  readonly #probe: Probe
  readonly #now: () => number
  /** Per link: its last byte count, when it last changed, and when it was probed (suspected silent). */
  readonly #last = new Map<string, { bytes: number; heardAt: number; probedAt?: number }>()
  #timer: ReturnType<typeof setTimeout> | undefined
  #tickAt = 0
  #running = false

  constructor(components: LivenessComponents, init: LivenessInit = {}) {
    this.#c = components
    this.#sampleMs = init.sampleMs ?? LIVENESS.sampleMs
    this.#silenceMs = init.silenceMs ?? LIVENESS.silenceMs
    this.#confirmMs = init.confirmMs ?? LIVENESS.confirmMs
    this.#bytes = components.bytesReceived ?? rtcLinkStats
    // A link with no RTCPeerConnection (a relay's WebSocket, a circuit, the simulator's links)
    // never has stats: skipped without a read, where each tick read every link of the node.
    this.#measurable = components.bytesReceived == null ? (conn) => peerConnectionOf(conn) != null : () => true
    this.#probe = components.probe ?? streamProbe
    this.#now = components.now ?? (() => performance.now())
  }

  start(): void {
    if (this.#running) return
    this.#running = true
    this.#tickAt = this.#now()
    this.#schedule()
  }

  stop(): void {
    this.#running = false
    clearTimeout(this.#timer)
    this.#last.clear()
  }

  #schedule(): void {
    if (!this.#running) return
    this.#timer = setTimeout(() => {
      this.tick().finally(() => {
        this.#schedule()
      })
    }, this.#sampleMs)
  }

  /** One sampling round (public for tests). */
  async tick(): Promise<void> {
    const now = this.#now()
    // This tab's own stall is no one else's silence: a late tick moves every clock on.
    const late = now - this.#tickAt - this.#sampleMs
    this.#tickAt = now
    if (late > this.#sampleMs) {
      for (const s of this.#last.values()) {
        s.heardAt += late
        if (s.probedAt !== undefined) s.probedAt += late
      }
    }
    const live = new Set<string>()
    // Stats are a snapshot of the moment they were asked for: judge silence at that moment.
    // Read at the moment their promise resolved, a tab whose main thread was busy between
    // the two (a 1 s task while five tabs load) saw every link "silent" since the last
    // change plus its own delay, and closed all of them (mesh.liveness.closed 4, issue 11).
    const at = now
    // Links that cannot be read (no RTCPeerConnection) are skipped before a promise is made for them.
    const measurable = this.#c.connections().filter((conn) => conn.status === 'open' && this.#measurable(conn))
    await Promise.all(
      measurable.map(async (conn) => {
        let read: number | LinkStats | undefined
        try {
          read = await this.#bytes(conn)
        } catch {
          read = undefined
        }
        if (read === undefined) return
        const bytes = typeof read === 'number' ? read : read.bytes
        if (typeof read !== 'number' && read.rttMs !== undefined) this.#c.onRtt?.(conn, read.rttMs)
        live.add(conn.id)
        const prev = this.#last.get(conn.id)
        if (prev == null || bytes !== prev.bytes) {
          // A probed link answered: it was a stall (its peer's or ours), not a departure.
          if (prev?.probedAt !== undefined) this.#c.counters.inc('liveness.cleared')
          this.#last.set(conn.id, { bytes, heardAt: at })
          return
        }
        if (at - prev.heardAt < this.#silenceMs) return
        // Silence is a suspicion: probe, and close only if the probe is not acknowledged either.
        if (this.#confirmMs > 0 && prev.probedAt === undefined) {
          prev.probedAt = at
          this.#c.counters.inc('liveness.probed')
          this.#probe(conn)
          return
        }
        if (prev.probedAt !== undefined && at - prev.probedAt < this.#confirmMs) return
        this.#c.counters.inc('liveness.closed')
        log('closing %s to %s: nothing received for %d ms', conn.id, conn.remotePeer.toString(), Math.round(at - prev.heardAt))
        this.#last.delete(conn.id)
        conn.abort(new Error(`no data from the peer for ${Math.round(at - prev.heardAt)} ms`))
      })
    )
    // How often this tab read its stats late (a busy main thread): the case the snapshot time guards.
    if (this.#now() - at > this.#sampleMs) this.#c.counters.inc('liveness.statsLate')
    for (const id of this.#last.keys()) if (!live.has(id)) this.#last.delete(id)
  }
}
