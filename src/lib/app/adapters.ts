/**
 * Adapters from the app's real modules to the orchestrator's narrow components:
 * the registry and bundled agents as an AgentCatalog, the runtime as a
 * LocalExecutor and AgentBlobStore, the mesh as a PeerDirectory and StreamHost,
 * and the outcome statistics that feed routing.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Libp2p } from '@libp2p/interface'
import type { MeshNode } from '../mesh/index.ts'
import type { Registry, RegistryEntry } from '../memory/index.ts'
import { ChangeNotifier, canonicalBytes, closedWhileOpening, closedWhileOpeningReason, verifyJson } from '../core/index.ts'
import {
  loadBundledAgent,
  parseManifest,
  sha256Hex,
  type AgentManifest,
  type AgentPackage,
  type AgentRuntime,
  type BundledAgent,
  type RunOptions
} from '../runtime/index.ts'
import type {
  AgentBlobStore,
  AgentCandidate,
  AgentCatalog,
  LocalExecutor,
  OutcomeSink,
  PeerDirectory,
  PeerSnapshot,
  ReputationSource,
  StepOutcome
} from '../orchestrator/index.ts'
import type { StreamHost } from '../orchestrator/dispatch/index.ts'

/** Per-agent outcomes this peer has seen: the learning signal routing uses. */
export class OutcomeStats implements OutcomeSink, ReputationSource {
  readonly #byAgent = new Map<string, { runs: number; successes: number; totalMs: number }>()
  #version = 0
  readonly #changes = new ChangeNotifier()

  record(o: StepOutcome): void {
    const s = this.#byAgent.get(o.agentId) ?? { runs: 0, successes: 0, totalMs: 0 }
    s.runs++
    if (o.success) {
      s.successes++
      s.totalMs += o.durationMs
    }
    this.#byAgent.set(o.agentId, s)
    this.#version++
    // At once, not coalesced: the catalog's version (the router's index key) must move with the outcome.
    this.#changes.notify()
  }

  of(agentId: string): { runs: number; successes: number; avgMs: number } | undefined {
    const s = this.#byAgent.get(agentId)
    return s == null ? undefined : { runs: s.runs, successes: s.successes, avgMs: s.successes > 0 ? s.totalMs / s.successes : 0 }
  }

  /** 0–5 from this peer's own outcomes (Laplace-smoothed success rate), when it has any. */
  agentReputation(agentId: string): number | undefined {
    const s = this.#byAgent.get(agentId)
    return s == null ? undefined : (5 * (s.successes + 1)) / (s.runs + 2)
  }

  get version(): number {
    return this.#version
  }
  /** Called at once after every recorded outcome; returns the unsubscribe function. */
  subscribe(l: () => void): () => void {
    return this.#changes.subscribe(l)
  }
}

/** One agent as the catalog knows it: from the registry or bundled with the app. */
export interface CatalogAgent {
  id: string
  manifest: AgentManifest
  author: string
  bundled: boolean
  holders: string[]
  publishedAt?: number
  reputation?: number
}

/** Registry entries plus bundled agents, indexed for the router. */
export class AppCatalog implements AgentCatalog {
  readonly #registry: Registry
  readonly #stats: OutcomeStats
  #bundled: BundledAgent[] = []
  #version = 0
  #cache: { version: number; agents: CatalogAgent[] } | undefined
  /** Registry entry key+signature → whether its content id and manifest signature check out. */
  readonly #checked = new Map<string, boolean>()
  readonly #changes = new ChangeNotifier()
  #rejected = 0

  constructor(registry: Registry, stats: OutcomeStats) {
    this.#registry = registry
    this.#stats = stats
    registry.subscribe(() => {
      this.#version++
      this.#verifyLater()
    })
    stats.subscribe(() => {
      this.#version++
    })
    this.#verifyLater()
  }

  /** Checks run one after another (a change during a check is checked next, never twice at once). */
  #verifying: Promise<void> = Promise.resolve()
  #verifyLater(): void {
    this.#verifying = this.#verifying.then(
      () => this.#verifyNew(),
      () => this.#verifyNew()
    )
  }

  /**
   * Resolves once every registry entry known so far (the persisted ones right after a reload
   * included) has been verified into `list()`: an agent from the registry a resumed task or run
   * is pinned to is listed then. Bundled agents come separately (`setBundled`).
   */
  async settled(): Promise<void> {
    for (;;) {
      await this.#registry.settled()
      const verifying = this.#verifying
      await verifying.catch(() => {})
      if (verifying === this.#verifying) return
    }
  }

  /** Registry entries refused because their id or manifest signature did not match. */
  get rejected(): number {
    return this.#rejected
  }

  /**
   * The registry verifies who published an entry; this checks what was published:
   * the id must be the content id of (manifest, moduleSha256) and the manifest must
   * carry its author's signature, and that author must be the publisher.
   */
  async #verifyNew(): Promise<void> {
    let changed = false
    for (const e of this.#registry.list()) {
      const key = `${e.key}#${e.signature}`
      if (this.#checked.has(key)) continue
      const manifest = manifestOf(e)
      let ok = false
      if (manifest != null && manifest.author === e.author) {
        const { signature, ...body } = manifest
        const id = await sha256Hex(canonicalBytes({ manifest: body, moduleSha256: e.moduleSha256 }))
        ok = id === e.id && (await verifyJson(manifest.author, { manifest: body, moduleSha256: e.moduleSha256 }, signature))
      }
      if (!ok) this.#rejected++
      this.#checked.set(key, ok)
      changed = true
    }
    if (changed) {
      this.#version++
      this.#changes.notify()
    }
  }

  /** Called when verified entries change (after the async checks). */
  subscribe(l: () => void): () => void {
    return this.#changes.subscribe(l)
  }

  setBundled(agents: BundledAgent[]): void {
    this.#bundled = agents
    this.#version++
    this.#changes.notify()
  }
  isBundled(id: string): BundledAgent | undefined {
    return this.#bundled.find((b) => b.id === id)
  }
  version(): number {
    return this.#version
  }

  /** Every agent, registry entries verified by the registry and manifests re-validated. */
  agents(): CatalogAgent[] {
    if (this.#cache?.version === this.#version) return this.#cache.agents
    const seen = new Set<string>()
    const out: CatalogAgent[] = []
    for (const b of this.#bundled) {
      seen.add(b.id)
      out.push({ id: b.id, manifest: b.manifest, author: b.manifest.author, bundled: true, holders: [] })
    }
    for (const e of this.#registry.list()) {
      if (seen.has(e.id) || this.#checked.get(`${e.key}#${e.signature}`) !== true) continue
      const manifest = manifestOf(e)
      if (manifest == null) continue
      seen.add(e.id)
      out.push({ id: e.id, manifest, author: e.author, bundled: false, holders: e.holders, publishedAt: e.publishedAt, reputation: e.reputation })
    }
    this.#cache = { version: this.#version, agents: out }
    return out
  }

  get(id: string): CatalogAgent | undefined {
    return this.agents().find((a) => a.id === id)
  }

  list(capability?: string): readonly AgentCandidate[] {
    return this.agents()
      .filter((a) => capability == null || a.manifest.capabilities.includes(capability))
      .map((a) => {
        const s = this.#stats.of(a.id)
        return {
          id: a.id,
          name: a.manifest.name,
          version: a.manifest.version,
          description: a.manifest.description,
          capabilities: a.manifest.capabilities,
          abi: a.manifest.abi,
          ...(a.manifest.llm?.model != null ? { llm: a.manifest.llm.model } : {}),
          price: a.manifest.price,
          quality: s != null && s.runs > 0 ? (s.successes + 1) / (s.runs + 2) : a.reputation,
          avgMs: s != null && s.successes > 0 ? s.avgMs : undefined,
          holders: a.holders,
          author: a.author,
          bundled: a.bundled,
          runs: s?.runs ?? 0,
          successes: s?.successes ?? 0
        }
      })
  }
}

function manifestOf(e: RegistryEntry): AgentManifest | undefined {
  try {
    return parseManifest(e.manifest)
  } catch {
    return undefined
  }
}

/**
 * Calls a donor accepts per worker: the pool queues them, so a short queue keeps
 * workers busy between calls without making a slow donor hoard work.
 */
export const SLOTS_PER_WORKER = 8

/** Packages kept in memory by the executor (LRU). */
const PACKAGE_CACHE_SIZE = 32

/** The runtime and its store as the orchestrator's executor and blob store. */
export class RuntimeExecutor implements LocalExecutor, AgentBlobStore {
  readonly #runtime: AgentRuntime
  readonly #catalog: AppCatalog
  readonly #local = new Set<string>()
  readonly #onStored: (id: string) => void
  /** Recently used packages: the same bytes object lets the runtime skip re-verifying (hashing) them. */
  readonly #packages = new Map<string, AgentPackage>()
  #busy = 0

  constructor(runtime: AgentRuntime, catalog: AppCatalog, onStored: (id: string) => void = () => {}) {
    this.#runtime = runtime
    this.#catalog = catalog
    this.#onStored = onStored
  }

  /** Learn which agents the store already holds (call once at start). */
  async init(): Promise<void> {
    for (const e of await this.#runtime.store.list()) this.#local.add(e.id)
  }

  markLocal(id: string): void {
    this.#local.add(id)
  }
  get busy(): number {
    return this.#busy
  }

  has(agentId: string): boolean {
    return this.#local.has(agentId) || this.#catalog.isBundled(agentId) != null
  }

  /** Free call slots (SLOTS_PER_WORKER per worker): what the donor accepts and presence advertises. */
  freeWorkers(): number {
    return Math.max(0, this.#runtime.stats().workers * SLOTS_PER_WORKER - this.#busy)
  }

  async package(agentId: string): Promise<AgentPackage | undefined> {
    const hit = this.#packages.get(agentId)
    if (hit != null) {
      // Refresh its place in the LRU order.
      this.#packages.delete(agentId)
      this.#packages.set(agentId, hit)
      return hit
    }
    let pkg = await this.#runtime.store.get(agentId)
    if (pkg == null) {
      const bundled = this.#catalog.isBundled(agentId)
      if (bundled == null) return undefined
      pkg = await loadBundledAgent(bundled, this.#runtime.store)
      this.#local.add(agentId)
    }
    this.#packages.set(agentId, pkg)
    if (this.#packages.size > PACKAGE_CACHE_SIZE) this.#packages.delete(this.#packages.keys().next().value!)
    return pkg
  }

  async run(
    agentId: string,
    input: unknown,
    opts: { signal: AbortSignal; timeoutMs: number; onToken?: (text: string) => void; task?: RunOptions['task'] }
  ): Promise<{ output: unknown; ms: number }> {
    this.#busy++
    try {
      const pkg = await this.package(agentId)
      if (pkg == null) throw new Error(`agent ${agentId} is not held by this peer`)
      const r = await this.#runtime.run(pkg, coerceInput(pkg.manifest, input), {
        signal: opts.signal,
        timeoutMs: opts.timeoutMs,
        ...(opts.onToken != null ? { onToken: opts.onToken } : {}),
        ...(opts.task != null ? { task: opts.task } : {})
      })
      return { output: r.output, ms: r.ms }
    } finally {
      this.#busy--
    }
  }

  async get(agentId: string): Promise<Uint8Array | undefined> {
    return (await this.package(agentId))?.wasm
  }

  /** Store fetched bytes; the store verifies them against the manifest's content id. */
  async put(agentId: string, bytes: Uint8Array): Promise<void> {
    const agent = this.#catalog.get(agentId)
    if (agent == null) throw new Error(`agent ${agentId} is not in the registry`)
    await this.#runtime.store.put(agentId, agent.manifest, bytes)
    this.#local.add(agentId)
    this.#onStored(agentId)
  }
}

/**
 * A step's input comes from another agent's output. When the agent declares a
 * string input and gets structured data (e.g. keywords → hashing), it receives
 * the data as JSON text instead of failing.
 */
export function coerceInput(manifest: AgentManifest, input: unknown): unknown {
  const type = (manifest.input as { type?: unknown } | undefined)?.type
  // Bytes reach a WASI agent's stdin as they are; a json-v1 agent that reads a string gets them as UTF-8 text.
  if (input instanceof Uint8Array) return manifest.abi !== 'wasi-preview1' && type === 'string' ? new TextDecoder().decode(input) : input
  return type === 'string' && typeof input !== 'string' && input !== undefined ? JSON.stringify(input) : input
}

/** The mesh's peer book as the router's peer directory (relays excluded). */
export function meshPeerDirectory(mesh: MeshNode): PeerDirectory {
  return {
    peers(): PeerSnapshot[] {
      return mesh
        .peers()
        .filter((p) => !p.relay)
        .map((p) => ({
          id: p.id,
          rttMs: p.rttMs,
          freeWorkers: p.freeWorkers,
          region: p.region,
          donating: p.donating,
          capabilities: p.capabilities
        }))
    },
    self(): PeerSnapshot {
      const p = mesh.presence
      return {
        id: mesh.peerId,
        rttMs: 0,
        freeWorkers: p.freeWorkers ?? 0,
        ...(p.region != null ? { region: p.region } : {}),
        donating: p.donating ?? false,
        capabilities: p.capabilities ?? []
      }
    }
  }
}

/** libp2p as the task transport's stream host. Streams never run over limited relay circuits. */
export function libp2pStreamHost(node: Libp2p): StreamHost {
  return {
    peerId: node.peerId.toString(),
    async handle(protocol, handler) {
      await node.handle(
        protocol,
        (stream, connection) => {
          handler(stream, connection.remotePeer.toString())
        },
        { maxInboundStreams: 64 }
      )
    },
    async unhandle(protocol) {
      await node.unhandle(protocol)
    },
    async openStream(peer, protocol, opts) {
      try {
        return await node.dialProtocol(peerIdFromString(peer), protocol, { signal: opts?.signal })
      } catch (err) {
        throw closedWhileOpening(err) ? new Error(`the ${protocol} stream to ${peer} ${closedWhileOpeningReason(err)}`, { cause: err }) : err
      }
    }
  }
}
