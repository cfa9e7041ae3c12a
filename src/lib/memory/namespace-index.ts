/**
 * The verified view of the `owned` map of the `memory-index` doc: signed
 * namespace records keyed `owner/name`. As in the registry, a record counts only
 * if its signature verifies against the owner in its key; readers keep the best
 * (highest version) valid record per key and write it back when the map holds
 * something worse, and remove records that can never verify. Each owner's first
 * `maxNamespacesPerOwner` namespaces (by creation time) count; the rest are
 * ignored by every reader alike. Nothing here opens a namespace's doc.
 */
import type * as Y from 'yjs'
import * as v from 'valibot'
import { canonicalBytes, signJson, type Counters, type Identity } from '../core/index.ts'
import { logger } from '../core/index.ts'
import { SignatureVerifier } from './signature-verifier.ts'
import type { MemoryLimits } from './constants.ts'
import { NamespaceRecordSchema, namespaceKey, type NamespaceRecord } from './namespace-schema.ts'
import { TimeSlicer } from './time-slicer.ts'
import { NamespaceQuotaExceededError, overQuotaRefusal } from './errors.ts'
import { liveKeysIn, type UpdateShape } from './update-guard.ts'

const log = logger('memory:namespaces')
const HEAL = Symbol('namespace-heal')
const INVALID = 'invalid' as const
/** Main-thread time one slice of record checks may take before the page gets a turn, in ms. */
const SLICE_MS = 20
const textDecoder = new TextDecoder()

/** Root of the index doc holding signed namespace records. */
export const OWNED_ROOT = 'owned'

/** The owner part of an index key (`owner/name`; names hold no `/`). */
function ownerOfKey(key: string): string {
  const slash = key.lastIndexOf('/')
  return slash < 0 ? key : key.slice(0, slash)
}

/** Signed namespace records, verified. */
export class NamespaceIndex {
  readonly #doc: Y.Doc
  readonly #map: Y.Map<unknown>
  readonly #limits: MemoryLimits
  readonly #counters: Counters
  readonly #onChange: (names: Set<string>) => void
  readonly #verifier = new SignatureVerifier()
  readonly #valid = new Map<string, NamespaceRecord>()
  readonly #verified = new Map<string, string>()
  #view: Map<string, NamespaceRecord[]> | undefined
  #queue: Promise<void> = Promise.resolve()

  constructor(doc: Y.Doc, limits: MemoryLimits, counters: Counters, onChange: (names: Set<string>) => void) {
    this.#doc = doc
    this.#map = doc.getMap(OWNED_ROOT)
    this.#limits = limits
    this.#counters = counters
    this.#onChange = onChange
    this.#map.observe((e) => this.#enqueue([...e.keysChanged]))
    this.#enqueue([...this.#map.keys()])
  }

  /**
   * The update guard's part for the index (issue 11 item 3), called on every remote update after
   * the structural walk and before it is applied: an update that adds more than
   * `maxNamespacesPerOwner` records of one owner (or, as an incremental update, more than the
   * owner has left) is refused whole with a {@link NamespaceQuotaExceededError} (counted, the
   * sender struck). Readers ignored the excess anyway; refused here, a namespace bomb costs a
   * walk of its bytes instead of a parse, a canonical form and a signature check per record.
   * A sync answer (`step2`) within the quota by itself is admitted, as in the registry: two
   * honest peers may hold different records of one owner (the excess is pruned once verified).
   * An update whose own live records of one owner exceed the quota is refused as
   * `over-quota-alone`, which proves its sender hostile; over it only with what this tab
   * holds, as `over-quota`.
   */
  admit(shape: UpdateShape, kind: 'step2' | 'update' = 'update'): void {
    // Counted: the records the update makes live (a pruned record's key travels deleted).
    const keys = liveKeysIn(shape, this.#map, OWNED_ROOT)
    const added = new Map<string, number>()
    for (const key of keys) {
      if (this.#map.has(key)) continue
      const owner = ownerOfKey(key)
      added.set(owner, (added.get(owner) ?? 0) + 1)
    }
    const quota = this.#limits.maxNamespacesPerOwner
    let have: Map<string, number> | undefined
    for (const [owner, n] of added) {
      if (n <= quota && kind === 'step2') continue
      have ??= this.#countByOwner()
      const held = have.get(owner) ?? 0
      if (n > quota || held + n > quota) {
        this.#counters.inc('namespaceOverQuotaRefused')
        throw new NamespaceQuotaExceededError(`the update adds ${n} namespaces of ${owner.slice(0, 20)}…, who has ${held} here (limit ${quota} per owner)`, {
          refusal: overQuotaRefusal(n, quota)
        })
      }
    }
  }

  /** The quota part of {@link admit}, key by key as a large update arrives (the sync provider's scanner). */
  keyAdmitter(kind: 'step2' | 'update'): (root: string, key: string, live: boolean) => void {
    const seen = new Set<string>()
    const added = new Map<string, number>()
    const quota = this.#limits.maxNamespacesPerOwner
    let have: Map<string, number> | undefined
    return (root, key, live) => {
      if (!live || root !== OWNED_ROOT || seen.has(key) || this.#map.has(key)) return
      seen.add(key)
      const owner = ownerOfKey(key)
      const n = (added.get(owner) ?? 0) + 1
      added.set(owner, n)
      if (n <= quota && kind === 'step2') return
      have ??= this.#countByOwner()
      const held = have.get(owner) ?? 0
      if (n > quota || held + n > quota) {
        this.#counters.inc('namespaceOverQuotaRefused')
        throw new NamespaceQuotaExceededError(
          `the update adds over ${n - 1} namespaces of ${owner.slice(0, 20)}…, who has ${held} here (limit ${quota} per owner)`,
          { refusal: overQuotaRefusal(n, quota) }
        )
      }
    }
  }

  /** Records in the map per owner (verified or not). */
  #countByOwner(): Map<string, number> {
    const out = new Map<string, number>()
    for (const key of this.#map.keys()) {
      const owner = ownerOfKey(key)
      out.set(owner, (out.get(owner) ?? 0) + 1)
    }
    return out
  }

  /** Resolves once every record seen so far is verified. */
  settled(): Promise<void> {
    return this.#queue
  }

  #enqueue(keys: string[]): void {
    if (keys.length === 0) return
    this.#queue = this.#queue
      .then(() => this.#verifyKeys(keys))
      .catch((err) => {
        this.#counters.inc('verifyErrors')
        log.error('verifying namespace records failed %e', err)
      })
  }

  async #verifyKeys(keys: string[]): Promise<void> {
    const raws = keys.map((k) => this.#map.get(k))
    // In time slices: each check parses, canonicalizes and starts a signature verify on the
    // main thread, and 600 records in one task (a namespace bomb) froze the tab for ~0.45 s.
    const pending: Array<Promise<NamespaceRecord | typeof INVALID> | undefined> = []
    const slicer = new TimeSlicer(SLICE_MS)
    for (const [i, k] of keys.entries()) {
      pending.push(raws[i] === undefined ? undefined : this.#check(k, raws[i]))
      await slicer.maybeYield()
    }
    const results = await Promise.all(pending)
    if (slicer.yields > 0) this.#counters.inc('verifyYields', slicer.yields)
    const prune: string[] = []
    const heal: NamespaceRecord[] = []
    const names = new Set<string>()
    for (const [i, key] of keys.entries()) {
      const best = this.#valid.get(key)
      const r = results[i]
      if (r != null && r !== INVALID && (best == null || r.version >= best.version)) {
        this.#valid.set(key, r)
        names.add(r.name)
      } else if (best != null) heal.push(best)
      else if (r === INVALID) prune.push(key)
    }
    const excess = this.#overQuota(keys)
    if (prune.length > 0 || heal.length > 0 || excess.length > 0) {
      this.#counters.inc('namespaceRecordsPruned', prune.length)
      this.#counters.inc('namespaceRecordsHealed', heal.length)
      if (excess.length > 0) this.#counters.inc('namespacesOverQuotaPruned', excess.length)
      this.#doc.transact(() => {
        for (const [i, key] of keys.entries()) if (prune.includes(key) && this.#map.get(key) === raws[i]) this.#map.delete(key)
        for (const r of heal) this.#map.set(namespaceKey(r.owner, r.name), r)
        for (const key of excess) this.#map.delete(key)
      }, HEAL)
    }
    if (names.size > 0) {
      this.#view = undefined
      this.#onChange(names)
    }
  }

  /**
   * Owners of `keys` with more valid records than the quota keep their first
   * `maxNamespacesPerOwner` (by creation time, then name: the records every reader counts);
   * the rest are forgotten and returned to be deleted from the doc, so an honest peer never
   * holds, nor sends, more than the quota of one owner (issue 11: an update that does proves
   * its sender hostile). Reaches only what the guard admitted: two partitions' sync answers.
   */
  #overQuota(keys: readonly string[]): string[] {
    const quota = this.#limits.maxNamespacesPerOwner
    const owners = new Set(keys.map(ownerOfKey))
    const out: string[] = []
    for (const owner of owners) {
      const mine = [...this.#valid.values()].filter((r) => r.owner === owner)
      if (mine.length <= quota) continue
      mine.sort((a, b) => a.createdAt - b.createdAt || (a.name < b.name ? -1 : 1))
      for (const r of mine.slice(quota)) {
        const key = namespaceKey(r.owner, r.name)
        this.#valid.delete(key)
        this.#verified.delete(r.signature)
        out.push(key)
      }
    }
    if (out.length > 0) this.#view = undefined
    return out
  }

  async #check(key: string, raw: unknown): Promise<NamespaceRecord | typeof INVALID> {
    const parsed = v.safeParse(NamespaceRecordSchema, raw)
    if (!parsed.success || namespaceKey(parsed.output.owner, parsed.output.name) !== key) {
      this.#counters.inc('invalidNamespaceRecords')
      return INVALID
    }
    const r = parsed.output
    if ((r.mode === 'encrypted') !== (r.salt != null && r.check != null && r.iterations != null)) {
      this.#counters.inc('invalidNamespaceRecords')
      return INVALID
    }
    const { signature, ...payload } = r
    const bytes = canonicalBytes(payload)
    const canonical = textDecoder.decode(bytes)
    if (this.#verified.get(signature) === canonical) return r
    if (!(await this.#verifier.verifyBytes(r.owner, bytes, signature))) {
      this.#counters.inc('forgedNamespaceRecords')
      return INVALID
    }
    this.#verified.set(signature, canonical)
    return r
  }

  /** name → records within their owner's quota, earliest first (ties: smaller owner key). */
  #build(): Map<string, NamespaceRecord[]> {
    const byOwner = new Map<string, NamespaceRecord[]>()
    for (const r of this.#valid.values()) byOwner.set(r.owner, [...(byOwner.get(r.owner) ?? []), r])
    const out = new Map<string, NamespaceRecord[]>()
    let over = 0
    for (const list of byOwner.values()) {
      list.sort((a, b) => a.createdAt - b.createdAt || (a.name < b.name ? -1 : 1))
      over += Math.max(0, list.length - this.#limits.maxNamespacesPerOwner)
      for (const r of list.slice(0, this.#limits.maxNamespacesPerOwner)) out.set(r.name, [...(out.get(r.name) ?? []), r])
    }
    for (const list of out.values()) list.sort((a, b) => a.createdAt - b.createdAt || (a.owner < b.owner ? -1 : 1))
    this.#counters.set('namespacesOverQuota', over)
    return out
  }

  /** Names with at least one counted record. */
  names(): string[] {
    this.#view ??= this.#build()
    return [...this.#view.keys()]
  }

  /** Counted records named `name`, earliest first. */
  byName(name: string): NamespaceRecord[] {
    this.#view ??= this.#build()
    return this.#view.get(name) ?? []
  }

  /** The counted record of `owner/name`. */
  get(owner: string, name: string): NamespaceRecord | undefined {
    return this.byName(name).find((r) => r.owner === owner)
  }

  /** How many namespaces `owner` has (counted or not). */
  countOf(owner: string): number {
    let n = 0
    for (const r of this.#valid.values()) if (r.owner === owner) n++
    return n
  }

  /** Sign `payload` as `identity` and store it (the owner's own record). */
  async put(identity: Identity, payload: Omit<NamespaceRecord, 'signature'>): Promise<NamespaceRecord> {
    const record = { ...payload, signature: await signJson(identity, payload) } as NamespaceRecord
    const key = namespaceKey(record.owner, record.name)
    this.#verified.set(record.signature, textDecoder.decode(canonicalBytes(payload)))
    this.#valid.set(key, record)
    this.#view = undefined
    this.#map.set(key, record)
    await this.settled()
    return record
  }
}
