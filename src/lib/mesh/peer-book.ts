/**
 * The peer book: every peer this tab knows, with how it is connected now, its
 * round-trip time and what it advertised in presence.
 */
import type { Connection } from '@libp2p/interface'
import type { Presence } from './presence.ts'

/** How a peer is reached: 'webrtc' is direct browser-to-browser. */
export const Transport = { webrtc: 'webrtc', circuit: 'circuit', websockets: 'websockets' } as const
export type Transport = (typeof Transport)[keyof typeof Transport]

/** One connected peer as the public API shows it (API.md PeerInfo, extended). */
export interface PeerInfo {
  id: string
  transport: Transport
  rttMs?: number
  capabilities: string[]
  donating: boolean
  /** Free call slots it advertised (calls it accepts now; each worker queues a few). */
  freeWorkers: number
  /** Workers it runs agents on, when it advertised them (donors do). */
  workers?: number
  region?: string
  /** True for a bootstrap relay. */
  relay: boolean
  /** Its user's signing key, if it announced one. */
  publicKey?: string
  /** Its signature proving it holds `publicKey` (unchecked here: the app's trust wiring verifies it). */
  keyProof?: string
  /** Every open connection: transport and remote address. */
  connections: Array<{ transport: Transport; remoteAddr: string; direct: boolean }>
}

const transportOf = new WeakMap<object, Transport>()

/** Classify one connection by its remote address (remembered per address object: parsing it is not free). */
export function connectionTransport(conn: Pick<Connection, 'remoteAddr'>): Transport {
  const known = transportOf.get(conn.remoteAddr)
  if (known != null) return known
  const names = conn.remoteAddr.getComponents().map((c) => c.name)
  const t = names.includes('webrtc') ? Transport.webrtc : names.includes('p2p-circuit') ? Transport.circuit : Transport.websockets
  transportOf.set(conn.remoteAddr, t)
  return t
}

const RANK: Record<Transport, number> = { webrtc: 3, websockets: 2, circuit: 1 }

/** The best transport among a peer's connections. */
export function bestTransport(conns: Array<Pick<Connection, 'remoteAddr'>>): Transport | undefined {
  let best: Transport | undefined
  for (const c of conns) {
    const t = connectionTransport(c)
    if (best == null || RANK[t] > RANK[best]) best = t
  }
  return best
}

/** A presence stamped this much before the newest one of its peer is its clock stepping back, not a late delivery. */
export const CLOCK_STEP_MS = 60_000

/** Builds PeerInfo from connections and the latest presence of each peer. */
export class PeerBook {
  readonly #presence = new Map<string, Presence & { receivedAt: number }>()
  readonly #relays = new Set<string>()
  readonly #staleMs: () => number
  /** Peers a relay said left: the `ts` of their last presence known then, and when (a copy of it or older is not taken back). */
  readonly #departed = new Map<string, { ts: number; at: number }>()

  /** `staleMs`: how old a presence may get before it is ignored; a function is asked at each read (it may grow with the mesh). */
  constructor(opts: { staleMs: number | (() => number) }) {
    const stale = opts.staleMs
    this.#staleMs = typeof stale === 'number' ? () => stale : stale
  }

  /** Peers with a recorded presence (stale ones included, until {@link prune} drops them). */
  get size(): number {
    return this.#presence.size
  }

  markRelay(peerId: string): void {
    this.#relays.add(peerId)
  }
  isRelay(peerId: string): boolean {
    return this.#relays.has(peerId)
  }

  /**
   * Whether `p` is older than the announcement already recorded from its peer. Gossip
   * delivers out of order: an announcement this tab missed is fetched later from a
   * neighbour's message cache (IHAVE/IWANT), after newer ones arrived, and recording it
   * would undo them (a donor seen as not donating, seconds after it started). A sender
   * whose clock stepped back by more than {@link CLOCK_STEP_MS} is believed again.
   */
  isOutdated(p: Presence): boolean {
    const gone = this.#departed.get(p.peerId)
    if (gone != null && p.ts <= gone.ts && gone.ts - p.ts < CLOCK_STEP_MS) return true
    const old = this.#presence.get(p.peerId)
    return old != null && p.ts < old.ts && old.ts - p.ts < CLOCK_STEP_MS
  }

  /** Record a presence announcement; returns true if anything a user would see changed. An outdated one ({@link isOutdated}) is ignored. */
  updatePresence(p: Presence, now = Date.now()): boolean {
    if (this.isOutdated(p)) return false
    const old = this.#presence.get(p.peerId)
    this.#departed.delete(p.peerId)
    this.#presence.set(p.peerId, { ...p, receivedAt: now })
    return (
      old == null ||
      old.donating !== p.donating ||
      old.freeWorkers !== p.freeWorkers ||
      old.workers !== p.workers ||
      old.region !== p.region ||
      old.capabilities.join() !== p.capabilities.join()
    )
  }

  /** Every recorded presence (stale ones included), with when it was received. */
  entries(): Array<Presence & { receivedAt: number }> {
    return [...this.#presence.values()]
  }

  forget(peerId: string): void {
    this.#presence.delete(peerId)
  }

  /**
   * A relay said `peerId` left (departures.ts): its presence is forgotten, and that presence or
   * an older one arriving later (a pull, a neighbour's gossip cache) is outdated. A newer one, the
   * peer back, is taken. Returns whether a presence was forgotten.
   */
  depart(peerId: string, now = Date.now()): boolean {
    const old = this.#presence.get(peerId)
    if (old == null) return false
    this.#presence.delete(peerId)
    this.#departed.set(peerId, { ts: old.ts, at: now })
    this.#forgetOldDepartures(now)
    return true
  }

  /**
   * Drop the presences not renewed for `afterMs`, and the departure marks older than the stale
   * time: a peer that went quiet without a relay's notice (its relay died, a notice was lost,
   * departures are off) would otherwise stay in the book for good, and the book's size, which sets
   * the re-announcement interval and the stale time, would only grow with every stranger that ever
   * passed. `afterMs` must not shrink with the book (presencePruneAfterMs in constants.ts): a book
   * that missed part of its mesh has a shorter stale time than that mesh's peers take to
   * re-announce, and pruning by it would drop live peers, shrink the book and so the stale time
   * further. Kept past its stale time, a stamp still tells a late copy as outdated.
   * Returns how many presences were dropped.
   */
  prune(afterMs: number, now = Date.now()): number {
    let dropped = 0
    for (const [id, p] of this.#presence) {
      if (now - p.receivedAt >= afterMs) {
        this.#presence.delete(id)
        dropped++
      }
    }
    this.#forgetOldDepartures(now)
    return dropped
  }

  /** Drop the departure marks older than the stale time: what a late copy could bring back is stale by then anyway. */
  #forgetOldDepartures(now: number): void {
    const stale = this.#staleMs()
    for (const [id, d] of this.#departed) if (now - d.at > stale) this.#departed.delete(id)
  }

  presenceOf(peerId: string, now = Date.now()): Presence | undefined {
    const p = this.#presence.get(peerId)
    return p != null && now - p.receivedAt < this.#staleMs() ? p : undefined
  }

  /** PeerInfo for one peer from its open connections, or undefined when it has none. */
  info(peerId: string, conns: Connection[], now = Date.now()): PeerInfo | undefined {
    const open = conns.filter((c) => c.status === 'open')
    const transport = bestTransport(open)
    if (transport == null) return undefined
    const best = open.filter((c) => connectionTransport(c) === transport)
    const rtt = best.map((c) => c.rtt).find((r): r is number => typeof r === 'number' && Number.isFinite(r))
    const p = this.presenceOf(peerId, now)
    const relay = this.#relays.has(peerId)
    return {
      id: peerId,
      transport,
      rttMs: rtt,
      capabilities: relay ? ['relay'] : (p?.capabilities ?? []),
      donating: p?.donating ?? false,
      freeWorkers: p?.freeWorkers ?? 0,
      workers: p?.workers,
      region: p?.region,
      relay,
      publicKey: p?.publicKey,
      keyProof: p?.keyProof,
      connections: open.map((c) => ({
        transport: connectionTransport(c),
        remoteAddr: c.remoteAddr.toString(),
        direct: c.limits == null && connectionTransport(c) !== Transport.circuit
      }))
    }
  }
}
