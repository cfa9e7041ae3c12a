/**
 * What a profile may spend (issue 12 "Credits"): its balance plus a small allowance
 * (a new profile starts at 0 and may spend the allowance before it has earned
 * anything), and at most an optional daily budget. A task is checked before anything
 * runs, on its plan's estimate with verification counted; tasks running at once hold
 * their estimates, so together they cannot pass either limit. The limits are this
 * profile's own policy: nothing in a mesh without a shared ledger stops a modified
 * client from ignoring them (see the README's sybil paragraph).
 */
import { OrchestratorError } from '../errors.ts'
import { CreditLimitError } from './errors.ts'
import { DEFAULT_ALLOWANCE, type Credits } from './receipts.ts'
import type { VerificationMode } from './policy.ts'

/** Spending a task's estimate would take today's spending past the daily budget. */
export class DailyBudgetExceededError extends OrchestratorError {
  override readonly name: string = 'DailyBudgetExceededError'
  static override readonly defaultMessage: string = "Today's budget is spent: raise the daily budget in Settings or wait until tomorrow"
}

/** The limits a profile sets itself. */
export interface SpendLimits {
  /** What may be spent beyond what was earned, in credits (≥ 0). Default {@link DEFAULT_ALLOWANCE}. */
  allowance: number
  /** Most credits spent per local calendar day; undefined for no daily limit. */
  dailyBudget?: number
}

/** What the Credits and Settings pages show. */
export interface SpendingState extends SpendLimits {
  /** Credits paid by receipts this profile issued since local midnight. */
  spentToday: number
  /** Estimates held by tasks running now. */
  reserved: number
  /** The largest estimate a new task may have now (balance + allowance and the daily budget, minus what is held). */
  available: number
}

/** The narrow part the orchestrator uses: hold a task's estimate or refuse it with a typed error. */
export interface SpendGuard {
  /** Hold `estimate` credits for a task; throws `CreditLimitError` or `DailyBudgetExceededError`. Returns the release. */
  authorize(estimate: number, what: string): () => void
}

/** Results per step a task's estimate counts: one check by another user unless verification is off. */
export function verificationFactor(mode: VerificationMode | undefined): number {
  return mode === 'none' ? 1 : 2
}

/** Start of the local calendar day of `now` (ms). */
export function startOfDay(now: number): number {
  const d = new Date(now)
  d.setHours(0, 0, 0, 0)
  return d.getTime()
}

/** Check limits as a valid value or throw RangeError naming the field. */
export function checkLimits(l: Partial<SpendLimits>): void {
  if (l.allowance !== undefined && !(Number.isFinite(l.allowance) && l.allowance >= 0 && l.allowance <= 1e9))
    throw new RangeError(`The allowance must be a number of credits from 0 to 1e9, got ${l.allowance}`)
  if (l.dailyBudget !== undefined && !(Number.isFinite(l.dailyBudget) && l.dailyBudget >= 0 && l.dailyBudget <= 1e9))
    throw new RangeError(`The daily budget must be a number of credits from 0 to 1e9, got ${l.dailyBudget}`)
}

/** One profile's spending guard, reading the ledger through `credits`. */
export class SpendingGuard implements SpendGuard {
  readonly #credits: () => Pick<Credits, 'balance' | 'receipts'>
  readonly #self: string
  readonly #now: () => number
  #limits: SpendLimits
  #reserved = 0

  constructor(opts: { self: string; credits: () => Pick<Credits, 'balance' | 'receipts'>; limits?: Partial<SpendLimits>; now?: () => number }) {
    this.#self = opts.self
    this.#credits = opts.credits
    this.#now = opts.now ?? Date.now
    const l = { allowance: DEFAULT_ALLOWANCE, ...opts.limits }
    checkLimits(l)
    this.#limits = l
  }

  get limits(): SpendLimits {
    return { ...this.#limits }
  }

  /** Change the limits (`dailyBudget: undefined` removes the daily limit). Throws RangeError on a bad value. */
  setLimits(patch: Partial<SpendLimits>): SpendLimits {
    const next = { ...this.#limits, ...patch }
    if ('dailyBudget' in patch && patch.dailyBudget === undefined) delete next.dailyBudget
    checkLimits(next)
    this.#limits = next
    return this.limits
  }

  /** Credits this profile paid since local midnight. */
  spentToday(): number {
    const since = startOfDay(this.#now())
    let sum = 0
    for (const r of this.#credits().receipts) if (r.submitter === this.#self && r.time >= since) sum += r.price
    return round(sum)
  }

  state(): SpendingState {
    const spentToday = this.spentToday()
    const byBalance = this.#credits().balance + this.#limits.allowance
    const byDay = this.#limits.dailyBudget == null ? Infinity : this.#limits.dailyBudget - spentToday
    return {
      ...this.limits,
      spentToday,
      reserved: round(this.#reserved),
      available: round(Math.max(0, Math.min(byBalance, byDay) - this.#reserved))
    }
  }

  authorize(estimate: number, what: string): () => void {
    if (!(estimate > 0)) return () => {}
    const credits = this.#credits()
    const spentToday = this.spentToday()
    const fmt = (n: number): string => String(round(n))
    const { allowance, dailyBudget } = this.#limits
    if (dailyBudget != null && spentToday + this.#reserved + estimate > dailyBudget + 1e-9) {
      throw new DailyBudgetExceededError(
        `${what} is estimated at ${fmt(estimate)} credits (verification included), but ${fmt(spentToday)} of today's budget of ${fmt(dailyBudget)} are spent${this.#reserved > 0 ? ` and ${fmt(this.#reserved)} are held by tasks running now` : ''}: raise the daily budget in Settings, wait until tomorrow, or set a lower max_cost`
      )
    }
    if (credits.balance + allowance - this.#reserved - estimate < -1e-9) {
      throw new CreditLimitError(
        `${what} is estimated at ${fmt(estimate)} credits (verification included), but this profile may spend only ${fmt(Math.max(0, credits.balance + allowance - this.#reserved))} more (balance ${fmt(credits.balance)} + allowance ${fmt(allowance)}${this.#reserved > 0 ? ` − ${fmt(this.#reserved)} held by tasks running now` : ''}): donate compute in Settings to earn credits`
      )
    }
    this.#reserved += estimate
    let released = false
    return () => {
      if (released) return
      released = true
      this.#reserved = Math.max(0, this.#reserved - estimate)
    }
  }
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6
}
