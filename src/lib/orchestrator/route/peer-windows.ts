/**
 * Per-donor admission windows: how many offers this tab keeps in flight at each
 * peer. A donor that is full declines, which costs a round trip, a retry and a
 * wait; beyond its window, a step waits here instead and goes as soon as one of
 * ours there settles. The window is learned (additive increase on success,
 * shrink to what was in flight when the donor said "full").
 */
import { TaskCancelledError } from '../errors.ts'
import type { CapacityBook } from './capacity.ts'

export interface PeerWindowsInit {
  /** Window of a peer not heard from yet. Default 8 (one worker's slots). */
  initial?: number
  /** Largest window. Default 64. */
  max?: number
  /** Peers remembered; idle ones beyond this are forgotten. Default 512. */
  maxPeers?: number
  /** Where the capacity each donor showed is written for the router (issue 11 item 6). */
  capacity?: CapacityBook
}

interface WindowState {
  limit: number
  inflight: number
  running: number
  waiters: Array<() => void>
}

/** A place in a peer's window: say when the donor accepted, give it back once settled. */
export interface WindowPlace {
  accepted: () => void
  release: () => void
}

export class PeerWindows {
  readonly #initial: number
  readonly #max: number
  readonly #maxPeers: number
  readonly #peers = new Map<string, WindowState>()
  readonly #book: CapacityBook | undefined

  constructor(init: PeerWindowsInit = {}) {
    this.#book = init.capacity
    this.#initial = init.initial ?? 8
    this.#max = init.max ?? 64
    this.#maxPeers = init.maxPeers ?? 512
  }

  #state(peer: string): WindowState {
    let s = this.#peers.get(peer)
    if (s == null) {
      if (this.#peers.size >= this.#maxPeers) {
        for (const [id, x] of this.#peers)
          if (x.inflight === 0 && x.waiters.length === 0) {
            this.#peers.delete(id)
            break
          }
      }
      s = { limit: this.#initial, inflight: 0, running: 0, waiters: [] }
      this.#peers.set(peer, s)
    }
    return s
  }

  /** Whether an offer to `peer` would go out now. */
  available(peer: string): boolean {
    const s = this.#peers.get(peer)
    return s == null || s.inflight < Math.floor(s.limit)
  }

  /** Offers in flight at `peer`, and its window. */
  get(peer: string): { inflight: number; limit: number } {
    const s = this.#peers.get(peer)
    return { inflight: s?.inflight ?? 0, limit: Math.floor(s?.limit ?? this.#initial) }
  }

  /**
   * Take a place in `peer`'s window, waiting while it is full — at most `maxWaitMs`,
   * after which the offer goes anyway (the donor's own answer decides).
   */
  async acquire(peer: string, signal?: AbortSignal, maxWaitMs = 2000): Promise<WindowPlace> {
    const s = this.#state(peer)
    if (signal?.aborted === true) throw new TaskCancelledError()
    if (s.inflight < Math.floor(s.limit)) s.inflight++
    else {
      // #wake counts the place for the waiter it wakes; a timed-out waiter counts its own.
      await new Promise<void>((resolve, reject) => {
        const leave = (): void => {
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          const i = s.waiters.indexOf(admit)
          if (i >= 0) s.waiters.splice(i, 1)
        }
        const admit = (): void => {
          leave()
          resolve()
        }
        const onAbort = (): void => {
          leave()
          reject(new TaskCancelledError())
        }
        const timer = setTimeout(() => {
          leave()
          s.inflight++
          resolve()
        }, maxWaitMs)
        signal?.addEventListener('abort', onAbort, { once: true })
        s.waiters.push(admit)
      })
    }
    let released = false
    let running = false
    this.#book?.offered(peer)
    return {
      accepted: () => {
        if (!released && !running) {
          running = true
          s.running++
          this.#book?.started(peer)
        }
      },
      release: () => {
        if (released) return
        released = true
        s.inflight--
        if (running) s.running--
        this.#book?.ended(peer, running)
        this.#wake(s)
      }
    }
  }

  /** The donor said it is full: its window becomes what it runs for us now (at least 1). */
  full(peer: string): void {
    this.#book?.declinedFull(peer)
    const s = this.#state(peer)
    s.limit = Math.max(1, Math.min(s.limit, s.running))
  }

  /** An offer there succeeded: widen by about one per window's worth of successes. */
  ok(peer: string): void {
    this.#book?.completed(peer)
    const s = this.#state(peer)
    s.limit = Math.min(this.#max, s.limit + 1 / Math.max(1, s.limit))
    this.#wake(s)
  }

  #wake(s: WindowState): void {
    while (s.waiters.length > 0 && s.inflight < Math.floor(s.limit)) {
      const admit = s.waiters.shift()!
      s.inflight++
      admit()
    }
  }
}
