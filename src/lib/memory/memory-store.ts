/**
 * Shared key/value memory in namespaces. Modes:
 *  - `shared`: synced with peers; owned by its creator, who signs the list of
 *    writers (`'*'` = anyone); every value is a record signed by its writer;
 *  - `encrypted`: the same, with key names as HMAC slots and values sealed with
 *    AES-GCM under a key shared out of band (see namespace-crypto.ts);
 *  - `private`: this profile only (plain JSON in `memory/<name>`, never synced).
 *
 * Shared and encrypted namespaces are signed records in the synced
 * `memory-index` doc (namespace-index.ts); their values live in one doc each,
 * `ns/<owner>/<name>`, map `kv`, keyed `writer/slot`, so nobody can overwrite a
 * writer's record. A key's value is the newest record (time, then writer key) of
 * a writer the owner currently lists; records of others are ignored on read and
 * counted (`memory.kv.writesRefused`), whatever order merges happen in.
 *
 * Docs are opened lazily: only namespaces this profile created, wrote or
 * unlocked (pinned in the private `local` doc) open at start; others open when
 * read. A peer listing a namespace in the index never makes this tab open it.
 */
import type { AuditEntry } from './audit-log.ts'
import type * as Y from 'yjs'
import * as v from 'valibot'
import { Counters, canonicalBytes, signJson, type Identity } from '../core/index.ts'
import { TypedEventEmitter, listen, logger } from '../core/index.ts'
import { InvalidValueError, MissingKeyError, NamespaceError, NamespaceQuotaError, NotOwnerError, NotWriterError } from './errors.ts'
import { MEMORY_DOC_PREFIX, NAMESPACE_DOC_PREFIX, NAMESPACE_RE, type MemoryLimits } from './constants.ts'
import { deriveNamespaceKeys, newSalt, openEntry, sealEntry, slotOf, unlockNamespace, type NamespaceKeys } from './namespace-crypto.ts'
import { NamespaceIndex } from './namespace-index.ts'
import type { UpdateShape } from './update-guard.ts'
import { ANYONE, MemoryEntrySchema, WritersSchema, namespaceKey, type MemoryEntry, type NamespaceRecord } from './namespace-schema.ts'
import { SignatureVerifier } from './signature-verifier.ts'

const log = logger('memory:kv')
const HEAL = Symbol('memory-heal')
const textDecoder = new TextDecoder()

/** How a namespace is shared. */
export const NamespaceMode = { Shared: 'shared', Private: 'private', Encrypted: 'encrypted' } as const
/** `'shared' | 'private' | 'encrypted'` */
export type NamespaceMode = (typeof NamespaceMode)[keyof typeof NamespaceMode]

/** A namespace as `namespaces()` lists it. */
export interface NamespaceInfo {
  name: string
  mode: NamespaceMode
  /** Encrypted and this profile has no key: values cannot be read. */
  locked: boolean
  /** The owner's profile key (`ed25519:…`); this profile's own for private namespaces. */
  owner: string
  /** Who besides the owner may write (`'*'` = anyone). */
  writers: string[]
  /** Whether this profile may write to it. */
  canWrite: boolean
}

/** A change in a namespace (keys whose value changed, locally or remotely; none when only its settings changed). */
export interface MemoryChange {
  namespace: string
  keys: string[]
}

/** What the store needs from the layer: docs by name, and their save barrier. */
export interface DocHost {
  /** Open (or return the already open) doc; `sync` = replicate to peers. */
  open(name: string, opts: { sync: boolean }): Y.Doc
  /** Resolves once the doc's changes so far are saved locally. */
  saved(name: string): Promise<void>
}

/** Options of {@link MemoryStore.createNamespace}. */
export interface CreateNamespaceOptions {
  mode?: NamespaceMode
  /** An encrypted namespace's key (text: base64url of 32 bytes, or a passphrase). */
  key?: string
  /** Who besides the owner may write a new shared or encrypted namespace. Default: nobody (`['*']` = anyone). */
  writers?: string[]
}

interface OpenNs {
  readonly id: string
  readonly name: string
  readonly owner: string
  readonly docName: string
  readonly kv: Y.Map<unknown>
  /** Signature-verified records by map key (authorization is decided on read). */
  readonly valid: Map<string, MemoryEntry>
  /** Encrypted: decrypted records by signature. */
  readonly plain: Map<string, { name: string; value: unknown } | null>
}

/** Doc name of an owned namespace. */
export function namespaceDoc(owner: string, name: string): string {
  return `${NAMESPACE_DOC_PREFIX}${owner.slice(owner.indexOf(':') + 1)}/${name}`
}

function authorized(r: NamespaceRecord, writer: string): boolean {
  return writer === r.owner || r.writers.includes(ANYONE) || r.writers.includes(writer)
}

function newer(a: MemoryEntry, b: MemoryEntry | undefined): boolean {
  return b == null || a.t > b.t || (a.t === b.t && a.writer > b.writer)
}

/** The `memory` part of the layer. */
export class MemoryStore {
  readonly #host: DocHost
  readonly #identity: Identity
  readonly #index: NamespaceIndex
  readonly #private: Y.Map<unknown>
  readonly #savedKeys: Y.Map<unknown>
  readonly #pins: Y.Map<unknown>
  readonly #limits: MemoryLimits
  readonly #counters: Counters
  readonly #verifier = new SignatureVerifier()
  readonly #verified = new Map<string, string>()
  readonly #refused = new Set<string>()
  readonly #keys = new Map<string, NamespaceKeys>()
  readonly #open = new Map<string, OpenNs>()
  readonly #openPrivate = new Set<string>()
  readonly #events = new TypedEventEmitter<{ change: CustomEvent<MemoryChange> }>()
  #queue: Promise<void> = Promise.resolve()

  /** Hears of this profile's grants and revokes (the layer's audit log). */
  audit: ((entry: AuditEntry) => void) | undefined

  constructor(host: DocHost, indexDoc: Y.Doc, localDoc: Y.Doc, identity: Identity, limits: MemoryLimits, counters = new Counters('memory')) {
    this.#host = host
    this.#identity = identity
    this.#limits = limits
    this.#counters = counters
    this.#private = localDoc.getMap('private')
    this.#savedKeys = localDoc.getMap('namespaceKeys')
    this.#pins = localDoc.getMap('pins')
    this.#index = new NamespaceIndex(indexDoc, limits, counters, (names) => this.#indexChanged(names))
  }

  /** Verify the index and open the namespaces this profile uses (pinned); import saved keys. */
  async init(): Promise<void> {
    await this.#index.settled()
    for (const name of this.#private.keys()) this.#privateDoc(name)
    for (const [name, owner] of this.#pins.entries()) {
      const r = typeof owner === 'string' ? this.#index.get(owner, name) : undefined
      if (r != null) this.#ensureOpen(r)
    }
    this.#unlockSaved()
    await this.settled()
  }

  #enqueue(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((err) => {
      this.#counters.inc('verifyErrors')
      log.error('memory verification failed %e', err)
    })
  }

  /** The update guard's part for the namespace index: refuses an update over an owner's namespace quota (see NamespaceIndex.admit). */
  admitIndexUpdate(shape: UpdateShape, kind: 'step2' | 'update'): void {
    this.#index.admit(shape, kind)
  }

  /** The namespace quota, key by key as a large update arrives (see NamespaceIndex.keyAdmitter). */
  indexKeyAdmitter(kind: 'step2' | 'update'): (root: string, key: string, live: boolean) => void {
    return this.#index.keyAdmitter(kind)
  }

  /** Resolves once pending verifications and decryptions are done. */
  async settled(): Promise<void> {
    let current: Promise<void>
    do {
      current = this.#queue
      await current
      await this.#index.settled()
    } while (current !== this.#queue)
  }

  #indexChanged(names: Set<string>): void {
    this.#unlockSaved()
    for (const name of names) this.#emit({ namespace: name, keys: [] })
  }

  /** Derive keys saved by this profile for namespaces whose record is now known. */
  #unlockSaved(): void {
    for (const [id, secret] of this.#savedKeys.entries()) {
      if (this.#keys.has(id) || typeof secret !== 'string') continue
      const slash = id.lastIndexOf('/')
      const r = this.#index.get(id.slice(0, slash), id.slice(slash + 1))
      if (r?.salt == null || r.iterations == null || r.check == null) continue
      const { salt, iterations, check } = r
      this.#enqueue(async () => {
        if (this.#keys.has(id)) return
        try {
          this.#keys.set(id, await unlockNamespace(secret, salt, iterations, check))
          const ns = this.#open.get(namespaceDoc(r.owner, r.name))
          if (ns != null) await this.#decrypt(ns, [...ns.valid.values()])
        } catch {
          this.#counters.inc('badSavedKeys')
        }
      })
    }
  }

  /** The record `name` refers to here: the pinned owner's, else the earliest. */
  #resolve(name: string): NamespaceRecord | undefined {
    const owner = this.#pins.get(name)
    const records = this.#index.byName(name)
    return records.find((r) => r.owner === owner) ?? records[0]
  }

  #pin(r: NamespaceRecord): void {
    if (this.#pins.get(r.name) !== r.owner) this.#pins.set(r.name, r.owner)
  }

  #privateDoc(name: string): Y.Doc {
    const doc = this.#host.open(MEMORY_DOC_PREFIX + name, { sync: false })
    if (!this.#openPrivate.has(name)) {
      this.#openPrivate.add(name)
      doc.getMap<unknown>('kv').observe((e) => this.#emit({ namespace: name, keys: [...e.keysChanged] }))
    }
    return doc
  }

  #ensureOpen(r: NamespaceRecord): OpenNs {
    const docName = namespaceDoc(r.owner, r.name)
    const existing = this.#open.get(docName)
    if (existing != null) return existing
    const kv = this.#host.open(docName, { sync: true }).getMap<unknown>('kv')
    const ns: OpenNs = { id: namespaceKey(r.owner, r.name), name: r.name, owner: r.owner, docName, kv, valid: new Map(), plain: new Map() }
    this.#open.set(docName, ns)
    kv.observe((e) => {
      const keys = [...e.keysChanged]
      this.#enqueue(() => this.#verifyEntries(ns, keys))
    })
    const keys = [...kv.keys()]
    if (keys.length > 0) this.#enqueue(() => this.#verifyEntries(ns, keys))
    return ns
  }

  async #check(ns: OpenNs, mapKey: string, raw: unknown): Promise<MemoryEntry | undefined> {
    const parsed = v.safeParse(MemoryEntrySchema, raw)
    if (!parsed.success) return undefined
    const e = parsed.output
    if (e.ns !== ns.id || mapKey !== `${e.writer}/${e.key}`) return undefined
    if (e.value != null && e.value.length > this.#limits.maxValueBytes * 2) return undefined
    const { signature, ...payload } = e
    const bytes = canonicalBytes(payload)
    const canonical = textDecoder.decode(bytes)
    if (this.#verified.get(signature) === canonical) return e
    if (!(await this.#verifier.verifyBytes(e.writer, bytes, signature))) return undefined
    this.#verified.set(signature, canonical)
    return e
  }

  async #verifyEntries(ns: OpenNs, mapKeys: string[]): Promise<void> {
    const raws = mapKeys.map((k) => ns.kv.get(k))
    const checked = await Promise.all(mapKeys.map((k, i) => (raws[i] === undefined ? undefined : this.#check(ns, k, raws[i]))))
    const heal: Array<[string, MemoryEntry | undefined, unknown]> = []
    const fresh: MemoryEntry[] = []
    const record = this.#index.get(ns.owner, ns.name)
    for (const [i, mapKey] of mapKeys.entries()) {
      const best = ns.valid.get(mapKey)
      const e = checked[i]
      if (e != null && newer(e, best)) {
        ns.valid.set(mapKey, e)
        fresh.push(e)
        if (record != null && !authorized(record, e.writer) && !this.#refused.has(e.signature)) {
          this.#refused.add(e.signature)
          this.#counters.inc('writesRefused')
          log('ignoring a write to %s by %s, who is not a writer', ns.name, e.writer)
        }
      } else if (e == null && raws[i] !== undefined) {
        // Forged, replayed from another namespace, or malformed: every honest reader removes it.
        this.#counters.inc('forgedEntries')
        heal.push([mapKey, best, raws[i]])
      } else if (best != null && e !== best && (e == null || newer(best, e))) heal.push([mapKey, best, raws[i]])
    }
    if (heal.length > 0) {
      ns.kv.doc?.transact(() => {
        for (const [mapKey, best, raw] of heal) {
          if (ns.kv.get(mapKey) !== raw) continue
          if (best != null) ns.kv.set(mapKey, best)
          else ns.kv.delete(mapKey)
        }
      }, HEAL)
    }
    if (this.#keys.has(ns.id)) await this.#decrypt(ns, fresh)
    const names = record?.mode === 'encrypted' ? fresh.map((e) => ns.plain.get(e.signature)?.name).filter((n) => n != null) : fresh.map((e) => e.key)
    if (fresh.length > 0) this.#emit({ namespace: ns.name, keys: [...new Set(names)] })
  }

  async #decrypt(ns: OpenNs, entries: MemoryEntry[]): Promise<void> {
    const keys = this.#keys.get(ns.id)
    if (keys == null) return
    let changed = false
    for (const e of entries) {
      if (ns.plain.has(e.signature)) continue
      if (e.value == null) {
        ns.plain.set(e.signature, null)
        continue
      }
      try {
        const { name, json } = await openEntry(keys, e.value)
        if ((await slotOf(keys, name)) !== e.key) throw new Error('the sealed name does not match its slot')
        ns.plain.set(e.signature, { name, value: JSON.parse(json) })
        changed = true
      } catch (err) {
        ns.plain.set(e.signature, null)
        this.#counters.inc('undecryptable')
        log('cannot decrypt a value in %s: %s', ns.name, (err as Error)?.message)
      }
    }
    if (changed) this.#emit({ namespace: ns.name, keys: [] })
  }

  /** The current records per slot: the newest by an authorized writer. */
  #view(ns: OpenNs, record: NamespaceRecord): Map<string, MemoryEntry> {
    const out = new Map<string, MemoryEntry>()
    for (const e of ns.valid.values()) {
      if (!authorized(record, e.writer) || !newer(e, out.get(e.key))) continue
      // Encrypted: a value still being decrypted (or that never will be) does not hide the one before it.
      if (record.mode === 'encrypted' && e.value != null && ns.plain.get(e.signature) == null) continue
      out.set(e.key, e)
    }
    return out
  }

  #emit(change: MemoryChange): void {
    this.#events.safeDispatchEvent('change', { detail: change })
  }

  #checkName(ns: string): void {
    if (typeof ns !== 'string' || !NAMESPACE_RE.test(ns))
      throw new NamespaceError(`"${ns}" is not a namespace name (1–64 of letters, digits, "_", ".", ":", "-")`)
  }

  /** The mode of `ns`, if it exists. */
  mode(ns: string): NamespaceMode | undefined {
    if (this.#private.has(ns)) return 'private'
    return this.#resolve(ns)?.mode
  }

  /**
   * Create a namespace owned by this profile, or take up an existing one: for an
   * encrypted namespace that exists, `key` is checked against it and a wrong key
   * is refused with {@link WrongKeyError} before anything is stored.
   */
  async createNamespace(ns: string, opts: CreateNamespaceOptions = {}): Promise<void> {
    this.#checkName(ns)
    const mode = opts.mode ?? 'shared'
    await this.#index.settled()
    const existing = this.mode(ns)
    if (existing != null && existing !== mode) throw new NamespaceError(`namespace "${ns}" already exists as ${existing}`)
    if (mode === 'private') {
      if (existing == null) this.#private.set(ns, { createdAt: Date.now() })
      this.#privateDoc(ns)
      return
    }
    if (mode === 'encrypted' && (typeof opts.key !== 'string' || opts.key.trim() === '')) throw new MissingKeyError()
    let r = this.#resolve(ns)
    if (r == null) {
      const owner = this.#identity.publicKey
      if (this.#index.countOf(owner) >= this.#limits.maxNamespacesPerOwner)
        throw new NamespaceQuotaError(`you own ${this.#limits.maxNamespacesPerOwner} shared namespaces, the limit`)
      const writers = this.#writers(opts.writers ?? [])
      let crypto: { salt: string; iterations: number; check: string } | undefined
      if (mode === 'encrypted') {
        const salt = newSalt()
        const iterations = this.#limits.pbkdf2Iterations
        const keys = await deriveNamespaceKeys(opts.key as string, salt, iterations)
        crypto = { salt, iterations, check: keys.check }
        this.#keys.set(namespaceKey(owner, ns), keys)
      }
      r = await this.#index.put(this.#identity, { kind: 'zerostate/namespace/1', name: ns, owner, mode, createdAt: Date.now(), version: 1, writers, ...crypto })
    } else if (r.mode === 'encrypted') {
      const id = namespaceKey(r.owner, r.name)
      // Refused here, before the key is saved or anything written (issue 10 item 10).
      this.#keys.set(id, await unlockNamespace(opts.key as string, r.salt as string, r.iterations as number, r.check as string))
    }
    if (mode === 'encrypted') this.#savedKeys.set(namespaceKey(r.owner, r.name), opts.key as string)
    this.#pin(r)
    const open = this.#ensureOpen(r)
    if (mode === 'encrypted') this.#enqueue(() => this.#decrypt(open, [...open.valid.values()]))
    await this.settled()
    this.#emit({ namespace: ns, keys: [] })
  }

  #writers(list: unknown): string[] {
    const parsed = v.safeParse(WritersSchema, list)
    if (!parsed.success) throw new InvalidValueError('writers are profile keys ("ed25519:…") or "*" for anyone')
    return [...new Set(parsed.output)]
  }

  async #changeWriters(ns: string, change: (writers: string[]) => string[]): Promise<void> {
    this.#checkName(ns)
    await this.#index.settled()
    const r = this.#resolve(ns)
    if (r == null) throw new NamespaceError(`there is no shared namespace "${ns}"`)
    if (r.owner !== this.#identity.publicKey) throw new NotOwnerError(`only the owner of "${ns}" (${r.owner}) can change its writers`)
    const { signature: _s, ...payload } = r
    await this.#index.put(this.#identity, { ...payload, version: r.version + 1, writers: this.#writers(change(r.writers)) })
    const open = this.#open.get(namespaceDoc(r.owner, r.name))
    if (open != null) this.#emit({ namespace: ns, keys: [...this.#view(open, r).keys()] })
  }

  /** Let `publicKey` (`ed25519:…`, or `'*'` for anyone) write to `ns`; owner only. */
  async grant(ns: string, publicKey: string): Promise<void> {
    await this.#changeWriters(ns, (w) => [...w, publicKey])
    this.audit?.({ kind: 'namespace.granted', subject: ns, peer: publicKey })
  }

  /** Stop `publicKey` writing to `ns` (its records stop counting); owner only. */
  async revoke(ns: string, publicKey: string): Promise<void> {
    this.#writers([publicKey])
    await this.#changeWriters(ns, (w) => w.filter((k) => k !== publicKey))
    this.audit?.({ kind: 'namespace.revoked', subject: ns, peer: publicKey })
  }

  /** Every namespace this profile knows, with its mode, owner and writers. Opens none. */
  namespaces(): NamespaceInfo[] {
    const me = this.#identity.publicKey
    const out: NamespaceInfo[] = []
    for (const name of this.#private.keys()) {
      if (NAMESPACE_RE.test(name)) out.push({ name, mode: 'private', locked: false, owner: me, writers: [], canWrite: true })
    }
    for (const name of this.#index.names()) {
      const r = this.#resolve(name)
      if (r == null || this.#private.has(name)) continue
      out.push({
        name,
        mode: r.mode,
        locked: r.mode === 'encrypted' && !this.#keys.has(namespaceKey(r.owner, r.name)),
        owner: r.owner,
        writers: [...r.writers],
        canWrite: authorized(r, me)
      })
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  #entries(ns: string): Map<string, { value: unknown }> | undefined {
    const r = this.#resolve(ns)
    if (r == null) return undefined
    const open = this.#ensureOpen(r)
    const out = new Map<string, { value: unknown }>()
    for (const e of this.#view(open, r).values()) {
      if (e.value == null) continue
      if (r.mode === 'encrypted') {
        const p = open.plain.get(e.signature)
        if (p != null) out.set(p.name, { value: p.value })
        continue
      }
      try {
        out.set(e.key, { value: JSON.parse(e.value) })
      } catch {
        this.#counters.inc('invalidValues')
      }
    }
    return out
  }

  #privateValue(ns: string, key: string): unknown {
    const raw = this.#privateDoc(ns).getMap<unknown>('kv').get(key)
    if (typeof raw !== 'string') return undefined
    try {
      return JSON.parse(raw)
    } catch {
      this.#counters.inc('invalidValues')
      return undefined
    }
  }

  /** The value under `key`, or undefined (also when encrypted and locked). Opens `ns` if needed. */
  get(ns: string, key: string): unknown {
    if (this.#private.has(ns)) return this.#privateValue(ns, key)
    return structuredClone(this.#entries(ns)?.get(key)?.value)
  }

  /** The keys of `ns` (for an encrypted namespace: those this profile can decrypt). Opens `ns` if needed. */
  keys(ns: string): string[] {
    if (this.#private.has(ns)) {
      return [...this.#privateDoc(ns).getMap<unknown>('kv').entries()]
        .filter(([, raw]) => typeof raw === 'string')
        .map(([k]) => k)
        .sort()
    }
    return [...(this.#entries(ns)?.keys() ?? [])].sort()
  }

  /**
   * Store a JSON value; resolves once it is saved locally. A namespace nobody
   * created is created, owned by this profile and open to every writer (as
   * `set()` always allowed); {@link NotWriterError} if the owner has not granted us.
   */
  async set(ns: string, key: string, value: unknown): Promise<void> {
    this.#checkName(ns)
    if (typeof key !== 'string' || key.length === 0 || key.length > 512) throw new InvalidValueError('a key is a string of 1–512 characters')
    let json: string | undefined
    try {
      json = JSON.stringify(value)
    } catch (err) {
      throw new InvalidValueError(undefined, { cause: err })
    }
    if (json === undefined) throw new InvalidValueError()
    if (json.length > this.#limits.maxValueBytes) throw new InvalidValueError(`the value is ${json.length} bytes; the limit is ${this.#limits.maxValueBytes}`)
    await this.#write(ns, key, json)
  }

  /** Delete `key`; resolves once saved locally. */
  async delete(ns: string, key: string): Promise<void> {
    if (this.mode(ns) == null) return
    await this.#write(ns, key, null)
  }

  async #write(ns: string, key: string, json: string | null): Promise<void> {
    if (this.#private.has(ns)) {
      const kv = this.#privateDoc(ns).getMap<unknown>('kv')
      if (json == null) kv.delete(key)
      else kv.set(key, json)
      this.#counters.inc('writes')
      await this.#host.saved(MEMORY_DOC_PREFIX + ns)
      return
    }
    await this.#index.settled()
    if (this.#resolve(ns) == null) await this.createNamespace(ns, { mode: 'shared', writers: [ANYONE] })
    const r = this.#resolve(ns) as NamespaceRecord
    const me = this.#identity.publicKey
    if (!authorized(r, me)) throw new NotWriterError(`you are not a writer of "${ns}"; ask its owner (${r.owner}) to grant you`)
    const open = this.#ensureOpen(r)
    let slot = key
    let stored = json
    if (r.mode === 'encrypted') {
      const k = this.#keys.get(open.id)
      if (k == null) throw new MissingKeyError()
      slot = await slotOf(k, key)
      if (json != null) stored = await sealEntry(k, key, json)
    }
    const mapKey = `${me}/${slot}`
    const prev = open.valid.get(mapKey)
    const payload = {
      kind: 'zerostate/memory-entry/1' as const,
      ns: open.id,
      key: slot,
      writer: me,
      t: Math.max(Date.now(), (prev?.t ?? 0) + 1),
      value: stored
    }
    const entry: MemoryEntry = { ...payload, signature: await signJson(this.#identity, payload) }
    this.#verified.set(entry.signature, textDecoder.decode(canonicalBytes(payload)))
    open.valid.set(mapKey, entry)
    if (r.mode === 'encrypted') open.plain.set(entry.signature, json == null ? null : { name: key, value: JSON.parse(json) })
    this.#pin(r)
    open.kv.set(mapKey, entry)
    this.#counters.inc('writes')
    this.#emit({ namespace: ns, keys: [key] })
    await this.#host.saved(open.docName)
  }

  /** Listen for changes; returns the unsubscribe function. */
  subscribe(listener: (change: MemoryChange) => void): () => void {
    return listen(
      this.#events,
      'change',
      (e) => {
        listener(e.detail)
      },
      {
        onError: (err) => {
          this.#counters.inc('listenerErrors')
          log.error('memory listener threw %e', err)
        }
      }
    )
  }
}
