/**
 * `createMemoryLayer()`: the registry, shared memory and task journal, each a
 * Y.Doc persisted in IndexedDB (batched), shared live between this profile's tabs
 * (BroadcastChannel) and — except private docs — synced with mesh peers.
 */
import * as Y from 'yjs'
import type { Identity } from '../core/index.ts'
import { Counters } from '../core/index.ts'
import { logger } from '../core/index.ts'
import { AUDIT_DOC, DEFAULT_LIMITS, JOURNAL_DOC, LOCAL_DOC, MEMORY_INDEX_DOC, NAMESPACE_DOC_PREFIX, REGISTRY_DOC, type MemoryLimits } from './constants.ts'
import { MemoryNotStartedError } from './errors.ts'
import { IndexedDbPersistence } from './indexeddb-persistence.ts'
import { AuditLog, type AuditEntry } from './audit-log.ts'
import { Journal } from './journal.ts'
import type { StrikeEvent } from '../mesh/index.ts'
import { MemoryStore } from './memory-store.ts'
import { OWNED_ROOT } from './namespace-index.ts'
import { MeshProvider, type ProviderStrikes } from './mesh-provider.ts'
import { Registry, registryUpdatePolicy } from './registry.ts'
import type { SyncTransport } from './sync-transport.ts'
import { TabSync } from './tab-sync.ts'
import { defaultUpdateChecker, type UpdateChecker } from './update-checker.ts'

const log = logger('memory:layer')

/** Options of {@link createMemoryLayer}. */
export interface MemoryLayerInit {
  /** Signs registry entries, retractions and reputation. */
  identity: Identity
  /** The mesh; without one, nothing is synced to peers (tabs still are). */
  transport?: SyncTransport
  /** Default: 'indexeddb' when `indexedDB` exists, else 'none'. */
  persistence?: 'indexeddb' | 'none'
  /** Prefix of IndexedDB database and BroadcastChannel names. Default 'zerostate:'. */
  dbPrefix?: string
  limits?: Partial<MemoryLimits>
  /** Tries large remote updates off the main thread. Default: a module worker in browsers, none in Node. */
  checker?: UpdateChecker
  /** Share docs between tabs of this profile. Default true. */
  tabSync?: boolean
  /** Called when a peer sent an update that was refused (the layer hangs up after `limits.maxStrikes`). */
  onPeerRejected?: (peer: string, error: Error) => void
  /** How long `whenSynced` waits for a first peer exchange, in ms. Default 3000. */
  syncTimeoutMs?: number
  /** The mesh's strike policy: its strikes and blocks go to the audit log. */
  strikeEvents?: { onEvent(listener: (e: StrikeEvent) => void): () => void }
}

interface OpenDoc {
  doc: Y.Doc
  persistence?: IndexedDbPersistence
  tabs?: TabSync
  provider?: MeshProvider
  sync: boolean
}

/** The memory layer. */
export interface MemoryLayer {
  /** Load local state and start syncing. Idempotent. */
  start(): Promise<void>
  /** Flush to storage and stop syncing. Idempotent. */
  stop(): Promise<void>
  /** Resolves once local state is loaded and the registry has synced with a peer (or none answered within `syncTimeoutMs`). */
  readonly whenSynced: Promise<void>
  readonly registry: Registry
  readonly memory: MemoryStore
  readonly journal: Journal
  /** This profile's signed, hash-chained audit log: strikes, blocks, publishes, retractions, grants. */
  readonly audit: AuditLog
  /** Resolves once every change so far is saved in IndexedDB. */
  flush(): Promise<void>
  /** Same as `flush()`, as a property. */
  readonly whenSaved: Promise<void>
  /** Resolves once every change made here to a synced doc has been written to at least one peer (a short-lived peer awaits it before it exits). */
  delivered(signal?: AbortSignal): Promise<void>
  /** Counters: rejected updates, forged entries, bytes in/out, … */
  metrics(): Record<string, number>
  /** The underlying doc of `name` if open (tests, benchmarks, debugging). */
  doc(name: string): Y.Doc | undefined
}

/** Create the memory layer; call `start()` before use. */
export function createMemoryLayer(init: MemoryLayerInit): MemoryLayer {
  const limits: MemoryLimits = { ...DEFAULT_LIMITS, ...init.limits }
  const persist = (init.persistence ?? (typeof indexedDB !== 'undefined' ? 'indexeddb' : 'none')) === 'indexeddb'
  const prefix = init.dbPrefix ?? 'zerostate:'
  const counters = {
    sync: new Counters('memory.sync'),
    idb: new Counters('memory.idb'),
    tabs: new Counters('memory.tabs'),
    registry: new Counters('memory.registry'),
    kv: new Counters('memory.kv'),
    journal: new Counters('memory.journal'),
    audit: new Counters('memory.audit')
  }
  const strikes = new Map<string, ProviderStrikes>()
  const registryPolicy = registryUpdatePolicy(limits)
  const checker = init.checker ?? defaultUpdateChecker(limits.checkDeadlineMs)
  const docs = new Map<string, OpenDoc>()
  let started = false
  let stopped = false
  const synced = Promise.withResolvers<void>()

  function attachProvider(name: string, od: OpenDoc): void {
    if (init.transport == null || !od.sync || od.provider != null || !started || stopped) return
    od.provider = new MeshProvider(name, od.doc, init.transport, {
      limits,
      checker,
      counters: counters.sync,
      strikes,
      // 'namespaces' is the unsigned index from before owners: still accepted from peers that hold it, never read.
      policy: name === REGISTRY_DOC ? registryPolicy : { allowedRoots: name === MEMORY_INDEX_DOC ? new Set(['namespaces', OWNED_ROOT]) : new Set(['kv']) },
      admit:
        name === REGISTRY_DOC
          ? (shape, kind) => registry.admit(shape, kind)
          : name === MEMORY_INDEX_DOC
            ? (shape, kind) => memory.admitIndexUpdate(shape, kind)
            : undefined,
      admitKeys: name === REGISTRY_DOC ? (kind) => registry.keyAdmitter(kind) : name === MEMORY_INDEX_DOC ? (kind) => memory.indexKeyAdmitter(kind) : undefined,
      onReject: init.onPeerRejected,
      offer: name.startsWith(NAMESPACE_DOC_PREFIX),
      // An answer waits for the doc's own verification and prune: it must carry nothing a peer refuses as hostile.
      settled: name === REGISTRY_DOC ? () => registry.settled() : name === MEMORY_INDEX_DOC ? () => memory.settled() : undefined
    })
  }

  function open(name: string, { sync }: { sync: boolean }): Y.Doc {
    const existing = docs.get(name)
    if (existing != null) return existing.doc
    const doc = new Y.Doc({ gc: true })
    const od: OpenDoc = { doc, sync }
    if (persist)
      od.persistence = new IndexedDbPersistence(prefix + name, doc, { delayMs: 10, compactAfter: limits.compactAfterRecords, counters: counters.idb })
    if (init.tabSync ?? true) od.tabs = new TabSync(prefix + name, doc, { counters: counters.tabs })
    docs.set(name, od)
    // A doc opened after start (a namespace) starts syncing once its local state is loaded.
    if (od.persistence == null) attachProvider(name, od)
    else void od.persistence.whenSynced.then(() => attachProvider(name, od))
    return doc
  }

  /** `now`: write the doc's pending changes at once instead of with its next batch. */
  async function saved(name: string, now = false): Promise<void> {
    const persistence = docs.get(name)?.persistence
    if (persistence == null) return
    await (now ? persistence.flush() : persistence.whenSaved)
  }

  const registryDoc = open(REGISTRY_DOC, { sync: true })
  const indexDoc = open(MEMORY_INDEX_DOC, { sync: true })
  const localDoc = open(LOCAL_DOC, { sync: false })
  const journalDoc = open(JOURNAL_DOC, { sync: false })
  const registry = new Registry(registryDoc, init.identity, limits, counters.registry)
  const memory = new MemoryStore({ open, saved }, indexDoc, localDoc, init.identity, limits, counters.kv)
  const journal = new Journal(journalDoc, (now) => saved(JOURNAL_DOC, now), counters.journal)
  const audit = new AuditLog(open(AUDIT_DOC, { sync: false }), init.identity, { counters: counters.audit })
  const record = (entry: AuditEntry): void => audit.note(entry)
  registry.audit = record
  memory.audit = record
  const offStrikes = init.strikeEvents?.onEvent((e) =>
    record({
      kind: e.type,
      peer: e.peer,
      subject: e.key.split('.')[0],
      why: e.type === 'block' ? `${e.key}; until ${new Date(e.until ?? e.at).toISOString()}` : e.key
    })
  )

  async function flush(): Promise<void> {
    await Promise.all([...docs.values()].map((d) => d.persistence?.flush()))
  }

  const layer: MemoryLayer = {
    async delivered(signal?: AbortSignal) {
      await Promise.all([...docs.values()].map((d) => d.provider?.delivered(signal)))
    },
    registry,
    memory,
    journal,
    audit,
    whenSynced: synced.promise,
    async start() {
      if (started) return
      started = true
      if (init.transport != null) checker?.warm?.()
      await Promise.all([...docs.values()].map((d) => d.persistence?.whenSynced))
      await memory.init()
      // Namespace docs opened by init load now, so reads right after start() see stored data.
      await Promise.all([...docs.values()].map((d) => d.persistence?.whenSynced))
      await memory.settled()
      const t = init.transport
      if (t != null) {
        // A peer offering a doc this tab has not opened is refused (issue 11 item 3: a peer
        // listing 600 namespaces must not make a tab open 600 docs). When this tab opens
        // the doc itself, its provider opens channels to every peer.
        await t.start()
      }
      for (const [name, od] of docs) if (od.persistence?.synced !== false) attachProvider(name, od)
      await registry.settled()
      const reg = docs.get(REGISTRY_DOC)?.provider
      if (reg == null || t == null || t.peers().length === 0) synced.resolve()
      else {
        const timer = setTimeout(() => synced.resolve(), init.syncTimeoutMs ?? 3000)
        void reg.whenSynced
          .then(() => registry.settled())
          .then(() => {
            clearTimeout(timer)
            synced.resolve()
          })
      }
    },
    async stop() {
      if (!started || stopped) return
      stopped = true
      offStrikes?.()
      await audit.settled()
      await flush().catch((err) => log.error('final flush failed %e', err))
      for (const od of docs.values()) {
        od.provider?.destroy()
        od.tabs?.destroy()
        await od.persistence?.destroy()
      }
      init.transport?.onUnknownDoc(undefined)
      checker?.destroy()
    },
    flush,
    get whenSaved() {
      return flush()
    },
    metrics() {
      const out: Record<string, number> = {}
      for (const c of Object.values(counters)) Object.assign(out, c.toRecord())
      for (const [k, val] of Object.entries(init.transport?.metrics() ?? {})) out[`memory.transport.${k}`] = val
      out['memory.docs'] = docs.size
      return out
    },
    doc: (name) => docs.get(name)?.doc
  }
  return layer
}

export { MemoryNotStartedError }
