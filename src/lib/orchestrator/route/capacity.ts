/**
 * Capacity as observed (issue 11 item 6: a donor announcing 1,024 free workers
 * won every `load-balanced` choice). What a donor says it has free is capped by
 * what it has been seen to do for this peer: the most of our offers it ran at
 * once, plus one to probe for more once it has completed anything. A donor never
 * seen counts {@link UNOBSERVED_CAPACITY}. The dispatcher's admission windows
 * (`PeerWindows`) write the observations; the router reads them.
 */

/** What the router reads: how many more offers `peer` has shown it can take now, and how many it took. */
export interface PeerCapacity {
  free(peer: string): number
  /** Offers of ours the donor accepted so far (load-balanced spreads work among donors showing equal room). */
  accepted?(peer: string): number
  /** Offers of ours in flight there now, sent or running (every strategy spreads equal candidates by it). */
  inflight?(peer: string): number
}

/** Capacity credited to a donor never seen running anything for this peer. */
export const UNOBSERVED_CAPACITY = 1

interface Seen {
  /** Our offers on their way to it, not yet accepted. */
  pending: number
  /** Our offers it runs right now. */
  running: number
  /** Our offers it accepted, ever. */
  accepted: number
  /** The most it ran at once. */
  peak: number
  completed: number
  /** Times it declined as full. */
  full: number
}

export interface CapacityBookInit {
  /** Peers remembered (least recently seen forgotten beyond this). Default 1024. */
  maxPeers?: number
}

/** Observations of every donor's capacity, shared by the dispatcher (writes) and the router (reads). */
export class CapacityBook implements PeerCapacity {
  readonly #peers = new Map<string, Seen>()
  readonly #maxPeers: number

  constructor(init: CapacityBookInit = {}) {
    this.#maxPeers = init.maxPeers ?? 1024
  }

  #seen(peer: string): Seen {
    let s = this.#peers.get(peer)
    if (s == null) {
      if (this.#peers.size >= this.#maxPeers) {
        for (const [id, x] of this.#peers)
          if (x.running === 0 && x.pending === 0) {
            this.#peers.delete(id)
            break
          }
      }
      s = { pending: 0, running: 0, accepted: 0, peak: 0, completed: 0, full: 0 }
      this.#peers.set(peer, s)
    } else {
      // Most recently seen last (the forgetting order).
      this.#peers.delete(peer)
      this.#peers.set(peer, s)
    }
    return s
  }

  /** An offer of ours is on its way to the donor (it counts against the room the donor showed). */
  offered(peer: string): void {
    this.#seen(peer).pending++
  }

  /** The donor accepted one of our offers and runs it (after `offered`, if that was called). */
  started(peer: string): void {
    const s = this.#seen(peer)
    s.pending = Math.max(0, s.pending - 1)
    s.running++
    s.accepted++
    if (s.running > s.peak) s.peak = s.running
  }

  /** One of our offers there ended, however it ended (`accepted`: it had been started). */
  ended(peer: string, accepted = true): void {
    const s = this.#seen(peer)
    if (accepted) s.running = Math.max(0, s.running - 1)
    else s.pending = Math.max(0, s.pending - 1)
  }

  /** The donor answered one of our offers with a result (it may take one more than its peak again). */
  completed(peer: string): void {
    const s = this.#seen(peer)
    s.completed++
    s.full = 0
  }

  /** The donor declined as full while running `running` of ours: that is its capacity for us. */
  declinedFull(peer: string): void {
    const s = this.#seen(peer)
    s.full++
    s.peak = Math.max(1, s.running)
  }

  /** Capacity shown: the peak concurrency seen, one more once it completed anything; unobserved: {@link UNOBSERVED_CAPACITY}. */
  capacity(peer: string): number {
    const s = this.#peers.get(peer)
    if (s == null || s.peak === 0) return UNOBSERVED_CAPACITY
    return s.peak + (s.completed > 0 && s.full === 0 ? 1 : 0)
  }

  accepted(peer: string): number {
    return this.#peers.get(peer)?.accepted ?? 0
  }

  inflight(peer: string): number {
    const s = this.#peers.get(peer)
    return s == null ? 0 : s.running + s.pending
  }

  free(peer: string): number {
    const s = this.#peers.get(peer)
    return Math.max(0, this.capacity(peer) - (s == null ? 0 : s.running + s.pending))
  }

  /** What was seen of `peer` (tests, diagnostics). */
  observed(peer: string): Readonly<Seen> | undefined {
    const s = this.#peers.get(peer)
    return s == null ? undefined : { ...s }
  }
}
