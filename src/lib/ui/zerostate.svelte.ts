/**
 * Reactive bridge from the ZeroState API to Svelte: components read `app.peers`,
 * `app.status`… and re-render when the mesh changes (createSubscriber, no $effect copies).
 */
import { createSubscriber } from 'svelte/reactivity'
import { getContext, setContext } from 'svelte'
import type { RelayStatus } from '$lib/index'
import type { AgentEntry, AgentFilter, DonationState, GgufState, LlmState, RegionState, TaskListEntry, ZeroStateApi } from '$lib/index'
import type { NamespaceInfo } from '$lib/index'
import type { Credits, SpendingState, UserReputation } from '$lib/index'

/** Parts of the API a page may depend on; `supports()` says whether this build's object has them. */
export type Feature = 'agents' | 'tasks' | 'memory' | 'donation' | 'llm' | 'trust'

const FEATURE_PROBES: Record<Feature, (api: Record<string, unknown>) => boolean> = {
  agents: (a) => typeof (a.agents as Record<string, unknown> | undefined)?.list === 'function',
  tasks: (a) => typeof a.submit === 'function' && typeof a.tasks === 'function',
  memory: (a) => typeof (a.memory as Record<string, unknown> | undefined)?.namespaces === 'function',
  donation: (a) => typeof a.donation === 'function' && typeof a.donate === 'function',
  llm: (a) => typeof (a.llm as Record<string, unknown> | undefined)?.state === 'function',
  trust: (a) =>
    typeof a.credits === 'function' && typeof a.spending === 'function' && typeof (a.trust as Record<string, unknown> | undefined)?.users === 'function'
}

const EMPTY_DONATION: DonationState = { enabled: false, workers: 0, maxWorkers: 0, busy: 0, served: 0, completed: 0 }
const EMPTY_LLM: LlmState = { state: 'unknown', models: [] }

export class ZeroStateView {
  /** The full API. An object from an older build may lack parts: pages check `supports(feature)` first. */
  readonly api: ZeroStateApi
  readonly #subscribe: () => void

  constructor(api: ZeroStateApi) {
    this.api = api
    this.#subscribe = createSubscriber((update) => api.subscribe(update))
  }

  /** Connected peers; `reputation` (0..1) is what this profile knows of each one's user. */
  get peers(): ReturnType<ZeroStateApi['peers']> {
    this.#subscribe()
    return this.api.peers()
  }
  get status(): RelayStatus {
    this.#subscribe()
    return this.api.relayStatus()
  }
  get metrics(): Record<string, number> {
    this.#subscribe()
    return this.api.metrics()
  }
  get peerId(): string {
    return this.api.peerId
  }
  /** This profile's signing key, when the API has one. */
  get publicKey(): string | undefined {
    return this.api.publicKey
  }

  /** Whether the API object has this part (older builds do not). */
  supports(feature: Feature): boolean {
    return FEATURE_PROBES[feature](this.api as unknown as Record<string, unknown>)
  }

  /** Agents matching `filter` (registry and bundled), reactive. */
  agents(filter?: AgentFilter): AgentEntry[] {
    this.#subscribe()
    return this.supports('agents') ? this.api.agents.list(filter) : []
  }

  /** One agent by id, reactive. */
  agent(id: string): AgentEntry | undefined {
    this.#subscribe()
    return this.supports('agents') ? this.api.agents.get(id) : undefined
  }

  /** Tasks of this tab, newest first. */
  get tasks(): TaskListEntry[] {
    this.#subscribe()
    if (!this.supports('tasks')) return []
    return [...this.api.tasks()].sort((a, b) => b.createdAt - a.createdAt)
  }

  /** Memory namespaces this profile knows. */
  get namespaces(): NamespaceInfo[] {
    this.#subscribe()
    return this.supports('memory') ? this.api.memory.namespaces() : []
  }

  /** Keys of a namespace, sorted. */
  keys(namespace: string): string[] {
    this.#subscribe()
    return this.supports('memory') ? [...this.api.memory.keys(namespace)].sort() : []
  }

  /** A memory value. */
  value(namespace: string, key: string): unknown {
    this.#subscribe()
    return this.supports('memory') ? this.api.memory.get(namespace, key) : undefined
  }

  /** Donation state of this tab. */
  get donation(): DonationState {
    this.#subscribe()
    return this.supports('donation') ? this.api.donation() : EMPTY_DONATION
  }

  /** This tab's region and where it comes from; undefined when this build's API has no region setting. */
  get region(): RegionState | undefined {
    this.#subscribe()
    return typeof (this.api as Partial<ZeroStateApi>).region === 'function' ? this.api.region() : undefined
  }

  /** This profile's ledger (receipts earned and issued), or undefined when this build has no credits. */
  get credits(): Credits | undefined {
    this.#subscribe()
    return this.supports('trust') ? this.api.credits() : undefined
  }

  /** Spending limits and today's spending, or undefined when this build has none. */
  get spending(): SpendingState | undefined {
    this.#subscribe()
    return this.supports('trust') ? this.api.spending() : undefined
  }

  /** Users this profile knows, overall or on one agent (best first). */
  users(agentId?: string): UserReputation[] {
    this.#subscribe()
    return this.supports('trust') ? this.api.trust.users(agentId) : []
  }

  /** What this profile knows of the user behind a peer. */
  reputation(peerId: string): { score: number; valid: number; invalid: number } | undefined {
    this.#subscribe()
    return typeof this.api.reputation === 'function' ? this.api.reputation(peerId) : undefined
  }

  /** WebLLM state of this tab. */
  get llm(): LlmState {
    this.#subscribe()
    return this.supports('llm') ? this.api.llm.state() : EMPTY_LLM
  }

  /** The GGUF model this tab donates (undefined when this build's API has none). */
  get gguf(): GgufState | undefined {
    this.#subscribe()
    return this.supports('llm') && typeof this.api.llm.ggufState === 'function' ? this.api.llm.ggufState() : undefined
  }
}

const KEY = Symbol('zerostate')

/** Hand the view down from the root layout. */
export function setZeroState(view: ZeroStateView): void {
  setContext(KEY, view)
}

/** Read the view set by the root layout. */
export function useZeroState(): ZeroStateView {
  const view = getContext<ZeroStateView | undefined>(KEY)
  if (view == null) throw new Error('useZeroState() called outside the root layout')
  return view
}
