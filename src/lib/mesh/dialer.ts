/**
 * Schedules direct WebRTC dials to discovered peers: one dial per pair (the
 * smaller peer id dials; the other steps in after STEP_IN_MS), retries with
 * backoff, a connection budget, and the timings the mesh benchmark reads.
 */
import type { Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { backoffDelay } from '../core/index.ts'
import { logger } from '../core/index.ts'
import type { Counters } from '../core/index.ts'
import { Transport, connectionTransport } from './peer-book.ts'

const log = logger('mesh:dialer')

/** How long the larger peer id waits for the other side to dial before dialling itself. */
export const STEP_IN_MS = 4000
const MAX_ATTEMPTS = 8

/** What the dialer needs from the node that owns it. */
export interface DialerComponents {
  node: () => Libp2p | undefined
  /** Peers that are never dialled directly (relays, blocked peers). */
  skip: (peerId: string) => boolean
  counters: Counters
  maxPeers: number
}

/** Direct-dial scheduler of one mesh node. */
export class DirectDialer {
  readonly #c: DialerComponents
  readonly #dialing = new Map<string, { attempt: number; timer?: ReturnType<typeof setTimeout> }>()
  readonly #discoveredAt = new Map<string, number>()
  readonly #directAt = new Map<string, number>()
  readonly #dialStartedAt = new Map<string, number>()
  /** Progress events of the first successful dial per peer: phase name → ms after the dial started. */
  readonly #phases = new Map<string, Record<string, number>>()
  #firstDirectAt: number | undefined

  constructor(components: DialerComponents) {
    this.#c = components
  }

  /** A peer was discovered (discovery event or first presence). */
  discovered(id: string): void {
    if (!this.#discoveredAt.has(id)) this.#discoveredAt.set(id, performance.now())
    this.maybeDial(id)
  }

  /** A direct connection to `id` opened (either side dialled). */
  connected(id: string): void {
    if (!this.#directAt.has(id)) this.#directAt.set(id, performance.now())
    this.#firstDirectAt ??= performance.now()
    clearTimeout(this.#dialing.get(id)?.timer)
    this.#dialing.delete(id)
  }

  hasDirect(id: string): boolean {
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
    const direct = new Set(
      node
        .getConnections()
        .filter((c) => connectionTransport(c) === Transport.webrtc)
        .map((c) => c.remotePeer.toString())
    ).size
    if (direct >= this.#c.maxPeers) {
      this.#c.counters.inc('dial.skipped.budget')
      return
    }
    const mine = node.peerId.toString() < id
    const waited = performance.now() - (this.#discoveredAt.get(id) ?? performance.now())
    if (!mine && waited < STEP_IN_MS) {
      // Come back later in case the other side never dials.
      this.#dialing.set(id, {
        attempt: 0,
        timer: setTimeout(() => {
          this.#dialing.delete(id)
          this.maybeDial(id)
        }, STEP_IN_MS - waited)
      })
      return
    }
    this.#dialing.set(id, { attempt: 0 })
    void this.#dial(id)
  }

  async #webrtcAddrs(node: Libp2p, id: string): Promise<Multiaddr[]> {
    let peer: Awaited<ReturnType<typeof node.peerStore.get>>
    try {
      peer = await node.peerStore.get(peerIdFromString(id))
    } catch {
      return []
    }
    return peer.addresses
      .map((a) => a.multiaddr)
      .filter((ma) => ma.getComponents().some((c) => c.name === 'webrtc'))
      .map((ma) => {
        // FIELD-NOTES: peer-store addresses may lack the trailing /p2p/<id>.
        const last = ma.getComponents().at(-1)
        return last?.name === 'p2p' && last.value === id ? ma : ma.encapsulate(`/p2p/${id}`)
      })
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
    if (!this.#dialStartedAt.has(id)) this.#dialStartedAt.set(id, performance.now())
    try {
      this.#c.counters.inc('dial.attempts')
      const t0 = performance.now()
      const phases: Record<string, number> = {}
      await node.dial(addrs, {
        signal: AbortSignal.timeout(10_000),
        onProgress: (e: { type: string }) => {
          phases[e.type] ??= Math.round((performance.now() - t0) * 10) / 10
        }
      } as Parameters<Libp2p['dial']>[1])
      phases.done = Math.round((performance.now() - t0) * 10) / 10
      if (!this.#phases.has(id)) this.#phases.set(id, phases)
      this.#c.counters.inc('dial.ok')
      this.#dialing.delete(id)
    } catch (err) {
      this.#c.counters.inc('dial.failed')
      log('dial %s failed (attempt %d): %s', id, state.attempt, (err as Error).message)
      if (this.#c.node() !== node || this.hasDirect(id) || state.attempt >= MAX_ATTEMPTS) {
        this.#dialing.delete(id)
        return
      }
      state.attempt++
      state.timer = setTimeout(
        () => {
          void this.#dial(id)
        },
        backoffDelay(state.attempt, { baseMs: 300, maxMs: 10_000 })
      )
    }
  }
}
