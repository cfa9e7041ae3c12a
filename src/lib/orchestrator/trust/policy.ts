/**
 * Adaptive replication in BOINC's spirit, per (user, agent), user = the profile key
 * of the donor (two tabs of one profile are one user). A user earns trust on an
 * agent by consecutive results that agreed with other users' replicas and loses it
 * at once on a disagreement; until trusted, each of its results is replicated to a
 * donor of another user. A trusted user's results are still spot-checked at random
 * with a probability that falls with its streak and never reaches zero.
 */

/** `preferences.verification`. */
export const VERIFICATION_MODES = ['adaptive', 'always', 'none'] as const
/** `preferences.verification`: 'adaptive' (default), 'always' (every step replicated) or 'none'. */
export type VerificationMode = (typeof VERIFICATION_MODES)[number]

/** `preferences.verification` from outside: undefined stays undefined (the default), anything else not a mode is refused through `onInvalid`. */
export function parseVerificationMode(value: unknown, onInvalid: (message: string) => Error): VerificationMode | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string' && (VERIFICATION_MODES as readonly string[]).includes(value)) return value as VerificationMode
  throw onInvalid(`The routing preferences are not valid: verification must be one of ${VERIFICATION_MODES.map((m) => `'${m}'`).join(', ')}`)
}

/** Whether a result must be replicated, and why. */
export interface ReplicationDecision {
  replicate: boolean
  reason: 'none' | 'always' | 'untrusted' | 'spot-check' | 'trusted' | 'self'
  /** Probability this result was checked with (1 when untrusted or always, 0 when none or self). */
  probability: number
}

/** How a verified step ended, by user. */
export interface VerificationOutcome {
  agentId: string
  /** Users in the agreeing majority. */
  agreed: readonly string[]
  /** Users whose result lost to the majority (or did not match the output schema). */
  disagreed: readonly string[]
  /** Users of a step that failed verification (no majority): their streak is reset, nothing else. */
  inconclusive?: readonly string[]
}

/** Trust of one user on one agent. */
export interface UserTrust {
  /** Consecutive results that agreed with other users. */
  streak: number
  trusted: boolean
  /** Probability the next result is spot-checked (1 while untrusted). */
  checkProbability: number
}

/** Decides how many replicas a step needs; learns from outcomes. */
export interface VerificationPolicy {
  decide(user: string, agentId: string, mode: VerificationMode): ReplicationDecision
  /** Results (the first included) a step may gather before it fails verification. */
  readonly maxReplicas: number
  settle(outcome: VerificationOutcome): void
  trust(user: string, agentId: string): UserTrust
}

/** Options of {@link AdaptivePolicy}, with defaults. */
export interface AdaptivePolicyInit {
  /** Consecutive agreements before a user is trusted on an agent. Default 10 (BOINC's order of magnitude). */
  trustAfter?: number
  /** Spot-check probability once trusted is min(1, spotCheck / streak): 5 gives 0.5 at streak 10, 0.05 at 100. */
  spotCheck?: number
  /** Floor of the spot-check probability (never zero). Default 0.05. */
  minSpotCheck?: number
  /** Results (first included) per step before verification gives up. Default 5. */
  maxReplicas?: number
  /** This profile's own key: its own results are never replicated. */
  self?: string
  /** Uniform random in [0, 1) (tests pass a seeded one). Default Math.random. */
  random?: () => number
}

/** Streaks as persisted: `${user}|${agentId}` → streak. */
export type PolicySnapshot = Record<string, number>

/** The default policy. */
export class AdaptivePolicy implements VerificationPolicy {
  readonly maxReplicas: number
  readonly #trustAfter: number
  readonly #spot: number
  readonly #min: number
  readonly #random: () => number
  readonly #self: string | undefined
  readonly #streaks = new Map<string, number>()
  #version = 0

  constructor(init: AdaptivePolicyInit = {}) {
    this.#trustAfter = Math.max(1, init.trustAfter ?? 10)
    this.#spot = init.spotCheck ?? 5
    this.#min = Math.min(1, Math.max(1e-6, init.minSpotCheck ?? 0.05))
    this.maxReplicas = Math.max(3, init.maxReplicas ?? 5)
    this.#random = init.random ?? Math.random
    this.#self = init.self
  }

  /** Bumped on every change (persistence saves when it moves). */
  get version(): number {
    return this.#version
  }

  trust(user: string, agentId: string): UserTrust {
    const streak = this.#streaks.get(key(user, agentId)) ?? 0
    const trusted = streak >= this.#trustAfter
    return { streak, trusted, checkProbability: trusted ? Math.max(this.#min, Math.min(1, this.#spot / streak)) : 1 }
  }

  decide(user: string, agentId: string, mode: VerificationMode): ReplicationDecision {
    if (mode === 'none') return { replicate: false, reason: 'none', probability: 0 }
    if (this.#self != null && user === this.#self) return { replicate: false, reason: 'self', probability: 0 }
    if (mode === 'always') return { replicate: true, reason: 'always', probability: 1 }
    const t = this.trust(user, agentId)
    if (!t.trusted) return { replicate: true, reason: 'untrusted', probability: 1 }
    return this.#random() < t.checkProbability
      ? { replicate: true, reason: 'spot-check', probability: t.checkProbability }
      : { replicate: false, reason: 'trusted', probability: t.checkProbability }
  }

  settle(o: VerificationOutcome): void {
    for (const u of o.agreed) this.#streaks.set(key(u, o.agentId), (this.#streaks.get(key(u, o.agentId)) ?? 0) + 1)
    for (const u of [...o.disagreed, ...(o.inconclusive ?? [])]) this.#streaks.delete(key(u, o.agentId))
    this.#version++
  }

  snapshot(): PolicySnapshot {
    return Object.fromEntries(this.#streaks)
  }

  /** Merge a persisted snapshot (the larger streak wins; a reset seen here stays a reset only here). */
  restore(s: PolicySnapshot): void {
    for (const [k, n] of Object.entries(s)) {
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || !k.includes('|')) continue
      if (!this.#streaks.has(k)) this.#streaks.set(k, n)
    }
    this.#version++
  }
}

function key(user: string, agentId: string): string {
  return `${user}|${agentId}`
}
