/**
 * The agent registry over the `registry` Y.Doc. Maps (all keyed so that the key
 * names the signer): `entries` and `retractions` by `author/id`, `reputation` by
 * `publisher/subject`, `holders` by `author/id|peerId` (unsigned hints: module
 * bytes are checked against the signed moduleSha256 anyway).
 *
 * A CRDT lets anyone overwrite or delete any key, so the view is resolved
 * through verification, never trusted from the map: a record counts only if its
 * signature verifies against the author in its key and its fields match the key.
 * Readers remember the best valid record per key and write it back when the map
 * holds something worse (forged, older, or deleted) — so only the author can
 * update or retract an entry, whatever order merges happen in.
 */
import type * as Y from 'yjs'
import * as v from 'valibot'
import { signJson, canonicalBytes, type Identity } from '../core/index.ts'
import { SignatureVerifier } from './signature-verifier.ts'
import { hasWork, mintWork } from './publish-work.ts'
import { TimeSlicer } from './time-slicer.ts'
import type { AuditEntry } from './audit-log.ts'
import { Counters } from '../core/index.ts'
import { ChangeNotifier, logger } from '../core/index.ts'
import {
  EntryNotFoundError,
  EntryTooLargeError,
  InvalidEntryError,
  RegistryQuotaError,
  RegistryQuotaExceededError,
  RegistryWorkMissingError,
  overQuotaRefusal
} from './errors.ts'
import { liveKeysIn, type UpdatePolicy, type UpdateShape } from './update-guard.ts'
import type { MemoryLimits } from './constants.ts'
import {
  EntryRecordSchema,
  PeerIdSchema,
  PublishInputSchema,
  ReputationInputSchema,
  ReputationRecordSchema,
  RetractionRecordSchema,
  entryKey,
  type EntryRecord,
  type PublishInput,
  type RegistryEntry,
  type RegistryFilter,
  type ReputationInput,
  type ReputationRecord,
  type RetractionRecord
} from './registry-schema.ts'

const log = logger('memory:registry')
const HEAL = Symbol('registry-heal')
const VERIFY_CHUNK = 256
/** Main-thread time one slice of record checks may take before the page gets a turn, in ms. */
const SLICE_MS = 20
const INVALID = 'invalid' as const

/** Root types of the registry doc (updates naming others are refused). */
export const REGISTRY_ROOTS: ReadonlySet<string> = new Set(['entries', 'retractions', 'reputation', 'holders'])

/**
 * What the update guard accepts in the registry doc: its four maps, holding
 * plain values (records, holder times) no deeper than a record and no larger
 * than two entries' bytes; no JSON, text, binary or nested types, which no
 * registry writer produces (issue 11 item 1: a ContentJSON manifest nested
 * 20,000 deep wiped the registry of every reader).
 */
export function registryUpdatePolicy(limits: Pick<MemoryLimits, 'maxEntryBytes'>): UpdatePolicy {
  return {
    allowedRoots: REGISTRY_ROOTS,
    maxDepth: MAX_RECORD_DEPTH,
    maxValueBytes: 2 * limits.maxEntryBytes,
    forbiddenContent: new Set(['json', 'string', 'binary', 'embed', 'format', 'type']),
    // New entries are decoded by the guard so that their work stamps are checked before Yjs applies them.
    valuesOf: new Set(['entries'])
  }
}

/** Whether a raw entry value carries its publishing work (a malformed one is left to the verifier). */
function stamped(value: unknown, bits: number): boolean {
  if (typeof value !== 'object' || value === null) return true
  const { signature, work } = value as { signature?: unknown; work?: unknown }
  if (typeof signature !== 'string') return true
  return hasWork(signature, typeof work === 'string' ? work : undefined, bits)
}

type Kind = 'entries' | 'retractions' | 'reputation'
const SCHEMAS = { entries: EntryRecordSchema, retractions: RetractionRecordSchema, reputation: ReputationRecordSchema }
type AnyRecord = EntryRecord | RetractionRecord | ReputationRecord

function signerOf(kind: Kind, r: AnyRecord): string {
  return kind === 'reputation' ? (r as ReputationRecord).publisher : (r as EntryRecord).author
}
function keyOf(kind: Kind, r: AnyRecord): string {
  return kind === 'reputation'
    ? `${(r as ReputationRecord).publisher}/${(r as ReputationRecord).subject}`
    : entryKey((r as EntryRecord).author, (r as EntryRecord).id)
}
function rank(r: AnyRecord): number {
  if ('version' in r) return r.version
  return (r as ReputationRecord).updatedAt
}
function authorOfKey(key: string): string {
  const slash = key.indexOf('/')
  return slash < 0 ? key : key.slice(0, slash)
}

/** Deepest nesting of a record (the update guard's bound on every value). */
const MAX_RECORD_DEPTH = 32

/**
 * Whether `value` nests at most `maxDepth` deep and holds at most `maxNodes`
 * values, walked with an explicit stack (a recursive walk is what overflowed).
 */
export function withinShape(value: unknown, maxDepth: number, maxNodes: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]]
  let nodes = 1
  while (stack.length > 0) {
    const [v, d] = stack.pop()!
    if (v === null || typeof v !== 'object') continue
    if (d >= maxDepth) return false
    const o = v as Record<string, unknown>
    for (const k in o) {
      if (++nodes > maxNodes) return false
      stack.push([o[k], d + 1])
    }
  }
  return true
}

const textDecoder = new TextDecoder()
function canonicalText(value: unknown): string {
  return textDecoder.decode(canonicalBytes(value))
}
/** What the signature covers: the record without its signature and (entries) its work stamp. */
function payload(r: AnyRecord): Record<string, unknown> {
  const { signature: _s, ...rest } = r
  if ('work' in rest) delete (rest as { work?: string }).work
  return rest
}

/** The registry: publish, retract, read verified entries. */
export class Registry {
  readonly #doc: Y.Doc
  readonly #identity: Identity
  readonly #limits: MemoryLimits
  readonly #counters: Counters
  readonly #maps: Record<Kind, Y.Map<unknown>>
  readonly #holders: Y.Map<number>
  readonly #holderIndex = new Map<string, Map<string, number>>()
  readonly #overfull = new Set<string>()
  readonly #verifier = new SignatureVerifier()
  /** Keys present in the entries map, per author (verified or not): what the quota at the guard counts. */
  readonly #keysByAuthor = new Map<string, Set<string>>()
  #pruneScheduled = false
  /** Best valid record per key, per kind. */
  readonly #valid: Record<Kind, Map<string, AnyRecord>> = { entries: new Map(), retractions: new Map(), reputation: new Map() }
  /**
   * Signatures already verified good, with the exact canonical payload they cover
   * (a forger can copy a valid signature onto other fields, so the cache must
   * match content, not just the signature).
   */
  readonly #verified = new Map<string, string>()
  /** Subscribers hear of view changes once per microtask turn, however many records arrive. */
  readonly #changes: ChangeNotifier
  #view: RegistryEntry[] | undefined
  #queue: Promise<void> = Promise.resolve()
  /** Hears of this profile's publishes and retractions (the layer's audit log). */
  audit: ((entry: AuditEntry) => void) | undefined

  constructor(doc: Y.Doc, identity: Identity, limits: MemoryLimits, counters = new Counters('registry')) {
    this.#doc = doc
    this.#identity = identity
    this.#limits = limits
    this.#counters = counters
    this.#changes = new ChangeNotifier({
      onError: (err) => {
        this.#counters.inc('listenerErrors')
        log.error('registry listener threw %e', err)
      }
    })
    this.#maps = { entries: doc.getMap('entries'), retractions: doc.getMap('retractions'), reputation: doc.getMap('reputation') }
    this.#holders = doc.getMap('holders')
    this.#maps.entries.observe((e) => this.#indexEntries(e.keysChanged))
    this.#indexEntries(this.#maps.entries.keys())
    for (const kind of Object.keys(this.#maps) as Kind[]) {
      this.#maps[kind].observe((e) => this.#enqueue(kind, [...e.keysChanged]))
      this.#enqueue(kind, [...this.#maps[kind].keys()])
    }
    this.#holders.observe((e) => {
      this.#indexHolders([...e.keysChanged])
      this.#changed()
    })
    this.#indexHolders([...this.#holders.keys()])
  }

  /** Keep `author → keys present in the entries map` in step with the map (the quota the update guard checks). */
  #indexEntries(keys: Iterable<string>): void {
    const map = this.#maps.entries
    for (const key of keys) {
      const author = authorOfKey(key)
      const set = this.#keysByAuthor.get(author)
      if (map.has(key)) {
        if (set == null) this.#keysByAuthor.set(author, new Set([key]))
        else set.add(key)
      } else if (set != null) {
        set.delete(key)
        if (set.size === 0) this.#keysByAuthor.delete(author)
      }
    }
  }

  /**
   * The update guard's registry part, called on every remote update after the
   * structural walk and before it is applied (issue 11 item 5): an update that
   * would give an author more entries than `maxEntriesPerAuthor` is refused
   * (a {@link RegistryQuotaExceededError}: counted, the sender struck), so
   * over-quota entries never enter the doc, are never stored and never re-sent.
   *
   * One case is admitted: a sync answer (`step2`) that alone stays within every
   * author's quota. Two honest peers may each hold a different quota's worth of
   * one author's entries (the author sent each a different set); refusing their
   * sync answers would cut honest peers apart. Those are applied and the excess
   * pruned at once, the same way on every peer (earliest `publishedAt` kept).
   *
   * Then every new entry must carry its publishing work (one hash each): one without
   * is refused with the whole update (a {@link RegistryWorkMissingError}) before Yjs
   * applies it.
   *
   * The error's `refusal` says whether the update proves its sender hostile: its own live
   * entries of one author over the quota (`over-quota-alone`), or an entry without work
   * (`missing-work`), which no honest peer holds; over the quota only with what this tab
   * holds is `over-quota` (an honest peer may relay it).
   */
  /**
   * The quota part of {@link admit}, key by key as a large update arrives (the sync
   * provider's scanner): refuses at the first entry that takes an author past the quota, so
   * the rest of a 7 MB over-quota step 2 is never decoded, hashed or walked (issue 11 item 5).
   */
  keyAdmitter(kind: 'step2' | 'update'): (root: string, key: string, live: boolean) => void {
    const seen = new Set<string>()
    const added = new Map<string, number>()
    const quota = this.#limits.maxEntriesPerAuthor
    return (root, key, live) => {
      // Deleted entries (ContentDeleted, a retraction) add nothing; `admit` counts the live
      // structs that continue them once the whole update is there.
      if (!live || root !== 'entries' || seen.has(key) || this.#maps.entries.has(key)) return
      seen.add(key)
      const author = authorOfKey(key)
      const n = (added.get(author) ?? 0) + 1
      added.set(author, n)
      const have = this.#keysByAuthor.get(author)?.size ?? 0
      if (n > quota || (kind === 'update' && have + n > quota)) {
        this.#counters.inc('overQuotaRefused')
        throw new RegistryQuotaExceededError(
          `the update adds over ${n - 1} entries by ${author.slice(0, 20)}…, who has ${have} here (limit ${quota} per author)`,
          { refusal: overQuotaRefusal(n, quota) }
        )
      }
    }
  }

  admit(shape: UpdateShape, kind: 'step2' | 'update' = 'update'): void {
    const keys = shape.keys.get('entries')
    if (keys == null && shape.continued.length === 0) return
    const fresh: string[] = []
    for (const key of keys ?? []) if (!this.#maps.entries.has(key)) fresh.push(key)
    // Counted: the entries the update makes live (a retracted entry's key travels deleted).
    const added = new Map<string, number>()
    for (const key of liveKeysIn(shape, this.#maps.entries, 'entries')) {
      if (this.#maps.entries.has(key)) continue
      const author = authorOfKey(key)
      added.set(author, (added.get(author) ?? 0) + 1)
    }
    const quota = this.#limits.maxEntriesPerAuthor
    for (const [author, n] of added) {
      const have = this.#keysByAuthor.get(author)?.size ?? 0
      if (n > quota || (kind === 'update' && have + n > quota)) {
        this.#counters.inc('overQuotaRefused')
        throw new RegistryQuotaExceededError(`the update adds ${n} entries by ${author.slice(0, 20)}…, who has ${have} here (limit ${quota} per author)`, {
          refusal: overQuotaRefusal(n, quota)
        })
      }
    }
    // The cost of publishing, checked here with one hash per new entry (issue 11 item 4):
    // 512 unstamped entries were applied (a 400 KB update, ~300 ms on the main thread,
    // re-encoded for every update listener) only to be pruned when verified.
    const bits = this.#limits.publishWorkBits
    const values = shape.values.get('entries')
    if (bits <= 0 || values == null) return
    for (const key of fresh) {
      const value = values.get(key)
      if (value !== undefined && !stamped(value, bits)) {
        this.#counters.inc('insufficientWorkRefused')
        throw new RegistryWorkMissingError(`the update adds the entry ${key.slice(0, 40)}… without ${bits} bits of publishing work`)
      }
    }
  }

  /** Resolves when every change seen so far has been verified into the view. */
  settled(): Promise<void> {
    return this.#queue
  }

  #enqueue(kind: Kind, keys: string[]): void {
    if (keys.length === 0) return
    this.#queue = this.#queue
      .then(() => this.#verifyKeys(kind, keys))
      .catch((err) => {
        this.#counters.inc('verifyErrors')
        log.error('verifying registry records failed %e', err)
      })
  }

  async #verifyKeys(kind: Kind, keys: string[]): Promise<void> {
    const map = this.#maps[kind]
    const heal: Array<[string, AnyRecord]> = []
    // Verify in parallel (WebCrypto's Ed25519 would sit idle between awaited calls), at most
    // VERIFY_CHUNK in flight, and in time slices: each check parses, canonicalizes and starts
    // a verify on the main thread, and 512 in one task froze the tab for ~0.7 s (issue 11).
    const raws = keys.map((key) => map.get(key))
    const pending: Array<Promise<AnyRecord | typeof INVALID | undefined> | undefined> = []
    const slicer = new TimeSlicer(SLICE_MS)
    for (const [j, key] of keys.entries()) {
      const raw = raws[j]
      pending.push(raw === undefined ? undefined : this.#checkOne(kind, key, raw))
      if ((j + 1) % VERIFY_CHUNK === 0) await Promise.all(pending.slice(j + 1 - VERIFY_CHUNK))
      await slicer.maybeYield()
    }
    const results = await Promise.all(pending)
    if (slicer.yields > 0) this.#counters.inc('verifyYields', slicer.yields)
    const prune: string[] = []
    const prunedRaw = new Map<string, unknown>()
    for (const [i, key] of keys.entries()) {
      const best = this.#valid[kind].get(key)
      const result = results[i]
      const record = result === INVALID ? undefined : result
      if (record != null && (best == null || rank(record) >= rank(best))) {
        this.#valid[kind].set(key, record)
      } else if (result === INVALID && best == null) {
        prune.push(key)
        prunedRaw.set(key, raws[i])
      } else if (best != null && !(kind === 'entries' && (await this.#retractedNow(key, best as EntryRecord)))) {
        // The map holds something worse than what we know is valid: put it back.
        heal.push([key, best])
      }
    }
    if (kind === 'entries') this.#pruneOverQuota(keys, prune, prunedRaw)
    if (prune.length > 0) {
      // Records that can never verify (bad signature, wrong key, bad shape) are removed
      // by every honest reader, so forgeries cannot pile up in the doc. Over-limit but
      // valid records stay: limits are per-peer settings, signatures are not.
      this.#counters.inc('pruned', prune.length)
      this.#doc.transact(() => {
        for (const key of prune) if (map.get(key) === prunedRaw.get(key)) map.delete(key)
      }, HEAL)
    }
    if (heal.length > 0) {
      this.#counters.inc('healed', heal.length)
      this.#doc.transact(() => {
        for (const [key, r] of heal) map.set(key, r)
      }, HEAL)
    }
    this.#changed()
  }

  /**
   * One record, on its own: whatever it does (a stack overflow, a verifier that
   * throws), it is INVALID alone and never takes the other records of its batch
   * with it (issue 11 item 1: one rejection dropped the whole batch).
   */
  async #checkOne(kind: Kind, key: string, raw: unknown): Promise<AnyRecord | typeof INVALID | undefined> {
    try {
      return await this.#check(kind, key, raw)
    } catch (err) {
      this.#counters.inc('unverifiableRecords')
      log('a %s record under %s could not be verified: %s', kind, key, (err as Error)?.message)
      return INVALID
    }
  }

  /** The verified record, INVALID if it can never verify, undefined if valid but over a local limit. */
  async #check(kind: Kind, key: string, raw: unknown): Promise<AnyRecord | typeof INVALID | undefined> {
    const parsed = v.safeParse(SCHEMAS[kind], raw)
    if (!parsed.success) {
      this.#counters.inc('invalidRecords')
      return INVALID
    }
    const r = parsed.output as AnyRecord
    if (keyOf(kind, r) !== key) {
      this.#counters.inc('forgedRecords')
      return INVALID
    }
    // Stored before the guard bounded every value (or arriving by a path without it): never recurse into it.
    if (!withinShape(r, MAX_RECORD_DEPTH, this.#limits.maxEntryBytes)) {
      this.#counters.inc('tooDeepRecords')
      return INVALID
    }
    // The cost of publishing, checked with one hash before the signature (issue 11 item 4).
    if (kind === 'entries' && !hasWork(r.signature, (r as EntryRecord).work, this.#limits.publishWorkBits)) {
      this.#counters.inc('insufficientWork')
      return INVALID
    }
    // Canonicalize once: the size check, the cache and the signature all use these bytes.
    const bytes = canonicalBytes(payload(r))
    if (kind !== 'reputation' && bytes.byteLength + r.signature.length + 48 > this.#limits.maxEntryBytes) {
      this.#counters.inc('oversizedRecords')
      return undefined
    }
    const canonical = textDecoder.decode(bytes)
    if (this.#verified.get(r.signature) === canonical) return r
    if (!(await this.#verifier.verifyBytes(signerOf(kind, r), bytes, r.signature))) {
      this.#counters.inc('forgedRecords')
      log('ignoring a %s record under %s with a bad signature', kind, key)
      return INVALID
    }
    this.#verified.set(r.signature, canonical)
    return r
  }

  /**
   * Authors of `keys` with more valid entries than the quota keep their earliest
   * `maxEntriesPerAuthor` (by publishedAt, then id: the same choice on every peer);
   * the rest are forgotten and deleted from the doc, so they are neither kept nor
   * re-sent (issue 11 item 5). Reaches only what the guard admitted: entries loaded
   * from storage written before it, and the excess of two honest sync answers.
   */
  #pruneOverQuota(keys: readonly string[], prune: string[], prunedRaw: Map<string, unknown>): void {
    const quota = this.#limits.maxEntriesPerAuthor
    const authors = new Set(keys.map(authorOfKey))
    let excess = 0
    for (const author of authors) {
      const present = this.#keysByAuthor.get(author)
      if (present == null || present.size <= quota) continue
      const live: EntryRecord[] = []
      for (const key of present) {
        const r = this.#valid.entries.get(key) as EntryRecord | undefined
        if (r != null && !this.#isRetracted(r)) live.push(r)
      }
      if (live.length <= quota) continue
      live.sort((a, b) => a.publishedAt - b.publishedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      for (const r of live.slice(quota)) {
        const key = entryKey(r.author, r.id)
        this.#valid.entries.delete(key)
        this.#verified.delete(r.signature)
        prune.push(key)
        prunedRaw.set(key, this.#maps.entries.get(key))
        excess++
      }
    }
    if (excess > 0) this.#counters.inc('overQuotaPruned', excess)
  }

  /** Before healing an entry, verify a retraction that may have arrived in the same update. */
  async #retractedNow(key: string, e: EntryRecord): Promise<boolean> {
    const raw = this.#maps.retractions.get(key)
    if (raw !== undefined) {
      const checked = await this.#checkOne('retractions', key, raw)
      const r = checked === INVALID ? undefined : checked
      const best = this.#valid.retractions.get(key)
      if (r != null && (best == null || rank(r) >= rank(best))) this.#valid.retractions.set(key, r)
    }
    return this.#isRetracted(e)
  }

  #remember(r: AnyRecord): void {
    this.#verified.set(r.signature, canonicalText(payload(r)))
  }

  #isRetracted(e: EntryRecord): boolean {
    const r = this.#valid.retractions.get(entryKey(e.author, e.id)) as RetractionRecord | undefined
    return r != null && r.version >= e.version
  }

  #changed(): void {
    this.#view = undefined
    this.#changes.changed()
  }

  /** Keep `entry key → (peer → time)` in step with the flat `holders` map (so views cost O(entries)). */
  #indexHolders(keys: string[]): void {
    for (const k of keys) {
      const bar = k.lastIndexOf('|')
      if (bar < 0) continue
      const entry = k.slice(0, bar)
      const peer = k.slice(bar + 1)
      const at = this.#holders.get(k)
      const slot = this.#holderIndex.get(entry) ?? new Map<string, number>()
      if (typeof at === 'number' && v.is(PeerIdSchema, peer)) slot.set(peer, at)
      else slot.delete(peer)
      if (slot.size > 0) this.#holderIndex.set(entry, slot)
      else this.#holderIndex.delete(entry)
      if (slot.size > this.#limits.maxHoldersPerEntry) this.#overfull.add(entry)
    }
    if (this.#overfull.size > 0 && !this.#pruneScheduled) {
      this.#pruneScheduled = true
      // Holder hints are unsigned, so anyone could add thousands: every honest peer
      // trims each entry to its newest `maxHoldersPerEntry` (the same choice everywhere).
      setTimeout(() => {
        this.#pruneScheduled = false
        const entries = [...this.#overfull]
        this.#overfull.clear()
        this.#doc.transact(() => {
          for (const entry of entries) {
            const slot = this.#holderIndex.get(entry)
            if (slot == null) continue
            const sorted = [...slot].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
            for (const [peer] of sorted.slice(this.#limits.maxHoldersPerEntry)) this.#holders.delete(`${entry}|${peer}`)
            this.#counters.inc('holdersPruned', Math.max(0, sorted.length - this.#limits.maxHoldersPerEntry))
          }
        }, HEAL)
      }, 0)
    }
  }

  #holdersOf(key: string): string[] {
    const slot = this.#holderIndex.get(key)
    if (slot == null) return []
    return [...slot]
      .sort((a, b) => b[1] - a[1])
      .slice(0, this.#limits.maxHoldersPerEntry)
      .map(([p]) => p)
  }

  #buildView(): RegistryEntry[] {
    const byAuthor = new Map<string, EntryRecord[]>()
    for (const r of this.#valid.entries.values()) {
      const e = r as EntryRecord
      if (this.#isRetracted(e)) continue
      const list = byAuthor.get(e.author) ?? []
      list.push(e)
      byAuthor.set(e.author, list)
    }
    const ratings = new Map<string, number[]>()
    const perPublisher = new Map<string, number>()
    for (const r of this.#valid.reputation.values()) {
      const rep = r as ReputationRecord
      if (rep.subject.startsWith(`${rep.publisher}/`)) continue // nobody rates their own agents
      const n = (perPublisher.get(rep.publisher) ?? 0) + 1
      perPublisher.set(rep.publisher, n)
      if (n > this.#limits.maxReputationsPerPublisher) continue
      const list = ratings.get(rep.subject) ?? []
      list.push(rep.score)
      ratings.set(rep.subject, list)
    }
    const out: RegistryEntry[] = []
    let overQuota = 0
    for (const list of byAuthor.values()) {
      // Deterministic quota: an author's earliest entries count, the rest are ignored.
      list.sort((a, b) => a.publishedAt - b.publishedAt || (a.id < b.id ? -1 : 1))
      overQuota += Math.max(0, list.length - this.#limits.maxEntriesPerAuthor)
      for (const e of list.slice(0, this.#limits.maxEntriesPerAuthor)) {
        const key = entryKey(e.author, e.id)
        const scores = ratings.get(key) ?? []
        out.push({
          key,
          id: e.id,
          author: e.author,
          manifest: e.manifest,
          moduleSha256: e.moduleSha256,
          version: e.version,
          publishedAt: e.publishedAt,
          signature: e.signature,
          work: e.work,
          holders: this.#holdersOf(key),
          reputation: scores.length > 0 ? scores.reduce((a, b) => a + b, 0) / scores.length : undefined,
          ratings: scores.length
        })
      }
    }
    this.#counters.set('overQuota', overQuota)
    this.#counters.set('entries', out.length)
    return out.sort((a, b) => (a.key < b.key ? -1 : 1))
  }

  /** Verified, unretracted entries matching `filter`. */
  list(filter: RegistryFilter = {}): RegistryEntry[] {
    this.#view ??= this.#buildView()
    const text = filter.text?.toLowerCase()
    return this.#view.filter((e) => {
      if (filter.author != null && e.author !== filter.author) return false
      if (filter.capability != null) {
        const caps = e.manifest.capabilities
        if (!Array.isArray(caps) || !caps.includes(filter.capability)) return false
      }
      if (filter.minReputation != null && (e.reputation ?? -1) < filter.minReputation) return false
      if (text != null) {
        const hay = [e.id, e.manifest.name, e.manifest.description]
          .filter((x) => typeof x === 'string')
          .join(' ')
          .toLowerCase()
        if (!hay.includes(text)) return false
      }
      return true
    })
  }

  /** An entry by `author/id` key, or by bare id (this profile's own first, then any author). */
  get(idOrKey: string): RegistryEntry | undefined {
    const all = this.list()
    return all.find((e) => e.key === idOrKey) ?? all.find((e) => e.id === idOrKey && e.author === this.#identity.publicKey) ?? all.find((e) => e.id === idOrKey)
  }

  /** Sign and store an entry by this profile (a new version if it exists). */
  async publish(input: PublishInput): Promise<RegistryEntry> {
    const parsed = v.safeParse(PublishInputSchema, input)
    if (!parsed.success) throw new InvalidEntryError(`invalid registry entry: ${v.summarize(parsed.issues)}`)
    const { id, manifest, moduleSha256, holders } = parsed.output
    const author = this.#identity.publicKey
    const key = entryKey(author, id)
    await this.settled()
    const prev = this.#valid.entries.get(key) as EntryRecord | undefined
    const retraction = this.#valid.retractions.get(key) as RetractionRecord | undefined
    const mine = [...this.#valid.entries.values()].filter((r) => (r as EntryRecord).author === author && !this.#isRetracted(r as EntryRecord))
    if (prev == null || this.#isRetracted(prev)) {
      if (mine.length >= this.#limits.maxEntriesPerAuthor)
        throw new RegistryQuotaError(`this author already has ${mine.length} agents (limit ${this.#limits.maxEntriesPerAuthor}); retract one first`)
    }
    const version = Math.max(prev?.version ?? 0, retraction?.version ?? 0) + 1
    const body = { kind: 'zerostate/registry-entry/1' as const, id, author, manifest, moduleSha256, version, publishedAt: Date.now() }
    const size = canonicalBytes(body).byteLength + 160
    if (size > this.#limits.maxEntryBytes) throw new EntryTooLargeError(`the entry is ${size} bytes; the limit is ${this.#limits.maxEntryBytes}`)
    // Peers' guards refuse a deeper record as proof of a hostile sender (and block it): never publish one.
    if (!withinShape(body, MAX_RECORD_DEPTH, this.#limits.maxEntryBytes))
      throw new InvalidEntryError(`the manifest nests deeper than ${MAX_RECORD_DEPTH - 2} levels; flatten it`)
    const signature = await signJson(this.#identity, body)
    const record: EntryRecord = { ...body, signature, work: await mintWork(signature, this.#limits.publishWorkBits) }
    this.#remember(record)
    this.#valid.entries.set(key, record)
    this.#doc.transact(() => {
      this.#maps.entries.set(key, record)
      for (const h of holders) this.#holders.set(`${key}|${h}`, Date.now())
    })
    await this.settled()
    this.#counters.inc('published')
    this.audit?.({ kind: 'agent.published', subject: id, why: `version ${version}` })
    const entry = this.get(key)
    if (entry == null) throw new InvalidEntryError('the entry was stored but is not visible (quota?)')
    return entry
  }

  /** Retract this profile's entry `id`: it disappears for every reader. */
  async retract(id: string): Promise<void> {
    const author = this.#identity.publicKey
    const key = entryKey(author, id)
    await this.settled()
    const prev = this.#valid.entries.get(key) as EntryRecord | undefined
    if (prev == null || this.#isRetracted(prev)) throw new EntryNotFoundError(`you have no agent "${id}" to retract`)
    const body = { kind: 'zerostate/registry-retraction/1' as const, id, author, version: prev.version, retractedAt: Date.now() }
    const record: RetractionRecord = { ...body, signature: await signJson(this.#identity, body) }
    this.#remember(record)
    this.#valid.retractions.set(key, record)
    this.#doc.transact(() => {
      this.#maps.retractions.set(key, record)
      // The signed retraction stays; the entry's bytes can go (readers never heal a retracted entry).
      this.#maps.entries.delete(key)
      for (const k of [...this.#holders.keys()]) if (k.startsWith(`${key}|`)) this.#holders.delete(k)
    })
    await this.settled()
    this.audit?.({ kind: 'agent.retracted', subject: id, why: `version ${prev.version}` })
  }

  /** Record that `peerId` holds the module bytes of entry `idOrKey`. */
  addHolder(idOrKey: string, peerId: string): void {
    const entry = this.get(idOrKey)
    if (entry == null) throw new EntryNotFoundError(`no agent "${idOrKey}" in the registry`)
    if (!v.is(PeerIdSchema, peerId)) throw new InvalidEntryError(`"${peerId}" is not a peer id`)
    this.#holders.set(`${entry.key}|${peerId}`, Date.now())
  }

  /** Sign and publish this profile's reputation summary of an entry. */
  async publishReputation(input: ReputationInput): Promise<void> {
    const parsed = v.safeParse(ReputationInputSchema, input)
    if (!parsed.success) throw new InvalidEntryError(`invalid reputation: ${v.summarize(parsed.issues)}`)
    const publisher = this.#identity.publicKey
    const subject = this.get(parsed.output.subject)?.key ?? parsed.output.subject
    const mine = [...this.#valid.reputation.values()].filter((r) => (r as ReputationRecord).publisher === publisher)
    const key = `${publisher}/${subject}`
    if (!this.#valid.reputation.has(key) && mine.length >= this.#limits.maxReputationsPerPublisher) {
      throw new RegistryQuotaError(`you have published ${mine.length} reputation records (limit ${this.#limits.maxReputationsPerPublisher})`)
    }
    const body = {
      kind: 'zerostate/reputation/1' as const,
      publisher,
      subject,
      score: parsed.output.score,
      successes: parsed.output.successes,
      failures: parsed.output.failures,
      updatedAt: Date.now()
    }
    const record: ReputationRecord = { ...body, signature: await signJson(this.#identity, body) }
    this.#remember(record)
    this.#valid.reputation.set(key, record)
    this.#maps.reputation.set(key, record)
    await this.settled()
  }

  /** Called after the view may have changed; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    return this.#changes.subscribe(listener)
  }
}
