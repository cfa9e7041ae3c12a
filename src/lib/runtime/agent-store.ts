/**
 * Where agent packages are kept so a reload does not re-fetch them.
 * `MemoryAgentStore` (Node, tests) and `IndexedDbAgentStore` (browser) share
 * one conformance suite (agent-store.test.ts). Every `put` verifies the package.
 */
import { parseManifest, toAgentId, verifyPackage, type AgentId, type AgentManifest, type AgentPackage } from './manifest.ts'

/** A stored agent as listed (no module bytes). */
export interface AgentEntry {
  id: AgentId
  manifest: AgentManifest
  author: string
  /** Module size in bytes. */
  size: number
  /** When it was stored here (ms since epoch). */
  publishedAt: number
}

/** Filter for `list`. */
export interface AgentFilter {
  capability?: string
}

/** Keeps verified agent packages. */
export interface AgentStore {
  /** Verify and store a package (replaces nothing: the id names the content). */
  put(id: string, manifest: AgentManifest, wasm: Uint8Array): Promise<AgentEntry>
  get(id: string): Promise<AgentPackage | undefined>
  list(filter?: AgentFilter): Promise<AgentEntry[]>
  has(id: string): Promise<boolean>
}

function matches(entry: AgentEntry, filter?: AgentFilter): boolean {
  return filter?.capability == null || entry.manifest.capabilities.includes(filter.capability)
}

function byName(a: AgentEntry, b: AgentEntry): number {
  return a.manifest.name.localeCompare(b.manifest.name) || a.id.localeCompare(b.id)
}

/** In-memory store. */
export class MemoryAgentStore implements AgentStore {
  readonly #entries = new Map<string, { entry: AgentEntry; wasm: Uint8Array }>()

  async put(id: string, manifest: AgentManifest, wasm: Uint8Array): Promise<AgentEntry> {
    const verified = await verifyPackage(manifest, wasm, id)
    const existing = this.#entries.get(verified)
    if (existing) return existing.entry
    const entry: AgentEntry = { id: verified, manifest, author: manifest.author, size: wasm.byteLength, publishedAt: Date.now() }
    this.#entries.set(verified, { entry, wasm: wasm.slice() })
    return entry
  }
  async get(id: string): Promise<AgentPackage | undefined> {
    const hit = this.#entries.get(id)
    return hit ? { id: hit.entry.id, manifest: hit.entry.manifest, wasm: hit.wasm } : undefined
  }
  async list(filter?: AgentFilter): Promise<AgentEntry[]> {
    return [...this.#entries.values()]
      .map((e) => e.entry)
      .filter((e) => matches(e, filter))
      .sort(byName)
  }
  async has(id: string): Promise<boolean> {
    return this.#entries.has(id)
  }
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

/** Validate an entry read back from IndexedDB (storage is a trust boundary too). */
function readEntry(value: unknown): AgentEntry | undefined {
  if (value == null || typeof value !== 'object') return undefined
  const v = value as Record<string, unknown>
  try {
    const manifest = parseManifest(v['manifest'])
    if (typeof v['id'] !== 'string' || typeof v['size'] !== 'number' || typeof v['publishedAt'] !== 'number') return undefined
    return { id: toAgentId(v['id']), manifest, author: manifest.author, size: v['size'], publishedAt: v['publishedAt'] }
  } catch {
    return undefined
  }
}

/** Agent packages in this profile's IndexedDB: entries and module bytes in two object stores. */
export class IndexedDbAgentStore implements AgentStore {
  readonly #dbName: string
  #db: Promise<IDBDatabase> | undefined
  constructor(dbName = 'zerostate-agents') {
    this.#dbName = dbName
  }

  #open(): Promise<IDBDatabase> {
    this.#db ??= new Promise((resolve, reject) => {
      const req = indexedDB.open(this.#dbName, 1)
      req.onupgradeneeded = () => {
        req.result.createObjectStore('entries', { keyPath: 'id' })
        req.result.createObjectStore('modules')
      }
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error)
    })
    return this.#db
  }

  async put(id: string, manifest: AgentManifest, wasm: Uint8Array): Promise<AgentEntry> {
    const verified = await verifyPackage(manifest, wasm, id)
    const db = await this.#open()
    const old = readEntry(await request(db.transaction('entries').objectStore('entries').get(verified)))
    if (old) return old
    const entry: AgentEntry = { id: verified, manifest, author: manifest.author, size: wasm.byteLength, publishedAt: Date.now() }
    const tx = db.transaction(['entries', 'modules'], 'readwrite')
    tx.objectStore('entries').put(entry)
    tx.objectStore('modules').put(wasm.slice(), verified)
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve()
      tx.onerror = () => reject(tx.error)
      tx.onabort = () => reject(tx.error)
    })
    return entry
  }

  async get(id: string): Promise<AgentPackage | undefined> {
    const db = await this.#open()
    const tx = db.transaction(['entries', 'modules'])
    const [raw, wasm] = await Promise.all([request(tx.objectStore('entries').get(id)), request(tx.objectStore('modules').get(id))])
    const entry = readEntry(raw)
    if (entry == null || !(wasm instanceof Uint8Array) || wasm.byteLength !== entry.size) return undefined
    return { id: entry.id, manifest: entry.manifest, wasm }
  }

  async list(filter?: AgentFilter): Promise<AgentEntry[]> {
    const db = await this.#open()
    const all = await request(db.transaction('entries').objectStore('entries').getAll())
    return all
      .map(readEntry)
      .filter((e): e is AgentEntry => e != null && matches(e, filter))
      .sort(byName)
  }

  async has(id: string): Promise<boolean> {
    const db = await this.#open()
    return (await request(db.transaction('entries').objectStore('entries').count(id))) > 0
  }

  /** Close the database connection. */
  close(): void {
    void this.#db?.then((db) => db.close())
    this.#db = undefined
  }
}
