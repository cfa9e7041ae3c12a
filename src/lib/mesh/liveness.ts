/**
 * Leave detection for direct WebRTC links (issue 11 item 8). libp2p's keep-alive ping is
 * answered by the peer's main thread, so a tab that stalls for ~1.5 s looked dead and lost
 * every link. Chromium answers SCTP and ICE on its network thread: while a peer's page is
 * busy its transport keeps sending (acks, consent checks), and when the tab is closed it
 * stops. So a link is judged by the bytes its RTCPeerConnection received, sampled from its
 * stats, and closed after LIVENESS.silenceMs without one.
 */
import type { Connection } from '@libp2p/interface'
import type { Counters } from '../core/index.ts'
import { logger } from '../core/index.ts'
import { LIVENESS } from './constants.ts'

const log = logger('mesh:liveness')

/** The byte counter of one link, or undefined when it cannot be read (not a WebRTC link, or closed). */
export type BytesReceived = (conn: Connection) => Promise<number | undefined>

/** What the liveness monitor needs. */
export interface LivenessComponents {
  connections: () => Connection[]
  counters: Counters
  /** Defaults to reading RTCPeerConnection stats. */
  bytesReceived?: BytesReceived
  now?: () => number
}

/** Options; defaults in LIVENESS. */
export interface LivenessInit {
  sampleMs?: number
  silenceMs?: number
}

/** The RTCPeerConnection behind a @libp2p/webrtc connection (its multiaddr connection keeps it). */
function peerConnectionOf(conn: Connection): RTCPeerConnection | undefined {
  const pc = (conn as unknown as { maConn?: { peerConnection?: RTCPeerConnection } }).maConn?.peerConnection
  return pc != null && typeof pc.getStats === 'function' ? pc : undefined
}

/** Bytes received by a link's ICE transport (all transports of the connection together). */
export const rtcBytesReceived: BytesReceived = async (conn) => {
  const pc = peerConnectionOf(conn)
  if (pc == null || pc.connectionState === 'closed') return undefined
  const report = await pc.getStats()
  let total = 0
  let seen = false
  report.forEach((s: { type?: string; bytesReceived?: number }) => {
    if (s.type === 'transport' && typeof s.bytesReceived === 'number') {
      total += s.bytesReceived
      seen = true
    }
  })
  if (!seen) {
    report.forEach((s: { type?: string; bytesReceived?: number; nominated?: boolean }) => {
      if (s.type === 'candidate-pair' && s.nominated === true && typeof s.bytesReceived === 'number') {
        total += s.bytesReceived
        seen = true
      }
    })
  }
  return seen ? total : undefined
}

/** Samples every link and closes those that fell silent. */
export class LivenessMonitor {
  readonly #c: LivenessComponents
  readonly #sampleMs: number
  readonly #silenceMs: number
  readonly #bytes: BytesReceived
  readonly #now: () => number
  readonly #last = new Map<string, { bytes: number; heardAt: number }>()
  #timer: ReturnType<typeof setTimeout> | undefined
  #tickAt = 0
  #running = false

  constructor(components: LivenessComponents, init: LivenessInit = {}) {
    this.#c = components
    this.#sampleMs = init.sampleMs ?? LIVENESS.sampleMs
    this.#silenceMs = init.silenceMs ?? LIVENESS.silenceMs
    this.#bytes = components.bytesReceived ?? rtcBytesReceived
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
    if (late > this.#sampleMs) for (const s of this.#last.values()) s.heardAt += late
    const live = new Set<string>()
    // Stats are a snapshot of the moment they were asked for: judge silence at that moment.
    // Read at the moment their promise resolved, a tab whose main thread was busy between
    // the two (a 1 s task while five tabs load) saw every link "silent" since the last
    // change plus its own delay, and closed all of them (mesh.liveness.closed 4, issue 11).
    const at = now
    await Promise.all(
      this.#c.connections().map(async (conn) => {
        if (conn.status !== 'open') return
        let bytes: number | undefined
        try {
          bytes = await this.#bytes(conn)
        } catch {
          bytes = undefined
        }
        if (bytes === undefined) return
        live.add(conn.id)
        const prev = this.#last.get(conn.id)
        if (prev == null || bytes !== prev.bytes) {
          this.#last.set(conn.id, { bytes, heardAt: at })
          return
        }
        if (at - prev.heardAt < this.#silenceMs) return
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
