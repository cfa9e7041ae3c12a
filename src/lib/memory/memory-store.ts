/**
 * Shared key/value memory in namespaces, one `memory/<namespace>` doc each
 * (a Y.Map `kv` of key → JSON text). Modes:
 *  - `shared`: synced with every peer (the default for an unknown namespace);
 *  - `private`: this profile only (persisted and shared between its tabs, never
 *    synced to peers); recorded in the private `local` doc;
 *  - `encrypted`: synced, but keys and values are AES-GCM ciphertext under a key
 *    the user shares out of band; peers without it hold ciphertext only.
 * Shared and encrypted namespaces are listed in the synced `memory-index` doc so
 * every peer learns of them and syncs them.
 */
import type * as Y from 'yjs'
import * as v from 'valibot'
import { Counters } from '../core/index.ts'
import { TypedEventEmitter, listen, logger } from '../core/index.ts'
import { InvalidValueError, MissingKeyError, NamespaceError } from './errors.ts'
import { MEMORY_DOC_PREFIX, NAMESPACE_RE, type MemoryLimits } from './constants.ts'
import { importNamespaceKey, openName, openValue, sealName, sealValue } from './namespace-crypto.ts'

const log = logger('memory:kv')

/** How a namespace is shared. */
export const NamespaceMode = { Shared: 'shared', Private: 'private', Encrypted: 'encrypted' } as const
/** `'shared' | 'private' | 'encrypted'` */
export type NamespaceMode = (typeof NamespaceMode)[keyof typeof NamespaceMode]

const IndexEntrySchema = v.object({ mode: v.picklist(['shared', 'encrypted']), createdAt: v.number() })

/** A namespace as `namespaces()` lists it. */
export interface NamespaceInfo {
  name: string
  mode: NamespaceMode
  /** Encrypted and this profile has no key: values cannot be read. */
  locked: boolean
}

/** A change in a namespace (keys whose value changed, locally or remotely). */
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

/** The `memory` part of the layer. */
export class MemoryStore {
  readonly #host: DocHost
  readonly #index: Y.Map<unknown>
  readonly #private: Y.Map<unknown>
  readonly #savedKeys: Y.Map<unknown>
  readonly #limits: MemoryLimits
  readonly #counters: Counters
  readonly #keys = new Map<string, CryptoKey>()
  /** Decrypted view of encrypted namespaces: name → (key name → { slot, value }). */
  readonly #plain = new Map<string, Map<string, { slot: string; value: unknown }>>()
  readonly #observed = new Set<string>()
  readonly #events = new TypedEventEmitter<{ change: CustomEvent<MemoryChange> }>()
  #decrypting: Promise<void> = Promise.resolve()

  constructor(host: DocHost, indexDoc: Y.Doc, localDoc: Y.Doc, limits: MemoryLimits, counters = new Counters('memory')) {
    this.#host = host
    this.#index = indexDoc.getMap('namespaces')
    this.#private = localDoc.getMap('private')
    this.#savedKeys = localDoc.getMap('keys')
    this.#limits = limits
    this.#counters = counters
  }

  /** Open every known namespace (so shared ones sync) and import saved keys. */
  async init(): Promise<void> {
    for (const [ns, raw] of this.#savedKeys.entries()) {
      if (typeof raw === 'string') {
        try {
          this.#keys.set(ns, await importNamespaceKey(raw))
        } catch {
          this.#counters.inc('badSavedKeys')
        }
      }
    }
    for (const ns of this.#private.keys()) this.#doc(ns)
    for (const ns of this.#index.keys()) if (NAMESPACE_RE.test(ns) && !this.#private.has(ns)) this.#doc(ns)
    this.#index.observe((e) => {
      for (const ns of e.keysChanged) if (NAMESPACE_RE.test(ns) && !this.#private.has(ns) && this.#index.has(ns)) this.#doc(ns)
    })
    await this.#decrypting
  }

  /** The mode of `ns`, if it exists. */
  mode(ns: string): NamespaceMode | undefined {
    if (this.#private.has(ns)) return 'private'
    const entry = v.safeParse(IndexEntrySchema, this.#index.get(ns))
    if (entry.success) return entry.output.mode
    return this.#observed.has(ns) ? 'shared' : undefined
  }

  /** Whether a peer may sync namespace doc `docName` with us. */
  acceptsPeerDoc(docName: string): boolean {
    const ns = docName.slice(MEMORY_DOC_PREFIX.length)
    return docName.startsWith(MEMORY_DOC_PREFIX) && NAMESPACE_RE.test(ns) && !this.#private.has(ns)
  }

  /** Open a namespace doc a peer offered (it is shared unless the index says encrypted). */
  adoptPeerDoc(docName: string): Y.Doc {
    return this.#doc(docName.slice(MEMORY_DOC_PREFIX.length))
  }

  #doc(ns: string): Y.Doc {
    const doc = this.#host.open(MEMORY_DOC_PREFIX + ns, { sync: !this.#private.has(ns) })
    if (!this.#observed.has(ns)) {
      this.#observed.add(ns)
      const kv = doc.getMap<unknown>('kv')
      kv.observe((e) => {
        const changed = [...e.keysChanged]
        if (this.mode(ns) === 'encrypted') this.#decrypt(ns, changed)
        else this.#emit({ namespace: ns, keys: changed })
      })
      if (this.mode(ns) === 'encrypted') this.#decrypt(ns, [...kv.keys()])
    }
    return doc
  }

  #kv(ns: string): Y.Map<unknown> {
    return this.#doc(ns).getMap<unknown>('kv')
  }

  #decrypt(ns: string, slots: string[]): void {
    const key = this.#keys.get(ns)
    if (key == null) return
    this.#decrypting = this.#decrypting.then(async () => {
      const kv = this.#kv(ns)
      const plain = this.#plain.get(ns) ?? new Map()
      this.#plain.set(ns, plain)
      const changed: string[] = []
      for (const slot of slots) {
        try {
          const name = await openName(key, slot)
          const sealed = kv.get(slot)
          if (typeof sealed !== 'string') {
            if (plain.delete(name)) changed.push(name)
            continue
          }
          plain.set(name, { slot, value: JSON.parse(await openValue(key, sealed)) })
          changed.push(name)
        } catch (err) {
          this.#counters.inc('undecryptable')
          log('cannot decrypt a value in %s: %s', ns, (err as Error)?.message)
        }
      }
      if (changed.length > 0) this.#emit({ namespace: ns, keys: changed })
    })
  }

  #emit(change: MemoryChange): void {
    this.#events.safeDispatchEvent('change', { detail: change })
  }

  #checkName(ns: string): void {
    if (!NAMESPACE_RE.test(ns)) throw new NamespaceError(`"${ns}" is not a namespace name (1–64 of letters, digits, "_", ".", ":", "-")`)
  }

  /** Create a namespace (idempotent for the same mode; an encrypted one needs `key`). */
  async createNamespace(ns: string, opts: { mode?: NamespaceMode; key?: CryptoKey | string } = {}): Promise<void> {
    this.#checkName(ns)
    const mode = opts.mode ?? 'shared'
    const existing = this.mode(ns)
    if (existing != null && existing !== mode && !(existing === 'shared' && !this.#index.has(ns) && mode !== 'private')) {
      throw new NamespaceError(`namespace "${ns}" already exists as ${existing}`)
    }
    if (mode === 'private') {
      this.#private.set(ns, { createdAt: Date.now() })
      this.#doc(ns)
      return
    }
    if (mode === 'encrypted') {
      if (opts.key == null) throw new MissingKeyError()
      this.#keys.set(ns, await importNamespaceKey(opts.key))
      if (typeof opts.key === 'string') this.#savedKeys.set(ns, opts.key)
    }
    if (!this.#index.has(ns)) this.#index.set(ns, { mode, createdAt: Date.now() })
    this.#doc(ns)
    if (mode === 'encrypted') {
      this.#decrypt(ns, [...this.#kv(ns).keys()])
      await this.#decrypting
    }
  }

  /** Every namespace this profile knows, with its mode. */
  namespaces(): NamespaceInfo[] {
    const names = new Set<string>([...this.#private.keys(), ...this.#index.keys(), ...this.#observed])
    return [...names]
      .filter((n) => NAMESPACE_RE.test(n))
      .sort()
      .map((name) => {
        const mode = this.mode(name) ?? 'shared'
        return { name, mode, locked: mode === 'encrypted' && !this.#keys.has(name) }
      })
  }

  /** The value under `key`, or undefined (also when encrypted and locked). */
  get(ns: string, key: string): unknown {
    if (this.mode(ns) == null) return undefined
    if (this.mode(ns) === 'encrypted') return structuredClone(this.#plain.get(ns)?.get(key)?.value)
    const raw = this.#kv(ns).get(key)
    if (typeof raw !== 'string') return undefined
    try {
      return JSON.parse(raw)
    } catch {
      this.#counters.inc('invalidValues')
      return undefined
    }
  }

  /** The keys of `ns` (for an encrypted namespace: those this profile can decrypt). */
  keys(ns: string): string[] {
    if (this.mode(ns) == null) return []
    if (this.mode(ns) === 'encrypted') return [...(this.#plain.get(ns)?.keys() ?? [])].sort()
    return [...this.#kv(ns).entries()]
      .filter(([, raw]) => typeof raw === 'string')
      .map(([k]) => k)
      .sort()
  }

  /** Store a JSON value; resolves once it is saved locally. Creates `ns` as shared if unknown. */
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
    if (this.mode(ns) == null) await this.createNamespace(ns, { mode: 'shared' })
    if (this.mode(ns) === 'encrypted') {
      const k = this.#keys.get(ns)
      if (k == null) throw new MissingKeyError()
      const slot = await sealName(k, key)
      const plain = this.#plain.get(ns) ?? new Map()
      this.#plain.set(ns, plain)
      plain.set(key, { slot, value: JSON.parse(json) })
      this.#kv(ns).set(slot, await sealValue(k, json))
    } else {
      this.#kv(ns).set(key, json)
    }
    this.#counters.inc('writes')
    await this.#host.saved(MEMORY_DOC_PREFIX + ns)
  }

  /** Delete `key`; resolves once saved locally. */
  async delete(ns: string, key: string): Promise<void> {
    if (this.mode(ns) == null) return
    if (this.mode(ns) === 'encrypted') {
      const entry = this.#plain.get(ns)?.get(key)
      const k = this.#keys.get(ns)
      const slot = entry?.slot ?? (k != null ? await sealName(k, key) : undefined)
      if (slot == null) throw new MissingKeyError()
      this.#plain.get(ns)?.delete(key)
      this.#kv(ns).delete(slot)
    } else {
      this.#kv(ns).delete(key)
    }
    await this.#host.saved(MEMORY_DOC_PREFIX + ns)
  }

  /** Resolves once pending decryptions are done (tests, `whenSynced`). */
  async settled(): Promise<void> {
    let current: Promise<void>
    do {
      current = this.#decrypting
      await current
    } while (current !== this.#decrypting)
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
