/**
 * What this peer advertises to the mesh (presence): whether it donates, its workers
 * and free call slots, the capabilities of the agents it holds and of its LLM
 * planner, and its region (from the time zone, or the one the user chose: saved
 * per profile).
 */
import { MAX_PRESENCE_FREE_SLOTS, MAX_PRESENCE_WORKERS, defaultRegion, toRegion, type MeshNodeInit, type Region } from '../mesh/index.ts'
import { LLM_CAPABILITY, LLM_PROMPT_CAPABILITY, MAX_ADVERTISED_MODELS, encodeLlmRun, modelSlug } from '../orchestrator/index.ts'
import type { CatalogAgent } from './adapters.ts'
import { savedRegion } from './early/index.ts'

// Read before the mesh starts, from the early start's small chunk (issue 11); still exported from here.
export { savedRegion }

/** Options of the presence publisher. */
export interface PresencePublisherInit {
  /** Refresh the advertised state this often (free workers change with every task). Default 1000 ms. */
  intervalMs?: number
  /** Capabilities advertised at most (the presence schema's cap). Default 64. */
  maxCapabilities?: number
  /** Where the chosen region is saved. Default `globalThis.localStorage`; `null` saves nothing (Node). */
  storage?: RegionStorage | null
  /** The storage key of the chosen region. Default `zerostate:region`. */
  storageKey?: string
}

/** Where the region setting is remembered (`localStorage`'s shape). */
export interface RegionStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/** This peer's region as Settings shows it. */
export interface RegionState {
  /** What presence advertises: the chosen region, else the time zone's, else "unknown". */
  region: string
  /** The region the user chose, if any. */
  chosen?: Region
  /** The time zone's region ("unknown" when the zone names none, e.g. UTC). */
  fromTimeZone: string
  /** The browser's time zone, for the page to explain the default. */
  timeZone?: string
}

/** What the publisher reads and where it publishes. */
export interface PresencePublisherComponents {
  mesh: { setPresence(patch: MeshNodeInit['presence']): void }
  catalog: { agents(): readonly Pick<CatalogAgent, 'id' | 'manifest'>[] }
  executor: { has(agentId: string): boolean; freeWorkers(): number }
  /** The worker pool: a donor advertises its worker count beside its free call slots. */
  pool?: { stats(): { workers: number } }
  llm: { state(): { state: string } }
  /**
   * The language models loaded here for llm-prompt agents (issue 14): advertised as `llm`, `llm-prompt`,
   * each model's name and family, and one `llm-run.<family>.c<context>.t<tokens/s>.<name>` per model
   * with its context and the speed measured here (route/llm-fit.ts).
   */
  llmRunner?: { models(): ReadonlyArray<{ name: string; family: string; context?: number }>; state?(): { tokensPerSecond?: number } }
  /** The profile's signing key, advertised once at start. */
  publicKey: string
}

/** The presence publisher. */
export interface PresencePublisher {
  /** Advertise the public key and start the periodic refresh (idempotent). */
  start(): void
  stop(): void
  /** Advertise the current state now. */
  refresh(): void
  /** Start or stop advertising as a donor (refreshes at once). */
  setDonating(enabled: boolean): void
  readonly donating: boolean
  /** The advertised region and where it comes from. */
  region(): RegionState
  /**
   * Choose the region (one of REGIONS' ids; `null` goes back to the time zone's): saved
   * for this profile and advertised at once. Throws `UnknownRegionError` for any other value.
   */
  setRegion(region: string | null): void
}

/** `presencePublisher(init)(components)`. */
export function presencePublisher(init: PresencePublisherInit = {}): (components: PresencePublisherComponents) => PresencePublisher {
  const intervalMs = init.intervalMs ?? 1000
  const maxCapabilities = init.maxCapabilities ?? 64
  const key = init.storageKey ?? 'zerostate:region'
  const storage = (): RegionStorage | undefined => (init.storage === undefined ? globalThis.localStorage : (init.storage ?? undefined))
  return ({ mesh, catalog, executor, pool, llm, llmRunner, publicKey }) => {
    let donating = false
    let chosen = savedRegion(init.storage, key)
    const timeZone = (() => {
      try {
        return Intl.DateTimeFormat().resolvedOptions().timeZone
      } catch {
        return undefined
      }
    })()
    const advertised = (): string => chosen ?? defaultRegion()
    let timer: ReturnType<typeof setInterval> | undefined
    const refresh = (): void => {
      const caps = new Set<string>()
      const llmCaps = new Set<string>()
      // A donor advertises only what it can run now: agents whose bytes it holds.
      if (donating) for (const a of catalog.agents()) if (executor.has(a.id)) for (const c of a.manifest.capabilities) caps.add(c)
      if (llm.state().state === 'ready') llmCaps.add(LLM_CAPABILITY)
      const tokensPerSecond = llmRunner?.state?.().tokensPerSecond
      for (const m of (llmRunner?.models() ?? []).slice(0, MAX_ADVERTISED_MODELS)) {
        llmCaps.add(LLM_CAPABILITY)
        llmCaps.add(LLM_PROMPT_CAPABILITY)
        llmCaps.add(`llm-model-${modelSlug(m.name)}`)
        llmCaps.add(`llm-family-${modelSlug(m.family)}`)
        if (m.context != null)
          llmCaps.add(encodeLlmRun({ name: m.name, family: m.family, context: m.context, ...(tokensPerSecond != null ? { tokensPerSecond } : {}) }))
      }
      for (const c of llmCaps) caps.delete(c)
      mesh.setPresence({
        donating,
        // Within what presence admits (a machine with more than 128 cores, a terminal donor on a server, says 128):
        // above it every peer refuses the presence as no honest peer's, and this donor would vanish from the mesh.
        freeWorkers: donating ? Math.min(MAX_PRESENCE_FREE_SLOTS, executor.freeWorkers()) : 0,
        ...(pool != null ? { workers: donating ? Math.min(MAX_PRESENCE_WORKERS, pool.stats().workers) : 0 } : {}),
        // The models first: a donor with many agents must not have them cut (the cap, then presence's byte limit, cut from the end).
        capabilities: [...[...llmCaps].sort(), ...[...caps].sort()].slice(0, maxCapabilities)
      })
    }
    return {
      start() {
        if (timer != null) return
        mesh.setPresence({ publicKey, ...(chosen != null ? { region: chosen } : {}) })
        timer = setInterval(refresh, intervalMs)
      },
      stop() {
        clearInterval(timer)
        timer = undefined
      },
      refresh,
      setDonating(enabled) {
        donating = enabled
        refresh()
      },
      get donating() {
        return donating
      },
      region: () => ({ region: advertised(), ...(chosen != null ? { chosen } : {}), fromTimeZone: defaultRegion(), ...(timeZone != null ? { timeZone } : {}) }),
      setRegion(region) {
        chosen = region == null ? undefined : toRegion(region)
        try {
          if (chosen == null) storage()?.removeItem(key)
          else storage()?.setItem(key, chosen)
        } catch {
          // Storage full or denied (private mode): the choice holds for this page only.
        }
        mesh.setPresence({ region: advertised() })
      }
    }
  }
}
