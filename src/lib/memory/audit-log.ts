/**
 * This profile's audit log (issue 11): what was struck and blocked, by whom, when and why;
 * agents published and retracted; namespace grants and revokes; and whatever the app adds
 * (tasks submitted or served). Private (never synced to peers, shared between the profile's
 * tabs, kept in IndexedDB), bounded to the newest `max` records.
 *
 * Each tab appends to its own hash chain (`chain`: one per tab session, so two tabs never
 * fork one chain): a record holds the hash of the chain's previous record and is signed by
 * the profile's key over everything but its signature. `verify()` walks every chain: an
 * edited, reordered or inserted record breaks a hash link or a signature. Only the oldest
 * records' links reach past the bound, into records already dropped.
 */
import * as v from 'valibot'
import type * as Y from 'yjs'
import { canonicalBytes, Counters, type Identity, logger, sha256Hex, signJson } from '../core/index.ts'
import { SignatureVerifier } from './signature-verifier.ts'

const log = logger('memory:audit')

/** Kinds the layer and the mesh write; the app may add others (short dotted names). */
export type AuditKind = 'strike' | 'block' | 'agent.published' | 'agent.retracted' | 'namespace.granted' | 'namespace.revoked' | (string & {})

/** What a record says. */
export interface AuditEntry {
  kind: AuditKind
  /** Who did it, or to whom it was done (a peer id, a profile key). */
  peer?: string
  /** What it was about (an agent id, a namespace, a protocol). */
  subject?: string
  /** Why, in a few words (an error's name, a strike reason). */
  why?: string
}

const Text = (max: number) => v.pipe(v.string(), v.maxLength(max))
const AuditRecordSchema = v.object({
  v: v.literal(1),
  chain: Text(64),
  seq: v.pipe(v.number(), v.integer(), v.minValue(0)),
  at: v.number(),
  kind: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9.-]{0,39}$/)),
  peer: v.optional(Text(200)),
  subject: v.optional(Text(200)),
  why: v.optional(Text(300)),
  /** sha256 (hex) of the chain's previous record, '' for a chain's first. */
  prev: v.pipe(v.string(), v.regex(/^([0-9a-f]{64})?$/)),
  /** The profile key that signed it. */
  signer: v.string(),
  signature: v.string()
})
/** One signed record of the log. */
export type AuditRecord = v.InferOutput<typeof AuditRecordSchema>

/** What `verify()` found. */
export interface AuditVerification {
  ok: boolean
  records: number
  chains: number
  /** Records that fail their schema, signature or hash link, with why. */
  broken: Array<{ chain: string; seq: number; why: string }>
}

/** Options of {@link AuditLog}. */
export interface AuditLogInit {
  /** Records kept (the oldest go first). Default 1000. */
  max?: number
  /** Records of one kind per minute (a flood of strikes must not flood the log); the rest are counted as dropped. Default 120. */
  perKindPerMinute?: number
  counters?: Counters
  now?: () => number
}

/** The hash of a record: sha256 over its canonical JSON, signature included. */
export function auditRecordHash(r: AuditRecord): string {
  return sha256Hex(canonicalBytes(r))
}

/** A profile's audit log over the private doc `doc` (root `records`). */
export class AuditLog {
  readonly #records: Y.Array<unknown>
  readonly #identity: Identity
  readonly #max: number
  readonly #perKind: number
  readonly #counters: Counters
  readonly #now: () => number
  readonly #chain = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`
  readonly #verifier = new SignatureVerifier()
  readonly #budget = new Map<string, { minute: number; n: number }>()
  #seq = 0
  #prev = ''
  #queue: Promise<unknown> = Promise.resolve()

  constructor(doc: Y.Doc, identity: Identity, init: AuditLogInit = {}) {
    this.#records = doc.getArray('records')
    this.#identity = identity
    this.#max = init.max ?? 1000
    this.#perKind = init.perKindPerMinute ?? 120
    this.#counters = init.counters ?? new Counters('audit')
    this.#now = init.now ?? Date.now
  }

  /**
   * Append a signed record to this tab's chain; resolves with it once written (undefined when
   * its kind is over its per-minute budget: counted as `dropped`). Appends are in order.
   */
  append(entry: AuditEntry): Promise<AuditRecord | undefined> {
    const at = this.#now()
    const minute = Math.floor(at / 60_000)
    const b = this.#budget.get(entry.kind)
    if (b != null && b.minute === minute && b.n >= this.#perKind) {
      this.#counters.inc('dropped')
      return Promise.resolve(undefined)
    }
    this.#budget.set(entry.kind, { minute, n: b != null && b.minute === minute ? b.n + 1 : 1 })
    const next = this.#queue.then(() => this.#write(entry, at))
    this.#queue = next.catch(() => {})
    return next
  }

  /** Append without waiting: a record that cannot be written is counted (`errors`) and logged, never thrown at the caller. */
  note(entry: AuditEntry): void {
    this.append(entry).catch((err: unknown) => {
      this.#counters.inc('errors')
      log.error('audit record failed: %s', err instanceof Error ? err.message : String(err))
    })
  }

  async #write(entry: AuditEntry, at: number): Promise<AuditRecord> {
    const body: Omit<AuditRecord, 'signature'> = {
      v: 1,
      chain: this.#chain,
      seq: this.#seq,
      at,
      kind: entry.kind,
      ...(entry.peer != null ? { peer: entry.peer.slice(0, 200) } : {}),
      ...(entry.subject != null ? { subject: entry.subject.slice(0, 200) } : {}),
      ...(entry.why != null ? { why: entry.why.slice(0, 300) } : {}),
      prev: this.#prev,
      signer: this.#identity.publicKey
    }
    const parsed = v.safeParse(AuditRecordSchema, { ...body, signature: 'x' })
    if (!parsed.success) throw new TypeError(`not an audit record: ${parsed.issues[0]?.message}`)
    const record: AuditRecord = { ...body, signature: await signJson(this.#identity, body) }
    this.#seq++
    this.#prev = auditRecordHash(record)
    const doc = this.#records.doc
    const write = (): void => {
      this.#records.push([record])
      const over = this.#records.length - this.#max
      if (over > 0) this.#records.delete(0, over)
    }
    if (doc == null) write()
    else doc.transact(write)
    this.#counters.inc('records')
    log('%s %s %s %s', record.kind, record.peer ?? '', record.subject ?? '', record.why ?? '')
    return record
  }

  /** Resolves once every append so far is written. */
  settled(): Promise<void> {
    return this.#queue.then(() => {})
  }

  /** Records, newest first, optionally of one kind or about one peer, at most `limit`. */
  list(filter: { kind?: string; peer?: string; limit?: number } = {}): AuditRecord[] {
    const out: AuditRecord[] = []
    const all = this.#records.toArray()
    for (let i = all.length - 1; i >= 0 && out.length < (filter.limit ?? this.#max); i--) {
      const parsed = v.safeParse(AuditRecordSchema, all[i])
      if (!parsed.success) continue
      const r = parsed.output
      if (filter.kind != null && r.kind !== filter.kind) continue
      if (filter.peer != null && r.peer !== filter.peer) continue
      out.push(r)
    }
    return out
  }

  /** Check every record's schema and signature and every chain's hash links. */
  async verify(): Promise<AuditVerification> {
    const broken: AuditVerification['broken'] = []
    const chains = new Map<string, AuditRecord[]>()
    const all = this.#records.toArray()
    for (const raw of all) {
      const parsed = v.safeParse(AuditRecordSchema, raw)
      if (!parsed.success) {
        const r = raw as Partial<AuditRecord> | null
        broken.push({ chain: String(r?.chain ?? '?'), seq: Number(r?.seq ?? -1), why: 'not an audit record' })
        continue
      }
      const list = chains.get(parsed.output.chain) ?? []
      list.push(parsed.output)
      chains.set(parsed.output.chain, list)
    }
    for (const [chain, records] of chains) {
      records.sort((a, b) => a.seq - b.seq)
      for (const [i, r] of records.entries()) {
        const { signature, ...body } = r
        if (!(await this.#verifier.verify(r.signer, body, signature))) broken.push({ chain, seq: r.seq, why: 'bad signature' })
        const before = records[i - 1]
        // The first kept record of a chain may link to one already dropped (the bound).
        if (before != null && (before.seq !== r.seq - 1 || auditRecordHash(before) !== r.prev)) broken.push({ chain, seq: r.seq, why: 'broken hash link' })
        if (before == null && r.seq === 0 && r.prev !== '') broken.push({ chain, seq: r.seq, why: 'broken hash link' })
      }
    }
    return { ok: broken.length === 0, records: all.length, chains: chains.size, broken }
  }
}
