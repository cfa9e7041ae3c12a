/**
 * The narrow interfaces the orchestrator needs from the rest of the app (the
 * js-libp2p "components" style): the registry, the peer book, reputation, the
 * task transport, the local runtime and the learning sink. Tests pass stubs; the
 * app adapts the real mesh node, runtime and Yjs registry to these.
 */
import type { RunOptions } from '../runtime/index.ts'

/** One agent as the router sees it (a projection of a registry entry). */
export interface AgentCandidate {
  /** Content id (64 hex) of the agent package. */
  id: string
  name: string
  version: string
  description?: string
  capabilities: readonly string[]
  /** Credits per run. */
  price: number
  /** 0..1, from the registry or learning; unknown = undefined (counted as 0.5). */
  quality?: number
  /** Typical run time in ms, if known (learning). */
  avgMs?: number
  /** sha-256 hex of the module bytes, to verify bytes fetched from peers. */
  moduleSha256?: string
  /** The agent's ABI; an `llm-prompt` agent runs only on a peer that advertises a loaded model (issue 14). */
  abi?: string
  /** What an `llm-prompt` agent needs of a model (its manifest's `llm.model`): the router sends it only to a peer advertising a model that fits. */
  llm?: { families?: readonly string[]; models?: readonly string[]; minContext?: number }
  /** Peers known to hold the agent's bytes (for agent-fetch). */
  holders?: readonly string[]
  /** The publisher's key (registry entries). */
  author?: string
  /**
   * Ships with the app (every app peer holds it). `false` for registry entries: the
   * router then routes it only if a known peer holds it and ranks it by its author's
   * trust (route/trust.ts). Undefined: the catalog vouches for it (tests, embedders).
   */
  bundled?: boolean
  /** Attempts this peer has seen the agent make, and how many succeeded (learning). */
  runs?: number
  successes?: number
}

/** The agents on offer (the registry). */
export interface AgentCatalog {
  /** Agents offering `capability`, or all agents. Must not be mutated by the caller. */
  list(capability?: string): readonly AgentCandidate[]
  /** Changes whenever the list changes; lets the router keep its index between calls. */
  version?(): number
}

/** One peer as the router sees it. */
export interface PeerSnapshot {
  id: string
  /** Round trip on the current connection; 0 for this peer itself. */
  rttMs?: number
  /** Workers free for donated tasks right now. */
  freeWorkers: number
  region?: string
  donating: boolean
  capabilities: readonly string[]
}

/** The peers we know (the peer book), including this peer itself when it donates. */
export interface PeerDirectory {
  peers(): readonly PeerSnapshot[]
  /**
   * This peer as the others see it (its own presence: what it advertises, e.g. a loaded language
   * model), when it has one. A step that no other peer can run falls back to this peer with these
   * capabilities; without it, with none (an llm-prompt step then cannot run here).
   */
  self?(): PeerSnapshot | undefined
}

/**
 * What routing reads of verification and reputation (issue 12; trust/'s `TrustService` provides it).
 * Unknown is a prior, never zero.
 */
export interface RoutingTrust {
  /** 0..1 Beta mean of the user behind `peerId` on `agentId` (overall when omitted), shared statements included: 0.5 when nothing is known. */
  userScore(peerId: string, agentId?: string): number
  /** Verified success rate of an agent (wrong and schema-invalid results count against it), 0..1, or undefined when never checked. */
  agentQuality(agentId: string): number | undefined
  /** Mean measured run time of accepted results of `agentId` (ms), or undefined. */
  agentRunMs(agentId: string): number | undefined
  /** Verified outcomes of `agentId` over every user this profile checked (persisted), or undefined when never checked. */
  agentOutcomes(agentId: string): { valid: number; invalid: number } | undefined
  /** The user (profile key) behind a peer; a peer of unknown user is its own user. Optional: learning flags users with it. */
  userOf?(peerId: string): string
}

/** Reputation of agents, 0..5 (the vision's `overall_score`); undefined when unknown. */
export interface ReputationSource {
  agentReputation(agentId: string): number | undefined
}

/** Runs an agent on this peer (the WASM runtime behind it). */
export interface LocalExecutor {
  /** True when this peer has the agent's manifest and bytes and can run it now. */
  has(agentId: string): boolean
  /** Run the agent; rejects when it fails, times out or the signal aborts. */
  run(
    agentId: string,
    input: unknown,
    opts: { signal: AbortSignal; timeoutMs: number; onToken?: (text: string) => void; task?: RunOptions['task'] }
  ): Promise<{ output: unknown; ms: number }>
  /** Free workers right now, running jobs already deducted (the donor declines with `full` at 0). */
  freeWorkers(): number
}

/** Agent module bytes stored on this peer, served to and fetched from peers. */
export interface AgentBlobStore {
  get(agentId: string): Promise<Uint8Array | undefined>
  /** Store verified bytes (the caller has checked the hash). */
  put(agentId: string, bytes: Uint8Array): Promise<void>
}

/** What happened on one step attempt; consumed by the learning system (vision §3). */
export interface StepOutcome {
  taskId: string
  stepId: string
  agentId: string
  peerId: string
  capabilities: readonly string[]
  attempt: number
  success: boolean
  /** Wall time of the attempt as the submitter saw it. */
  durationMs: number
  cost: number
  errorName?: string
  errorMessage?: string
  inputSize: number
  outputSize: number
  at: number
}

/** Receives every step outcome. Must not throw (errors are logged and dropped). */
export interface OutcomeSink {
  record(outcome: StepOutcome): void
}

/** A sink that drops outcomes. */
export const NULL_OUTCOME_SINK: OutcomeSink = { record() {} }
