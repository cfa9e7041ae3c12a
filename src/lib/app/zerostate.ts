/**
 * The composition root: one mesh node, agent runtime, memory layer and orchestrator
 * per tab, joined by the adapters and the app's services (listing, donation, presence,
 * publishing, task tracking), behind `ZeroStateApi`. It wires; the services decide.
 */
import type { ZeroStateApi } from './api.ts'
import { type AuditEntry, JOURNAL_DOC, REGISTRY_DOC, createMemoryLayer, Libp2pSyncTransport, type MemoryLayer } from '../memory/index.ts'
import { ChangeNotifier, type KeyStore, Tracer, listen, logger } from '../core/index.ts'
import type { MeshNodeInit } from '../mesh/index.ts'
import { type EarlyStart, startEarly } from './early/index.ts'
import {
  GgufController,
  LlmController,
  WllamaEngine,
  libp2pTaskTransport,
  orchestratorService,
  remotePlanner,
  servePlans,
  OrchestratorError,
  parseLlmRuns,
  type Orchestrator,
  type TaskRequest
} from '../orchestrator/index.ts'
import { AppCatalog, OutcomeStats, RuntimeExecutor, libp2pStreamHost, meshPeerDirectory } from './adapters.ts'
import { journalTask, planSaved } from './task-journal.ts'
import { appTrust } from './trust-wiring.ts'
import { appLearning } from './learning-wiring.ts'
import { taskHistory } from './task-history.ts'
import { IndexedDbTaskMedia, MemoryTaskMedia } from './task-media.ts'
import { agentListing } from './agent-listing.ts'
import { donation } from './donation.ts'
import { presencePublisher } from './presence.ts'
import { agentPublisher } from './publish.ts'
import { taskTracking } from './task-tracking.ts'
import { taskTracing } from './task-tracing.ts'
import { toolWiring } from './tool-wiring.ts'
import { activityLog } from './activity-log.ts'
import { appMetrics } from './metrics-wiring.ts'
import { workflows as workflowsService } from './services/workflows.ts'
import { taskResume } from './services/task-resume.ts'
import { MemoryRunLocks, WebRunLocks } from './services/run-locks.ts'
import { IndexedDbAgentStore, MemoryAgentStore, bundledAgentsRetrying, createAgentRuntime, defaultWorkerCount, publishLocal } from '../runtime/index.ts'

const log = logger('app')
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
  /** Where the profile's signing key is kept. Default: IndexedDB when persisting, else memory (the terminal peer keeps it in a file). */
  keyStore?: KeyStore
  /**
   * A mesh node and identity already started by `startEarly` (the tab's boot starts them
   * before the rest of the app has loaded: issue 11, join time). Its `mesh`, `persist` and
   * `keyStore` then take the place of those options here. Default: started here.
   */
  early?: EarlyStart
}

/** Start a mesh peer in this tab (or Node) and return its API. */
export async function createZeroState(options: ZeroStateOptions = {}): Promise<ZeroStateApi> {
  // The node and the identity first: they are all a join needs (started by the boot when it could).
  const early = options.early ?? startEarly(options)
  const persist = early.persist
  // Subscribers (the UI) hear of changes at most every NOTIFY_EVERY_MS: a busy tab emits
  // thousands of task events a second, and a repaint per event cost more than the tasks.
  const changes = new ChangeNotifier({ everyMs: NOTIFY_EVERY_MS })
  const changed = (): void => {
    changes.changed()
  }
  const unsubscribes: Array<() => void> = []

  // One metrics registry per peer (issue 15): the one libp2p's and gossipsub's metrics already report into.
  const metered = appMetrics({ registry: early.registry })
  const mesh = early.mesh
  const [identity] = await Promise.all([early.identity, early.started])
  unsubscribes.push(listen(mesh, 'change', changed))
  const libp2p = mesh.libp2p

  // wllama runs llm-prompt agents once a GGUF model is loaded (issue 14); its worker starts only then.
  const wllama = new WllamaEngine()
  // The model as Settings shows it (progress, speed, why it cannot run); the runtime runs llm-prompt agents on it.
  const gguf = new GgufController(wllama, changed)
  // Tools agents call (issue 14): over the memory layer and orchestrator made below, read at call time.
  const tools = toolWiring({
    memory: { get: (ns, key) => memory.memory.get(ns, key), set: (ns, key, value) => memory.memory.set(ns, key, value) },
    submit: () => (built == null ? undefined : (request) => built!.submit(request)),
    storage: persist ? undefined : null,
    changed
  })
  const runtime = createAgentRuntime({
    tools: tools.host,
    workers: defaultWorkerCount(),
    store: persist ? new IndexedDbAgentStore() : new MemoryAgentStore(),
    llm: () => (gguf.models().length > 0 ? gguf : undefined)
  })
  const memory: MemoryLayer = createMemoryLayer({
    identity,
    transport: new Libp2pSyncTransport(libp2p, { strikes: mesh.strikes }),
    persistence: persist ? 'indexeddb' : 'none',
    strikeEvents: mesh.strikes,
    onPeerRejected: (peer) => {
      mesh.strikes.strike(peer, 'sync', 'RejectedUpdate')
    }
  })
  await memory.start()
  /** A record in this profile's audit log (tasks submitted and served); a failure to write one is counted, never thrown. */
  const audit = (entry: AuditEntry): void => memory.audit.note(entry)

  const stats = new OutcomeStats()
  const catalog = new AppCatalog(memory.registry, stats)
  unsubscribes.push(memory.registry.subscribe(changed), memory.memory.subscribe(changed), catalog.subscribe(changed), stats.subscribe(changed))
  const executor = new RuntimeExecutor(runtime, catalog, (id) => {
    memory.registry.addHolder(id, mesh.peerId)
  })
  await executor.init()

  const host = libp2pStreamHost(libp2p)
  const transport = libp2pTaskTransport()({ host, strikes: mesh.strikes })
  const peers = meshPeerDirectory(mesh)
  const llm = new LlmController(changed)
  // Verification, reputation and credits (issue 12).
  const trust = appTrust({ mesh, identity, catalog, registry: memory.registry, registryDoc: () => memory.doc(REGISTRY_DOC), persist })
  await trust.start()
  unsubscribes.push(trust.subscribe(changed))
  // Routing learns from outcomes (bandit, A/B, anomalies); its health checks run through the orchestrator built next.
  let built: Orchestrator | undefined
  const learning = appLearning({ trust, registry: memory.registry, catalog, executor, peers, orchestrator: () => built, persist })
  // Reputation, quality and run times come from trust (verified, persisted, shared), not this tab's counts alone.
  // Traces (issue 15): this tab's spans and the signed spans donors send back; it signs the spans it serves with the profile key.
  const tracer = new Tracer({ peer: mesh.peerId, identity })
  const tracing = taskTracing(tracer)
  // Filled below once the bundled agents and the registry's saved ones are in the catalog: a task submitted before waits for it.
  const catalogFilled = Promise.withResolvers<void>()
  const orchestrator = orchestratorService()({
    catalogReady: catalogFilled.promise,
    tracer,
    catalog,
    peers,
    transport,
    executor,
    blobs: executor,
    outcomes: metered.outcomes(stats),
    planners: [llm.planner(), remotePlanner()({ host, peers, strikes: mesh.strikes })],
    trust,
    spending: trust.spending,
    routing: trust,
    learning,
    durable: (id) => planSaved(memory.journal, id),
    served: (step) =>
      audit({ kind: 'task.served', peer: step.peer, subject: `${step.taskId}/${step.stepId}`, why: `agent ${step.agentId.slice(0, 16)}: ${step.outcome}` })
  })
  built = orchestrator
  metered.attach({ orchestrator, runtime, executor, mesh, libp2p })
  await orchestrator.start()

  const presence = presencePublisher()({ mesh, catalog, executor, pool: runtime, llm, llmRunner: gguf, publicKey: identity.publicKey })
  // Tried again while the failure may pass (bundledAgentsRetrying); stop() ends the tries.
  const bundledTries = new AbortController()
  const bundled = bundledAgentsRetrying({
    baseUrl: options.agentsBaseUrl,
    signal: bundledTries.signal,
    onRetry: (err, attempt) => log.warn('the bundled agents could not be listed (try %d): %s', attempt, err.message)
  })
    .then((list) => {
      catalog.setBundled(list)
      presence.refresh()
    })
    .catch((err: unknown) => {
      log.error('bundled agents unavailable: %s', (err as Error).message)
    })
  presence.start()

  const listing = agentListing()({
    catalog,
    stats,
    outcomes: trust,
    appPeers: () => [
      mesh.peerId,
      ...mesh
        .peers()
        .filter((p) => !p.relay)
        .map((p) => p.id)
    ]
  })
  // Byte outputs of this profile's tasks (images, audio, files), kept beside the journal (issue 14).
  const taskMedia = persist ? new IndexedDbTaskMedia() : new MemoryTaskMedia()
  const runLocks = WebRunLocks.available() ?? new MemoryRunLocks()
  // Resumed tasks and runs wait (bounded) for the bundled agents and the registry's persisted ones.
  const catalogSettled = Promise.all([bundled, catalog.settled()])
  catalogSettled.then(
    () => catalogFilled.resolve(),
    () => catalogFilled.resolve()
  )
  const resume = taskResume()({
    journal: memory.journal,
    locks: runLocks,
    orchestrator,
    catalog,
    record: (handle, request, opts) => journalTask(memory.journal, handle, request, undefined, { ...opts, media: taskMedia }),
    changes,
    catalogReady: catalogSettled
  })
  const tasks = taskTracking()({
    orchestrator: {
      submit(request) {
        const handle = tracing.track(orchestrator.submit(request))
        audit({ kind: 'task.submitted', subject: handle.id, why: submittedWhat(request) })
        return handle
      }
    },
    journal: { record: (handle, request, opts) => journalTask(memory.journal, handle, request, undefined, { ...opts, media: taskMedia }) },
    changes,
    locks: resume
  })
  const history = taskHistory(memory.journal, { media: taskMedia })
  const journalDoc = memory.doc(JOURNAL_DOC)
  if (journalDoc == null) throw new OrchestratorError('the journal doc is not open')
  const flows = workflowsService()({
    journalDoc,
    saved: () => memory.flush(),
    catalog,
    orchestrator,
    memory: memory.memory,
    publicKey: identity.publicKey,
    changes,
    locks: runLocks,
    catalogReady: catalogSettled
  })
  const donations = donation()({ runtime, orchestrator, executor, tasks, bundled, presence, changes })
  const publisher = agentPublisher()({
    packages: { publish: (bundle) => publishLocal(runtime.store, identity, bundle) },
    registry: memory.registry,
    executor,
    catalog,
    listing,
    bundled,
    presence,
    changes,
    peerId: mesh.peerId
  })

  // Start-up, relay, peers and donation as info records for the Logs page (issue 15).
  const stopActivity = activityLog({ mesh, publicKey: identity.publicKey, donation: donations, changes })
  await donations.restore(options.donate)
  flows.start()
  resume.resumeAll()
  let stopLlmService: (() => Promise<void>) | undefined
  void llm.probe().then(async () => {
    if (llm.state().state !== 'unavailable') stopLlmService = await servePlans(host, llm.current, { strikes: mesh.strikes })
  })

  const api: ZeroStateApi = {
    ready: mesh.ready,
    peerId: mesh.peerId,
    publicKey: identity.publicKey,
    peers: () =>
      mesh.peers().map((p) => {
        const r = trust.reputation(p.id)
        const models = p.capabilities.length > 0 ? parseLlmRuns(p.capabilities) : []
        return r == null && models.length === 0 ? p : { ...p, ...(r != null ? { reputation: r.score } : {}), ...(models.length > 0 ? { models } : {}) }
      }),
    reputation: (peerId) => trust.reputation(peerId),
    ...trust.api,
    ping: (peerId) => mesh.ping(peerId),
    relayStatus: () => mesh.status,
    donate: (opts) => donations.donate(opts),
    donation: () => donations.state(),
    region: () => presence.region(),
    setRegion: (region) => {
      presence.setRegion(region)
    },
    agents: {
      list: (filter) => listing.list(filter),
      get: (id) => listing.get(id),
      publish: (bundle) => publisher.publish(bundle),
      retract: (id) => memory.registry.retract(id),
      async run(id, input, opts) {
        const pkg = await executor.package(id)
        if (pkg == null) throw new OrchestratorError(`agent ${id} is not available on this peer`)
        return await runtime.run(pkg, input, opts)
      }
    },
    submit: (request) => tasks.submit(request),
    // The run's root span, bound to its id before its first step: `exportTrace(runId)` holds every step.
    runWorkflow: (yaml, input) => tracing.trackRun(flows.runWorkflow(yaml, input)),
    approve: (taskId, stepId, decision) => flows.runs.approve(taskId, stepId, decision),
    tasks: () =>
      [...history.tasks(orchestrator.tasks()).map((t) => ({ ...t, kind: 'task' as const, name: t.description })), ...flows.summaries()].sort(
        (a, b) => b.createdAt - a.createdAt
      ),
    task: (id) => tasks.task(id) ?? resume.task(id) ?? flows.runs.task(id) ?? history.task(id),
    workflows: flows.api,
    taskRequest: (id) => history.request(id),
    trace: (taskId) => tracing.trace(taskId),
    exportTrace: (taskId) => tracing.exportTrace(taskId),
    memory: {
      get: (ns, key) => memory.memory.get(ns, key),
      set: (ns, key, value) => memory.memory.set(ns, key, value),
      keys: (ns) => memory.memory.keys(ns),
      delete: (ns, key) => memory.memory.delete(ns, key),
      namespaces: () => memory.memory.namespaces(),
      createNamespace: (ns, opts) => memory.memory.createNamespace(ns, opts),
      grant: (ns, publicKey) => memory.memory.grant(ns, publicKey),
      revoke: (ns, publicKey) => memory.memory.revoke(ns, publicKey)
    },
    tools: tools.api,
    llm: {
      state: () => llm.state(),
      setModels: (models) => {
        llm.setModels(models)
      },
      async load(modelId) {
        await llm.load(modelId)
        presence.refresh()
      },
      async loadGguf(source, onProgress) {
        try {
          return await gguf.load(source, onProgress)
        } finally {
          presence.refresh()
        }
      },
      gguf: () => wllama.model,
      async unload() {
        await llm.unload()
        presence.refresh()
      },
      ggufState: () => gguf.state(),
      checkGguf: (source) => gguf.check(source),
      cancelGguf: () => {
        gguf.cancel()
      },
      async unloadGguf() {
        await gguf.unload()
        presence.refresh()
      }
    },
    metrics: () => ({
      ...mesh.metrics(),
      ...memory.metrics(),
      ...orchestrator.stats(),
      ...trust.stats(),
      ...flows.metrics(),
      'tasks.resumed': resume.resumed(),
      ...tools.host.stats(),
      'catalog.rejected': catalog.rejected,
      'runtime.completed': runtime.stats().completed,
      'runtime.failed': runtime.stats().failed,
      'runtime.llmContextExceeded': runtime.stats().errors.LlmContextExceededError ?? 0,
      'trace.started': tracer.stats.started,
      'trace.dropped': tracer.stats.dropped,
      'trace.foreignAccepted': tracer.stats.foreignAccepted,
      'trace.foreignRejected': tracer.stats.foreignRejected,
      'trace.bundlesSealed': tracer.stats.bundlesSealed,
      'trace.pending': tracer.pending(),
      ...Object.fromEntries(Object.entries(tracer.stats.rejectedBy).map(([why, n]) => [`trace.rejected.${why}`, n ?? 0])),
      ...metered.record()
    }),
    metricsSnapshot: () => metered.snapshot(),
    observability: () => ({ tracing: tracer.enabled, metrics: metered.registry.enabled }),
    setObservability: (opts) => {
      if (opts.tracing != null) tracer.enabled = opts.tracing === true
      if (opts.metrics != null) metered.registry.enabled = opts.metrics === true
    },
    audit: {
      list: (filter) => memory.audit.list(filter),
      verify: () => memory.audit.verify()
    },
    subscribe: (listener) => changes.subscribe(listener),
    mesh,
    runtime,
    registry: memory.registry,
    journal: memory.journal,
    orchestrator,
    delivered: (signal) => memory.delivered(signal),
    async stop() {
      bundledTries.abort()
      stopActivity()
      presence.stop()
      flows.stop()
      resume.stop()
      for (const off of unsubscribes) off()
      changes.cancel()
      await stopLlmService?.().catch(() => {})
      await wllama.unload().catch(() => {})
      learning.stop()
      await orchestrator.stop()
      await trust.stop()
      await memory.stop()
      await runtime.stop()
      await mesh.stop()
    }
  }
  return api
}

/** What a submitted task asked for, in a few words, for the audit log. */
function submittedWhat(request: TaskRequest): string {
  const what =
    request.agent != null ? `agent ${request.agent.slice(0, 16)}` : request.capabilities?.length ? request.capabilities.join(', ') : request.description
  return what.slice(0, 120)
}
