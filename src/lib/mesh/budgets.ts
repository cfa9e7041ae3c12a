/**
 * Per-peer budgets for request/response protocols (issue 11 item 11: agent-fetch
 * answered 2.2 KB of requests with 1.42 MB, 631×). Each protocol keeps one budget:
 * so many requests and so many answer bytes per peer per window, with `RateLimiter`
 * from @libp2p/utils. Over budget, the request is refused with a typed
 * OverBudgetError (the caller sends it back by name), counted
 * (`mesh.budget.<protocol>.refused`) and struck.
 */
import { RateLimiter } from '@libp2p/utils'
import type { Counters } from '../core/index.ts'
import { MeshError } from './errors.ts'
import type { StrikeSink } from './strikes.ts'

/** A peer asked for more than its budget on a protocol. */
export class OverBudgetError extends MeshError {
  override readonly name: string = 'OverBudgetError'
  static override readonly defaultMessage: string = 'Too many requests from this peer; try again later'
}

/** Options of {@link PeerBudget}. */
export interface PeerBudgetInit {
  /** Requests per peer per window. Default 30. */
  requests?: number
  /** Answer bytes per peer per window. Default 8 MiB. */
  bytes?: number
  /** The window, in seconds. Default 10. */
  windowS?: number
}

/** What a budget reports to. */
export interface PeerBudgetComponents {
  strikes?: StrikeSink
  counters?: Counters
}

/** One protocol's per-peer request and byte budget. */
export class PeerBudget {
  readonly protocol: string
  readonly #requests: RateLimiter
  readonly #bytes: RateLimiter
  readonly #c: PeerBudgetComponents

  constructor(protocol: string, components: PeerBudgetComponents = {}, init: PeerBudgetInit = {}) {
    this.protocol = protocol
    this.#c = components
    const duration = init.windowS ?? 10
    this.#requests = new RateLimiter({ points: init.requests ?? 30, duration, keyPrefix: `${protocol}:req` })
    this.#bytes = new RateLimiter({ points: init.bytes ?? 8 * 1024 * 1024, duration, keyPrefix: `${protocol}:bytes` })
  }

  /** Charge one request from `peer`. Returns the refusal to send back when over budget (already counted and struck). */
  request(peer: string): OverBudgetError | undefined {
    return this.#take(this.#requests, peer, 1, 'requests')
  }

  /** Charge `bytes` of answer to `peer` before sending it. Returns the refusal when over budget. */
  answer(peer: string, bytes: number): OverBudgetError | undefined {
    return this.#take(this.#bytes, peer, Math.max(0, Math.ceil(bytes)), 'bytes')
  }

  #take(limiter: RateLimiter, peer: string, points: number, what: string): OverBudgetError | undefined {
    try {
      limiter.consume(peer, points)
      return undefined
    } catch (err) {
      if ((err as Error)?.name !== 'RateLimitError') throw err
      this.#c.counters?.inc(`budget.${this.protocol}.refused`)
      this.#c.strikes?.strike(peer, this.protocol, 'OverBudgetError')
      return new OverBudgetError(`${peer} is over its ${this.protocol} budget of ${what}; try again later`)
    }
  }
}
