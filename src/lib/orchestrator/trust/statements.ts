/**
 * Shared reputation: each profile publishes signed statements of what it observed
 * about other users (valid and invalid result counts, overall and per agent). They
 * travel in the registry doc's signed reputation records (`zerostate/reputation/1`,
 * `registry.publishReputation`), with subjects `user:<profile key>` (overall) and
 * `user:<profile key>/<agent id>`; every record read is checked here again (schema,
 * subject, Ed25519 signature of its publisher) before it counts.
 */
import * as v from 'valibot'
import { logger, signJson, verifyJson, type Identity } from '../../core/index.ts'
import type { PeerStatement } from './reputation.ts'

const log = logger('orchestrator:trust:statements')

/** Where statements are kept and shared (the app adapts the registry doc to this). */
export interface StatementStore {
  /** Sign (as this profile) and publish a statement; replaces this profile's previous one on the subject. */
  publish(s: { subject: string; score: number; valid: number; invalid: number }): Promise<void>
  /** Every stored record, untrusted (checked by {@link readStatements}). */
  records(): Iterable<unknown>
  /** Called when records may have changed; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void
}

const PublicKey = v.pipe(v.string(), v.regex(/^ed25519:[A-Za-z0-9_-]{43}$/))
const Count = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1e9))

/** The signed record (the registry's reputation record). */
export const StatementRecordSchema = v.object({
  kind: v.literal('zerostate/reputation/1'),
  publisher: PublicKey,
  subject: v.pipe(v.string(), v.maxLength(200)),
  score: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
  successes: Count,
  failures: Count,
  updatedAt: v.pipe(v.number(), v.integer(), v.minValue(0)),
  signature: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{86}$/))
})
/** A signed statement record. */
export type StatementRecord = v.InferOutput<typeof StatementRecordSchema>

const SUBJECT = /^user:(ed25519:[A-Za-z0-9_-]{43})(?:\/([0-9a-f]{64}))?$/

/** The subject of a statement about `user` (on `agentId`, or overall). */
export function statementSubject(user: string, agentId?: string): string {
  return `user:${user}${agentId != null ? `/${agentId}` : ''}`
}

/** Parse a subject; undefined when it is not about a user. */
export function parseSubject(subject: string): { user: string; agentId?: string } | undefined {
  const m = SUBJECT.exec(subject)
  if (m == null) return undefined
  return m[2] != null ? { user: m[1], agentId: m[2] } : { user: m[1] }
}

/** An A/B decision another profile wrote to the registry (subject `ab:<name>@<new>:<decision>:vs=<old>;…`), signature checked. */
export interface SharedDecision {
  author: string
  /** The record's subject: the decision and its figures as written. */
  subject: string
  name: string
  version: string
  decision: 'promoted' | 'demoted'
  /** The version it was measured against. */
  against: string
  at: number
}

const DECISION = /^ab:(.+)@([^@:]+):(promoted|demoted):vs=([^;]+)(?:;|$)/

/** Parse an A/B decision subject; undefined when it is not one. */
export function parseDecisionSubject(subject: string): Omit<SharedDecision, 'author' | 'at' | 'subject'> | undefined {
  const m = DECISION.exec(subject)
  return m == null ? undefined : { name: m[1], version: m[2], decision: m[3] as SharedDecision['decision'], against: m[4] }
}

/** Checks records once each (by signature) and keeps the verified statements. */
export class StatementReader {
  readonly #checked = new Map<string, PeerStatement | null>()
  readonly #decisions = new Map<string, SharedDecision | null>()
  /** Records refused (schema, subject or signature). */
  rejected = 0
  /** Signed A/B decisions found by the last {@link read}, newest first. */
  decisions: SharedDecision[] = []

  /** The verified statements among `records` (new ones are checked now). */
  async read(records: Iterable<unknown>): Promise<PeerStatement[]> {
    const out: PeerStatement[] = []
    const decisions: SharedDecision[] = []
    for (const raw of records) {
      const r = v.safeParse(StatementRecordSchema, raw)
      if (!r.success) {
        if (typeof (raw as { subject?: unknown })?.subject === 'string' && (raw as { subject: string }).subject.startsWith('user:')) this.rejected++
        continue
      }
      const rec = r.output
      if (rec.subject.startsWith('ab:')) {
        const d = await this.#decision(rec)
        if (d != null) decisions.push(d)
        continue
      }
      if (!rec.subject.startsWith('user:')) continue // a statement about an agent entry, not a user
      // Keyed by the whole record: a tampered copy carries the same signature.
      const key = JSON.stringify([rec.publisher, rec.subject, rec.score, rec.successes, rec.failures, rec.updatedAt, rec.signature])
      let s = this.#checked.get(key)
      if (s === undefined) {
        s = await verifyStatement(rec)
        if (s == null) {
          this.rejected++
          log('refused statement by %s on %s', rec.publisher, rec.subject)
        }
        if (this.#checked.size >= 50_000) this.#checked.clear()
        this.#checked.set(key, s)
      }
      if (s != null) out.push(s)
    }
    this.decisions = decisions.sort((a, b) => b.at - a.at)
    return out
  }

  async #decision(rec: StatementRecord): Promise<SharedDecision | null> {
    const key = JSON.stringify([rec.publisher, rec.subject, rec.score, rec.successes, rec.failures, rec.updatedAt, rec.signature])
    let d = this.#decisions.get(key)
    if (d === undefined) {
      const parsed = parseDecisionSubject(rec.subject)
      const { signature, ...body } = rec
      d =
        parsed != null && (await verifyJson(rec.publisher, body, signature))
          ? { author: rec.publisher, subject: rec.subject, ...parsed, at: rec.updatedAt }
          : null
      if (d == null) this.rejected++
      if (this.#decisions.size >= 10_000) this.#decisions.clear()
      this.#decisions.set(key, d)
    }
    return d
  }
}

/** The statement of a record whose subject and signature check out, else null. */
export async function verifyStatement(rec: StatementRecord): Promise<PeerStatement | null> {
  const subject = parseSubject(rec.subject)
  if (subject == null) return null
  const { signature, ...body } = rec
  if (!(await verifyJson(rec.publisher, body, signature))) return null
  return {
    author: rec.publisher,
    user: subject.user,
    ...(subject.agentId != null ? { agentId: subject.agentId } : {}),
    valid: rec.successes,
    invalid: rec.failures,
    at: rec.updatedAt
  }
}

/** Sign a statement record as `identity` (the registry does the same in publishReputation). */
export async function signStatement(
  identity: Identity,
  s: { subject: string; score: number; valid: number; invalid: number; at?: number }
): Promise<StatementRecord> {
  const body = {
    kind: 'zerostate/reputation/1' as const,
    publisher: identity.publicKey as string,
    subject: s.subject,
    score: s.score,
    successes: s.valid,
    failures: s.invalid,
    updatedAt: s.at ?? Date.now()
  }
  return { ...body, signature: await signJson(identity, body) }
}

/**
 * An in-memory store shared by the trust services of a test or a simulation (the
 * registry doc's stand-in): `store.as(identity)` is one profile's view.
 */
export class MemoryStatementStore {
  readonly #records = new Map<string, unknown>()
  readonly #listeners = new Set<() => void>()

  /** One profile's handle on the shared records. */
  as(identity: Identity): StatementStore {
    return {
      publish: async (s) => {
        const rec = await signStatement(identity, s)
        this.put(`${rec.publisher}/${rec.subject}`, rec)
      },
      records: () => this.#records.values(),
      subscribe: (l) => {
        this.#listeners.add(l)
        return () => this.#listeners.delete(l)
      }
    }
  }

  /** Store a raw record (tests put forged ones here). */
  put(key: string, record: unknown): void {
    this.#records.set(key, record)
    for (const l of this.#listeners) l()
  }
}
