/**
 * The composition root: one mesh node, agent runtime, memory layer and
 * orchestrator per tab, wired through narrow adapters, behind `ZeroStateApi`.
 */
import type { AgentEntry, AgentFilter, DonationState, ZeroStateApi } from './api.ts'
import { createMemoryLayer, Libp2pSyncTransport, type MemoryLayer } from '../memory/index.ts'
import { IndexedDbKeyStore, MemoryKeyStore, loadIdentity, logger } from '../core/index.ts'
import { MeshNode, type MeshNodeInit } from '../mesh/index.ts'
import {
  LlmController,
  Libp2pTaskTransport,
  createOrchestrator,
  remotePlanner,
  servePlans,
  LLM_CAPABILITY,
  OrchestratorError,
  type TaskHandle,
  type TaskRequest
} from '../orchestrator/index.ts'
import { AppCatalog, OutcomeStats, RuntimeExecutor, libp2pStreamHost, meshPeerDirectory, type CatalogAgent } from './adapters.ts'
import { journalTask } from './task-journal.ts'
import { IndexedDbAgentStore, MemoryAgentStore, bundledAgents, createAgentRuntime, defaultWorkerCount, publishLocal, sha256Hex } from '../runtime/index.ts'

const log = logger('app')
const DONATION_KEY = 'zerostate:donation'
/** The fastest rate at which subscribers (the UI) are told of changes. */
const NOTIFY_EVERY_MS = 100

/** Options of `createZeroState`. */
export interface ZeroStateOptions {
  mesh?: MeshNodeInit
  /** Keep identity, agents and memory in IndexedDB. Default: when IndexedDB exists. */
  persist?: boolean
  /** Donate compute from the start (default: the setting saved in this profile, else off). */
  donate?: { enabled: boolean; workers?: number }
  /** Base URL of the bundled agents. Default `/agents/`. */
  agentsBaseUrl?: string
}

function readDonation(): { enabled: boolean; workers?: number } | undefined {
  try {
    const raw = globalThis.localStorage?.getItem(DONATION_KEY)
    const v: unknown = raw == null ? undefined : JSON.parse(raw)
    return typeof (v as { enabled?: unknown })?.enabled === 'boolean' ? (v as { enabled: boolean; workers?: number }) : undefined
  } catch {
    return undefined
  }
}

function toEntry(a: CatalogAgent, stats: OutcomeStats): AgentEntry {
  const m = a.manifest
  return {
    id: a.id,
    name: m.name,
    version: m.version,
    description: m.description,
    capabilities: [...m.capabilities],
    abi: m.abi,
    price: m.price,
    author: a.author,
    manifest: m,
    bundled: a.bundled,
    publishedAt: a.publishedAt,
    holders: a.holders,
    reputation: a.reputation,
    stats: stats.of(a.id)
  }
}

function matches(e: AgentEntry, f: AgentFilter = {}): boolean {
  if (f.capability != null && f.capability !== '' && !e.capabilities.includes(f.capability)) return false
  if (f.author != null && f.author !== '' && e.author !== f.author) return false
  if (f.minReputation != null && (e.reputation ?? 0) < f.minReputation) return false
  if (f.text != null && f.text !== '') {
    const t = f.text.toLowerCase()
    if (![e.id, e.name, e.description, ...e.capabilities].some((s) => s.toLowerCase().includes(t))) return false
  }
  return true
}

/** Start a mesh peer in this tab (or Node) and return its API. */
export async function createZeroState(options: ZeroStateOptions = {}): Promise<ZeroStateApi> {
  const persist = options.persist ?? typeof indexedDB !== 'undefined'
  const listeners = new Set<() => void>()
  let changeQueued = false
  // Listeners (the UI) hear of changes at most every NOTIFY_EVERY_MS: a busy tab
  // emits thousands of task events a second, and a repaint per event cost more
  // than the tasks themselves. The first change after a quiet spell is told at once.
  let notifiedAt = -Infinity
  const notify = (): void => {
    changeQueued = false
    notifiedAt = performance.now()
    for (const l of listeners) l()
  }
  const changed = (): void => {
    if (changeQueued) return
    changeQueued = true
    const wait = notifiedAt + NOTIFY_EVERY_MS - performance.now()
    if (wait <= 0) queueMicrotask(notify)
    else setTimeout(notify, wait)
  }

  // The node does not need the signing key to join: start both at once (join time).
  const mesh = new MeshNode(options.mesh)
  const [identity] = await Promise.all([loadIdentity(persist ? new IndexedDbKeyStore() : new MemoryKeyStore()), mesh.start()])
  mesh.addEventListener('change', changed)
  const libp2p = mesh.libp2p

  const runtime = createAgentRuntime({ workers: defaultWorkerCount(), store: persist ? new IndexedDbAgentStore() : new MemoryAgentStore() })
  const memory: MemoryLayer = createMemoryLayer({
    identity,
    transport: new Libp2pSyncTransport(libp2p),
    persistence: persist ? 'indexeddb' : 'none',
    onPeerRejected: (peer) => {
      mesh.strike(peer)
    }
  })
  await memory.start()
  memory.registry.subscribe(changed)
  memory.memory.subscribe(changed)

  const stats = new OutcomeStats()
  const catalog = new AppCatalog(memory.registry, stats)
  catalog.subscribe(changed)
  stats.subscribe(changed)
  const executor = new RuntimeExecutor(runtime, catalog, (id) => {
    memory.registry.addHolder(id, mesh.peerId)
  })
  await executor.init()

  const host = libp2pStreamHost(libp2p)
  const transport = new Libp2pTaskTransport({ host })
  const peers = meshPeerDirectory(mesh)
  const llm = new LlmController(changed)
  const orchestrator = createOrchestrator({
    catalog,
    peers,
    reputation: stats,
    transport,
    executor,
    blobs: executor,
    outcomes: stats,
    planners: [llm.planner(), remotePlanner({ host, peers })]
  })
  await orchestrator.start()

  const bundledLoad = bundledAgents({ baseUrl: options.agentsBaseUrl })
    .then((list) => {
      catalog.setBundled(list)
      refreshPresence()
    })
    .catch((err: unknown) => {
      log.error('bundled agents unavailable: %s', (err as Error).message)
    })

  let donating = false
  let completed = 0
  const handles = new Map<string, TaskHandle>()
  let stopLlmService: (() => Promise<void>) | undefined

  function refreshPresence(): void {
    const caps = new Set<string>()
    if (donating) for (const a of catalog.agents()) if (executor.has(a.id)) for (const c of a.manifest.capabilities) caps.add(c)
    if (llm.state().state === 'ready') caps.add(LLM_CAPABILITY)
    mesh.setPresence({ donating, freeWorkers: donating ? executor.freeWorkers() : 0, capabilities: [...caps].sort().slice(0, 64) })
  }
  mesh.setPresence({ publicKey: identity.publicKey })
  const presenceTimer = setInterval(refreshPresence, 1000)

  const donation = (): DonationState => {
    const s = runtime.stats()
    return { enabled: donating, workers: s.workers, maxWorkers: Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 2), busy: executor.busy, completed }
  }

  async function donate(opts: { enabled: boolean; workers?: number }): Promise<void> {
    if (opts.workers != null) runtime.resize(Math.max(1, Math.floor(opts.workers)))
    // The pool starts lazily; a donor must have its workers up to advertise them.
    if (opts.enabled) await runtime.start()
    donating = opts.enabled
    await orchestrator.donate(opts.enabled)
    try {
      globalThis.localStorage?.setItem(DONATION_KEY, JSON.stringify({ enabled: donating, workers: runtime.stats().workers }))
    } catch {
      /* not persisted */
    }
    await bundledLoad
    refreshPresence()
    changed()
  }

  function track(handle: TaskHandle, request: TaskRequest): TaskHandle {
    handles.set(handle.id, handle)
    void journalTask(memory.journal, handle, request)
    handle.on('step', changed)
    handle.on('progress', changed)
    handle.done
      .then(
        () => {
          completed++
        },
        () => {}
      )
      .finally(changed)
    return handle
  }

  const initialDonation = options.donate ?? readDonation()
  if (initialDonation?.enabled === true) await donate(initialDonation)
  void llm.probe().then(async () => {
    if (llm.state().state !== 'unavailable') stopLlmService = await servePlans(host, llm.engine)
  })

  const api: ZeroStateApi = {
    ready: mesh.ready,
    peerId: mesh.peerId,
    publicKey: identity.publicKey,
    peers: () => mesh.peers(),
    ping: (peerId) => mesh.ping(peerId),
    relayStatus: () => mesh.status,
    donate,
    donation,
    agents: {
      list: (filter) =>
        catalog
          .agents()
          .map((a) => toEntry(a, stats))
          .filter((e) => matches(e, filter)),
      get: (id) => {
        const a = catalog.get(id)
        return a == null ? undefined : toEntry(a, stats)
      },
      async publish(bundle) {
        const stored = await publishLocal(runtime.store, identity, bundle)
        executor.markLocal(stored.id)
        await memory.registry.publish({ id: stored.id, manifest: stored.manifest, moduleSha256: await sha256Hex(bundle.wasm), holders: [mesh.peerId] })
        await bundledLoad
        const entry = catalog.agents().find((a) => a.id === stored.id)
        refreshPresence()
        changed()
        return entry != null
          ? toEntry(entry, stats)
          : toEntry(
              { id: stored.id, manifest: stored.manifest, author: identity.publicKey, bundled: false, holders: [mesh.peerId], publishedAt: stored.publishedAt },
              stats
            )
      },
      retract: (id) => memory.registry.retract(id),
      async run(id, input, opts) {
        const pkg = await executor.package(id)
        if (pkg == null) throw new OrchestratorError(`agent ${id} is not available on this peer`)
        return await runtime.run(pkg, input, opts)
      }
    },
    submit: (request) => track(orchestrator.submit(request), request),
    runWorkflow() {
      // Workflows (YAML) are a later feature; keep the contract: a handle whose done rejects.
      const error = new OrchestratorError('Workflows are not available in this version yet: submit a task instead')
      const done = Promise.reject(error)
      done.catch(() => {})
      return { id: `workflow-${Date.now()}`, done, on: () => () => {}, cancel: () => {} } as unknown as TaskHandle
    },
    tasks: () => orchestrator.tasks(),
    task: (id) => handles.get(id),
    memory: {
      get: (ns, key) => memory.memory.get(ns, key),
      set: (ns, key, value) => memory.memory.set(ns, key, value),
      keys: (ns) => memory.memory.keys(ns),
      delete: (ns, key) => memory.memory.delete(ns, key),
      namespaces: () => memory.memory.namespaces(),
      createNamespace: (ns, opts) => memory.memory.createNamespace(ns, opts)
    },
    llm: {
      state: () => llm.state(),
      setModels: (models) => {
        llm.setModels(models)
      },
      async load(modelId) {
        await llm.load(modelId)
        refreshPresence()
      }
    },
    metrics: () => ({
      ...mesh.metrics(),
      ...memory.metrics(),
      ...orchestrator.stats(),
      'catalog.rejected': catalog.rejected,
      'runtime.completed': runtime.stats().completed,
      'runtime.failed': runtime.stats().failed
    }),
    subscribe(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    mesh,
    runtime,
    registry: memory.registry,
    journal: memory.journal,
    orchestrator,
    async stop() {
      clearInterval(presenceTimer)
      await stopLlmService?.().catch(() => {})
      await orchestrator.stop()
      await memory.stop()
      await runtime.stop()
      await mesh.stop()
    }
  }
  return api
}
