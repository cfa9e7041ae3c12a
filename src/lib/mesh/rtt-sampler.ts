/**
 * Round-trip times of a node's connections on a budget (issue 16, scale). libp2p's
 * connection monitor pings every connection every interval: at 1 s a tab with 48 links
 * opened 48 ping streams a second and answered 48 more, each a multistream negotiation and
 * a peer-store write on both sides (the largest per-link cost of an idle simulated peer).
 * Pings no longer judge a link (LIVENESS does), they only measure its RTT, so this sampler
 * pings at most `perSecond` connections a second, the one measured longest ago first, and
 * none more often than `minIntervalMs`: a node with 4 links or fewer measures each every
 * second as before, one with 48 each every 12 s.
 *
 * A ping is the cheapest the link offers (issue 16: the ping streams were ~40 % of an idle
 * simulated peer's CPU): a WebRTC link's RTT comes from the stats the liveness monitor reads
 * anyway (`measured`: the ICE consent checks the browser sends on its network thread), so
 * it is not pinged at all; a link whose muxer pings (yamux on a relay's WebSocket or a
 * circuit: its PING frame; the simulator's direct links: a ping frame of their channels) is
 * pinged that way, the remote muxer answering without a stream; only a link with neither
 * opens a ping stream.
 */
import type { Connection } from '@libp2p/interface'
import { byteStream } from '@libp2p/utils'
import type { Counters } from '../core/index.ts'
import { RTT_SAMPLING } from './constants.ts'

/** What the sampler needs. */
export interface RttSamplerComponents {
  connections: () => Connection[]
  counters?: Counters
  /** Measures one connection's round trip in ms (default {@link pingLink}). */
  ping?: (conn: Connection, signal: AbortSignal) => Promise<number>
  /** A connection got its first round trip (listeners repaint only every PEERS_REPAINT_MS otherwise). */
  firstRtt?: (conn: Connection) => void
  now?: () => number
}

/** Options; defaults in RTT_SAMPLING. */
export interface RttSamplerInit {
  /** Pings a second, all connections together. */
  perSecond?: number
  /** No connection is pinged more often than this. */
  minIntervalMs?: number
  /** A ping not answered by then is given up (the link is not judged by it). */
  timeoutMs?: number
}

const PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_LENGTH = 32

/** One ping on its own stream of `conn` (the protocol of @libp2p/ping, which every peer answers); resolves to the round trip in ms. */
export async function pingConnection(conn: Connection, signal: AbortSignal): Promise<number> {
  const stream = await conn.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true })
  try {
    const bs = byteStream(stream)
    const start = performance.now()
    await Promise.all([bs.write(crypto.getRandomValues(new Uint8Array(PING_LENGTH)), { signal }), bs.read({ bytes: PING_LENGTH, signal })])
    const rtt = performance.now() - start
    await stream.close({ signal })
    return rtt
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

/** The part of a stream muxer with a ping of its own (yamux: a PING frame answered by the remote muxer, no stream). */
interface PingingMuxer {
  ping(): Promise<number>
}

/** The connection's muxer when it has a ping of its own (yamux, the simulator's channels), else undefined (WebRTC's data channels). */
export function pingingMuxer(conn: Connection): PingingMuxer | undefined {
  const muxer = (conn as unknown as { muxer?: Partial<PingingMuxer> & { status?: string } }).muxer
  return muxer != null && typeof muxer.ping === 'function' && (muxer.status == null || muxer.status === 'open') ? (muxer as PingingMuxer) : undefined
}

/**
 * One round trip of `conn` in ms, the cheapest way it has: its muxer's ping (yamux's PING
 * frame), else a ping stream ({@link pingConnection}). The muxer's ping is never aborted: a
 * pong arriving after yamux gave up its ping is a protocol error that closes the connection,
 * so a ping not answered by `signal` is left to finish (a second one joins it) while this rejects.
 */
export async function pingLink(conn: Connection, signal: AbortSignal): Promise<number> {
  const muxer = pingingMuxer(conn)
  if (muxer == null) return await pingConnection(conn, signal)
  signal.throwIfAborted()
  const { promise: aborted, reject } = Promise.withResolvers<never>()
  const onAbort = (): void => reject(signal.reason)
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await Promise.race([muxer.ping(), aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/** Pings a node's connections round-robin within a budget and records each one's `rtt`. */
export class RttSampler {
  readonly #c: RttSamplerComponents
  readonly #perSecond: number
  readonly #minIntervalMs: number
  readonly #timeoutMs: number
  readonly #now: () => number
  /** When each connection was last pinged (started). */
  readonly #last = new WeakMap<Connection, number>()
  readonly #inFlight = new WeakSet<Connection>()
  #timer: ReturnType<typeof setInterval> | undefined

  constructor(components: RttSamplerComponents, init: RttSamplerInit = {}) {
    this.#c = components
    this.#perSecond = init.perSecond ?? RTT_SAMPLING.perSecond
    this.#minIntervalMs = init.minIntervalMs ?? RTT_SAMPLING.minIntervalMs
    this.#timeoutMs = init.timeoutMs ?? RTT_SAMPLING.timeoutMs
    this.#now = components.now ?? (() => performance.now())
  }

  /** Start sampling (idempotent). */
  start(): void {
    if (this.#timer != null) return
    // One pass a second over the links, up to perSecond pings (a pass per ping walked every
    // link perSecond times a second: ~5 % of an idle simulated peer's thread, issue 16).
    this.#timer = setInterval(() => this.tick(), 1000)
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /**
   * A round trip of `conn` measured elsewhere (a WebRTC link's stats, read by the liveness
   * monitor): recorded as its `rtt`, and the link is not pinged until it is due again.
   */
  measured(conn: Connection, rttMs: number): void {
    if (!Number.isFinite(rttMs) || rttMs < 0) return
    this.#set(conn, rttMs)
    this.#last.set(conn, this.#now())
    this.#c.counters?.inc('rtt.fromStats')
  }

  #set(conn: Connection, rttMs: number): void {
    const first = conn.rtt == null
    conn.rtt = Math.round(rttMs)
    if (first) this.#c.firstRtt?.(conn)
  }

  /** Ping the open connections measured longest ago that are due, up to perSecond of them (called by the timer; public for tests). */
  tick(): void {
    const now = this.#now()
    const due: Array<{ conn: Connection; last: number }> = []
    for (const conn of this.#c.connections()) {
      if (conn.status !== 'open' || this.#inFlight.has(conn)) continue
      const last = this.#last.get(conn) ?? Number.NEGATIVE_INFINITY
      if (now - last >= this.#minIntervalMs) due.push({ conn, last })
    }
    if (due.length > this.#perSecond) due.sort((a, b) => a.last - b.last)
    for (const { conn } of due.slice(0, Math.max(1, Math.floor(this.#perSecond)))) this.#ping(conn, now)
  }

  #ping(conn: Connection, now: number): void {
    this.#last.set(conn, now)
    this.#inFlight.add(conn)
    const ping = this.#c.ping ?? pingLink
    this.#c.counters?.inc('rtt.pings')
    // A deadline that ends with the ping: AbortSignal.timeout's timer cannot be cleared, so
    // every answered ping still fired one timeoutMs later and built a TimeoutError
    // (DOMException) nobody read, ~2 % of an idle simulated peer's thread (issue 16).
    const deadline = new AbortController()
    const timer = setTimeout(() => {
      deadline.abort(new DOMException(`no pong within ${this.#timeoutMs} ms`, 'TimeoutError'))
    }, this.#timeoutMs)
    ping(conn, deadline.signal)
      .then((rtt) => {
        this.#set(conn, rtt)
      })
      .catch(() => {
        // A peer that does not answer in time is judged by liveness, not here.
        this.#c.counters?.inc('rtt.failed')
      })
      .finally(() => {
        clearTimeout(timer)
        this.#inFlight.delete(conn)
      })
  }
}
