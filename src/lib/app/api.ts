/**
 * The automation contract (shared/design/API.md), extended: the type of
 * `window.zerostate` and of what `createZeroState()` returns.
 */
import type { MeshNode, PeerInfo, RelayStatus } from '../mesh/index.ts'
import type { RegionState } from './presence.ts'
import type { AgentManifest, AgentRuntime, RunResult, UnsignedManifest } from '../runtime/index.ts'
import type { AuditRecord, AuditVerification, NamespaceInfo, Registry, Journal } from '../memory/index.ts'
import type {
  AdvertisedModel,
  Credits,
  GgufLoadSource,
  GgufSource,
  GgufState,
  LlmProgress,
  LlmState,
  Orchestrator,
  Receipt,
  SpendingState,
  TaskHandle,
  TaskRequest,
  TaskSummary,
  WllamaModel
} from '../orchestrator/index.ts'
import type { WorkflowHandle } from './services/workflow-runs.ts'
import type { WorkflowsApi } from './services/workflows.ts'
import type { TaskTrace } from './task-tracing.ts'
import type { ToolsApi } from './tool-wiring.ts'
import type { MetricsSnapshot } from '../core/index.ts'

export type { GgufState, LlmState }

/** An agent as the app lists it: from the mesh registry, or bundled with the app. */
export interface AgentEntry {
  id: string
  name: string
  version: string
  description: string
  capabilities: string[]
  abi: string
  /** Credits per call. */
  price: number
  /** Author's public key (`ed25519:…`). */
  author: string
  manifest: AgentManifest
  /** Bundled with the app (every peer has it) rather than published by a user. */
  bundled: boolean
  publishedAt?: number
  /** Peers that hold its bytes; for a bundled agent, this peer and every connected peer running the app. */
  holders: string[]
  /** 0–1 mean of reputation records, when any. */
  reputation?: number
  /** Outcomes seen by this peer: runs, successes, mean ms. */
  stats?: { runs: number; successes: number; avgMs: number }
}

/** Filter of `agents.list`. */
export interface AgentFilter {
  capability?: string
  author?: string
  text?: string
  minReputation?: number
}

/** Donation state of this tab. */
export interface DonationState {
  enabled: boolean
  /** Workers agents run on (Settings' count). */
  workers: number
  maxWorkers: number
  /** Agent calls running in this tab now (its own steps and other peers'). */
  busy: number
  /** Steps this tab ran for other peers since the page opened (on the donor side). */
  served: number
  /** Tasks submitted from this tab that completed (its own, not other peers'). */
  completed: number
}

/** `window.zerostate`. */
export interface ZeroStateApi {
  /** Resolves once the node has started and has reached the relay or a peer. */
  ready: Promise<void>
  peerId: string
  /** The user's long-lived signing key (`ed25519:…`), the same in every tab of this profile. */
  publicKey: string

  // mesh
  /**
   * Connected peers; `reputation` (0..1) is what this profile knows of each peer's user, when anything;
   * `models`, the language models a peer advertises (read from its `capabilities`), when it has any.
   */
  peers(): Array<PeerInfo & { reputation?: number; models?: AdvertisedModel[] }>

  // trust and credits (issue 12)
  /** What this profile knows of the user behind a peer (by that user's profile key), or undefined. Score 0..1. */
  reputation(peerId: string): { score: number; valid: number; invalid: number } | undefined
  /** This profile's ledger: earned (receipts held), spent (receipts issued), balance, what it may still spend, the receipts. */
  credits(): Credits
  /** Trust details for the pages: users this profile knows, and a receipt check anyone can run. */
  trust: TrustApi
  /** This profile's spending limits and what it spent today (a task over them is refused before it runs). */
  spending(): SpendingState
  /**
   * Change the limits, saved for this profile: `allowance` (credits it may spend beyond what it earned,
   * default 10), `dailyBudget` (credits per local day; `null` removes it). Throws RangeError on a bad value.
   */
  setSpending(limits: { allowance?: number; dailyBudget?: number | null }): SpendingState
  ping(peerId: string): Promise<number>
  relayStatus(): RelayStatus

  // donating compute
  donate(opts: { enabled: boolean; workers?: number }): Promise<void>
  donation(): DonationState

  /** This tab's region (what presence advertises) and where it comes from. */
  region(): RegionState
  /** Choose the region (`REGIONS` id; `null` = from the time zone): saved per profile, advertised at once. */
  setRegion(region: string | null): void

  // agents
  agents: {
    list(filter?: AgentFilter): AgentEntry[]
    get(id: string): AgentEntry | undefined
    /** Validate, sign with this profile's key, store locally and publish to the mesh registry. */
    publish(bundle: { manifest: UnsignedManifest | AgentManifest; wasm: Uint8Array }): Promise<AgentEntry>
    /** Withdraw one of this profile's agents from the registry. */
    retract(id: string): Promise<void>
    /** Run an agent in this tab's sandbox (no routing). */
    run(id: string, input: unknown, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<RunResult>
  }

  // tasks and workflows
  /**
   * Plan and run a task. Its handle's `done` settles once the task's end is also saved in this
   * profile's journal (at most 2 s later on a stuck disk): a tab reloaded right after finds it finished.
   */
  submit(request: TaskRequest): TaskHandle
  /**
   * Run a workflow (WORKFLOWS.md). The handle's `done` rejects with `WorkflowValidationError`
   * (every error with its line and column) before any step runs when the document or the input
   * is wrong. The run is journalled and resumed after a reload, by exactly one tab of the profile.
   */
  runWorkflow(yaml: string, input?: unknown): WorkflowHandle
  /** Decide an approval a workflow run waits for (from any tab of the profile). */
  approve(taskId: string, stepId: string, decision: { approved: boolean; comment?: string; value?: unknown }): Promise<void>
  /** This profile's tasks and workflow runs (from the journal: also those from before a reload), newest first. */
  tasks(): TaskListEntry[]
  /**
   * The handle of a task: live for one submitted from this tab; for a past task of this
   * profile (from its journal) a read-only handle (`past: true`) that replays the recorded
   * plan and steps and whose `done` settles with the recorded result or error. For a workflow
   * run (`kind: 'workflow'`), a handle that follows its journal in any tab, live while it runs.
   */
  task(id: string): TaskHandle | WorkflowHandle | undefined
  /** Saved workflows and validation (WORKFLOWS.md "API"). */
  workflows: WorkflowsApi
  /** The request a task of this profile was submitted with (for "Run again"); `inputDropped` when its input was too large to keep. */
  taskRequest(id: string): (TaskRequest & { inputDropped?: boolean }) | undefined

  // shared memory
  memory: {
    get(namespace: string, key: string): unknown
    set(namespace: string, key: string, value: unknown): Promise<void>
    keys(namespace: string): string[]
    delete(namespace: string, key: string): Promise<void>
    namespaces(): NamespaceInfo[]
    createNamespace(namespace: string, opts: { mode: 'shared' | 'private' | 'encrypted'; key?: string; writers?: string[] }): Promise<void>
    /** Owner only: let a profile key (`ed25519:…`, or `'*'` for anyone) write to `namespace`. */
    grant(namespace: string, publicKey: string): Promise<void>
    /** Owner only: stop a profile key writing to `namespace` (its values stop counting). */
    revoke(namespace: string, publicKey: string): Promise<void>
  }

  /** Tools agents call (issue 14): the tools, and this donor's grants (Settings → Tools). */
  tools: ToolsApi

  // planning with an in-browser LLM
  llm: {
    state(): LlmState
    /** Replace the model list (self-hosted weights by URL). */
    setModels(models: LlmState['models']): void
    /** Download and load a model (WebGPU only). */
    load(modelId: string): Promise<void>
    /**
     * Load a GGUF model into wllama (llama.cpp in WebAssembly, any CPU; issue 14) from a URL (cached)
     * or bytes, with progress. This tab then runs llm-prompt agents and advertises `llm` with the model.
     */
    loadGguf(source: GgufSource, onProgress?: (p: LlmProgress) => void): Promise<WllamaModel>
    /** The GGUF model loaded in wllama, if any. */
    gguf(): WllamaModel | undefined
    /** Unload the WebLLM planning model (its weights stay cached). */
    unload?(): Promise<void>
    /**
     * The GGUF model this tab donates, as Settings shows it: loading (with progress), ready (with its
     * measured tokens per second), or why it cannot run here (`reason`, `reasonName`).
     */
    ggufState?(): GgufState
    /**
     * Check a GGUF model (GGUF, not too big here, reachable) without loading it: resolves with its size
     * in bytes, rejects with GgufFormatError, ModelTooLargeError or ModelUnreachableError.
     */
    checkGguf?(source: GgufLoadSource): Promise<number>
    /** Stop a GGUF load under way. */
    cancelGguf?(): void
    /** Unload the GGUF model: this tab stops running llm-prompt agents and advertising `llm` (the weights stay cached). */
    unloadGguf?(): Promise<void>
  }

  /**
   * The trace of a task or workflow run of this tab (issue 15, W3C ids): its own spans (run, planning,
   * steps, routing, dispatch attempts, verification) and the spans each donor signed and sent back with
   * its result, verified (those that fail are dropped and counted in metrics `trace.foreignRejected`).
   */
  trace(taskId: string): Promise<TaskTrace>
  /** The same trace as OTLP/JSON (an ExportTraceServiceRequest), for Jaeger or any OTLP tool. */
  exportTrace(taskId: string): Promise<unknown>
  /**
   * Counters and gauges by name, as before; since issue 15 also this peer's registry (app
   * metrics `zs_*`, libp2p's and gossipsub's) by series key, and per histogram series
   * `<key>.count`, `.sum`, `.p50`, `.p95`, `.p99`.
   */
  metrics(): Record<string, number>
  /** The peer's metrics registry now, histograms with their buckets (the Dashboard samples it). */
  metricsSnapshot(): MetricsSnapshot
  /**
   * Whether this tab records traces and metrics (issue 15; both on by default, for this tab's
   * life): `setObservability({ tracing: false })` stops new traces here (tasks submitted and
   * steps served), `{ metrics: false }` stops the app's metric updates. bench:observe compares both.
   */
  observability(): { tracing: boolean; metrics: boolean }
  setObservability(opts: { tracing?: boolean; metrics?: boolean }): void
  /**
   * This profile's audit log (issue 11), newest first: strikes and blocks (which peer, when,
   * why), agents published and retracted, namespace grants and revokes. Each record is signed
   * by the profile's key and holds the hash of its tab's previous record; bounded (newest 1,000).
   */
  audit: {
    list(filter?: { kind?: string; peer?: string; limit?: number }): AuditRecord[]
    /** Check every signature and hash link. */
    verify(): Promise<AuditVerification>
  }
  /** Subscribe to any change (peers, registry, memory, tasks, donation) — for the UI. */
  subscribe(listener: () => void): () => void

  // the parts, for power users and tests
  readonly mesh: MeshNode
  readonly runtime: AgentRuntime
  readonly registry: Registry
  readonly journal: Journal
  readonly orchestrator: Orchestrator
  /**
   * Resolves once what this peer wrote to the shared docs (a published agent, memory) has been
   * written to at least one other peer; await it before a short-lived peer exits (the terminal's
   * `publish`). Rejects when `signal` aborts first.
   */
  delivered(signal?: AbortSignal): Promise<void>
  stop(): Promise<void>
}

/** A user (profile key) as this profile knows it, overall or on one agent (issue 12). */
export interface UserReputation {
  /** The profile key (`ed25519:…`). */
  user: string
  /** 0..1 Beta posterior mean: own observations in full, others' signed statements weighted and capped. */
  score: number
  valid: number
  invalid: number
  /** Mean run time and price of its accepted results seen here. */
  avgMs?: number
  avgCost?: number
  /** On one agent: consecutive results that agreed with other users, and whether it is trusted (spot-checked only). */
  streak?: number
  trusted?: boolean
  /** Its peers connected now (their key proven). */
  peers: string[]
  /** This profile itself. */
  self: boolean
}

/** `window.zerostate.trust`. */
export interface TrustApi {
  /** Users with any verified result known here (overall, or on `agentId`), best first; connected users too when overall. */
  users(agentId?: string): UserReputation[]
  /** Check a receipt as anyone can (schema, signer's signature); rejects with `InvalidReceiptError` saying why. */
  verifyReceipt(receipt: unknown): Promise<Receipt>
}

/** One line of `tasks()`: a submitted task or a workflow run. */
export interface TaskListEntry extends Omit<TaskSummary, 'status'> {
  kind: 'task' | 'workflow'
  /** The workflow's name, or the task's description. */
  name: string
  status: TaskSummary['status'] | 'waiting'
}

export type { PeerInfo, RegionState, RelayStatus, TaskHandle, TaskRequest, TaskSummary, WorkflowHandle, WorkflowsApi }
