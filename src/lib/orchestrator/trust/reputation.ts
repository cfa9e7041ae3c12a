/**
 * Reputation of users (profile keys), per agent and overall: a Beta posterior of
 * valid vs invalid results (Beta(1 + valid, 1 + invalid): unknown is the prior 0.5,
 * not zero), with latency and cost statistics. What this profile observed itself
 * counts in full; what other peers state (signed statements, see statements.ts) is
 * weighted by this profile's trust in the statement's author and capped per author,
 * so a single author (a sybil) cannot vote a liar up or an honest user down alone.
 */

/** What was observed about one user, on one agent or overall. */
export interface Observation {
  /** Results that were accepted by verification (or agreed with the majority). */
  valid: number
  /** Results that lost to the majority or did not match the output schema. */
  invalid: number
  /** Runs timed (accepted results only). */
  runs: number
  totalMs: number
  totalCost: number
}

/** A reputation as the API reports it. */
export interface Reputation {
  /** Posterior mean of the Beta: (1 + valid) / (2 + valid + invalid), 0..1. */
  score: number
  valid: number
  invalid: number
  /** Mean run time of accepted results (ms), when any were timed. */
  avgMs?: number
  /** Mean price paid per accepted result. */
  avgCost?: number
}

/** A statement by another profile about a user, already verified (signature, schema). */
export interface PeerStatement {
  /** The profile key that signed it. */
  author: string
  /** The user it is about. */
  user: string
  /** The agent, or undefined for the user's overall record. */
  agentId?: string
  valid: number
  invalid: number
  at: number
}

/** Options of {@link ReputationBook}, with defaults. */
export interface ReputationInit {
  /** Most pseudo-observations one author's statement can add (scaled by trust in the author). Default 10. */
  capPerAuthor?: number
  /** Most pseudo-observations all statements together can add. Default 100. */
  capShared?: number
}

/** `${user}|${agentId}`, or `${user}|*` for the user's overall record. */
export type ReputationSnapshot = Record<string, Observation>

const OVERALL = '*'
const empty = (): Observation => ({ valid: 0, invalid: 0, runs: 0, totalMs: 0, totalCost: 0 })

/** Beta posterior mean with a uniform prior. */
export function betaScore(valid: number, invalid: number): number {
  return (1 + valid) / (2 + valid + invalid)
}

/** This profile's reputation book. */
export class ReputationBook {
  readonly #obs = new Map<string, Observation>()
  readonly #capAuthor: number
  readonly #capShared: number
  #statements: PeerStatement[] = []
  #version = 0

  constructor(init: ReputationInit = {}) {
    this.#capAuthor = init.capPerAuthor ?? 10
    this.#capShared = init.capShared ?? 100
  }

  /** Bumped on every change. */
  get version(): number {
    return this.#version
  }

  /** Record one result of `user` on `agentId` (overall too). */
  observe(user: string, agentId: string, r: { valid: boolean; ms?: number; cost?: number }): void {
    for (const k of [key(user, agentId), key(user, OVERALL)]) {
      const o = this.#obs.get(k) ?? empty()
      if (r.valid) {
        o.valid++
        if (r.ms != null && Number.isFinite(r.ms)) {
          o.runs++
          o.totalMs += r.ms
          o.totalCost += r.cost ?? 0
        }
      } else o.invalid++
      this.#obs.set(k, o)
    }
    this.#version++
  }

  /** What this profile observed itself. */
  local(user: string, agentId?: string): Observation | undefined {
    const o = this.#obs.get(key(user, agentId ?? OVERALL))
    return o == null ? undefined : { ...o }
  }

  /** Users this profile has observed (overall records). */
  users(): string[] {
    return [...this.#obs.keys()].filter((k) => k.endsWith(`|${OVERALL}`)).map((k) => k.slice(0, -OVERALL.length - 1))
  }

  /** Replace the verified statements of other profiles (the newest per author and subject). */
  setStatements(statements: readonly PeerStatement[]): void {
    const newest = new Map<string, PeerStatement>()
    for (const s of statements) {
      const k = `${s.author}|${s.user}|${s.agentId ?? OVERALL}`
      const prev = newest.get(k)
      if (prev == null || s.at > prev.at) newest.set(k, s)
    }
    this.#statements = [...newest.values()]
    this.#version++
  }

  /** Trust in an author: this profile's own Beta mean of that user (prior 0.5 when never observed). */
  authorWeight(author: string): number {
    const o = this.#obs.get(key(author, OVERALL))
    return betaScore(o?.valid ?? 0, o?.invalid ?? 0)
  }

  /**
   * The combined reputation of `user` (on `agentId`, or overall): own observations in
   * full, plus each other author's statement scaled to at most `capPerAuthor`
   * pseudo-observations times the trust in that author, all statements together
   * scaled to at most `capShared`. A user's statements about itself are ignored.
   */
  reputation(user: string, agentId?: string): Reputation {
    const own = this.#obs.get(key(user, agentId ?? OVERALL)) ?? empty()
    let sv = 0
    let si = 0
    for (const s of this.#statements) {
      if (s.user !== user || (s.agentId ?? OVERALL) !== (agentId ?? OVERALL) || s.author === user) continue
      const n = s.valid + s.invalid
      if (!(n > 0)) continue
      const scale = (Math.min(n, this.#capAuthor) / n) * this.authorWeight(s.author)
      sv += s.valid * scale
      si += s.invalid * scale
    }
    const shared = sv + si
    if (shared > this.#capShared) {
      sv *= this.#capShared / shared
      si *= this.#capShared / shared
    }
    const valid = own.valid + sv
    const invalid = own.invalid + si
    return {
      score: betaScore(valid, invalid),
      valid: round(valid),
      invalid: round(invalid),
      ...(own.runs > 0 ? { avgMs: own.totalMs / own.runs, avgCost: own.totalCost / own.runs } : {})
    }
  }

  snapshot(): ReputationSnapshot {
    return Object.fromEntries([...this.#obs].map(([k, o]) => [k, { ...o }]))
  }

  /** Load a persisted snapshot (records already here are kept: they are newer). */
  restore(s: ReputationSnapshot): void {
    for (const [k, o] of Object.entries(s)) {
      if (this.#obs.has(k) || !k.includes('|') || !isObservation(o)) continue
      this.#obs.set(k, { ...o })
    }
    this.#version++
  }
}

function isObservation(o: unknown): o is Observation {
  if (o == null || typeof o !== 'object') return false
  const r = o as Record<string, unknown>
  return ['valid', 'invalid', 'runs', 'totalMs', 'totalCost'].every((f) => typeof r[f] === 'number' && Number.isFinite(r[f]) && (r[f] as number) >= 0)
}

function key(user: string, agentId: string): string {
  return `${user}|${agentId}`
}

function round(n: number): number {
  return Math.round(n * 100) / 100
}
