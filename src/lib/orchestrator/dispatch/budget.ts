/**
 * A task's credit budget (`max_cost`) shared by its steps. A step reserves the
 * price of the route it is about to try before the offer goes out, so steps
 * running at the same time see what the others hold; a failed or abandoned
 * attempt releases its reservation and a committed one turns it into spent.
 */
import { StepFailedError } from '../errors.ts'

/** A step could not reserve the price of any route it has within what is left of `max_cost`. */
export class BudgetExceededError extends StepFailedError {
  override readonly name: string = 'BudgetExceededError'
  static override readonly defaultMessage: string = 'The task budget (max_cost) is used up'
}

/** Floating-point slack so 0.1 + 0.2 fits in 0.3. */
const EPSILON = 1e-9

/** The budget of one task run. `limit` Infinity means no max_cost. */
export class Budget {
  readonly limit: number
  #spent = 0
  readonly #held = new Map<string, number>()

  constructor(limit: number = Infinity) {
    if (Number.isNaN(limit) || limit < 0) throw new RangeError(`a budget must be a number ≥ 0, got ${limit}`)
    this.limit = limit
  }

  /** Credits paid for committed steps. */
  get spent(): number {
    return this.#spent
  }

  /** Credits held by attempts in flight. */
  get reserved(): number {
    let n = 0
    for (const p of this.#held.values()) n += p
    return n
  }

  /** What a new reservation may use: the limit less spent and reserved (never below 0). */
  available(): number {
    if (this.limit === Infinity) return Infinity
    return Math.max(0, this.limit - this.#spent - this.reserved)
  }

  /** What `holder` could reserve: `available()` plus what it holds already (a retry replaces its own hold). */
  availableTo(holder: string): number {
    return this.available() + (this.#held.get(holder) ?? 0)
  }

  /** Whether `price` fits for `holder` (its current hold counts as free for it). */
  fits(holder: string, price: number): boolean {
    return price <= this.availableTo(holder) + EPSILON
  }

  /**
   * Hold `price` for `holder` (one hold per holder: a new one replaces the old).
   * Returns false, holding nothing new, when it does not fit.
   */
  reserve(holder: string, price: number): boolean {
    if (!(price >= 0)) throw new RangeError(`a price must be a number ≥ 0, got ${price}`)
    if (!this.fits(holder, price)) return false
    this.#held.set(holder, price)
    return true
  }

  /** Drop `holder`'s hold (a failed, cancelled or re-routed attempt). */
  release(holder: string): void {
    this.#held.delete(holder)
  }

  /** Turn `holder`'s hold into spent, paying `price` (default: what it held). Returns what was paid. */
  commit(holder: string, price?: number): number {
    const paid = price ?? this.#held.get(holder) ?? 0
    this.#held.delete(holder)
    this.#spent += paid
    return paid
  }

  /** Whether `holder` holds anything. */
  holds(holder: string): boolean {
    return this.#held.has(holder)
  }
}
