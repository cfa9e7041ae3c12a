/**
 * What this peer advertises to the mesh (presence): whether it donates, its free
 * workers, and the capabilities of the agents it holds and of its LLM planner.
 */
import type { MeshNodeInit } from '../mesh/index.ts'
import { LLM_CAPABILITY } from '../orchestrator/index.ts'
import type { CatalogAgent } from './adapters.ts'

/** Options of the presence publisher. */
export interface PresencePublisherInit {
  /** Refresh the advertised state this often (free workers change with every task). Default 1000 ms. */
  intervalMs?: number
  /** Capabilities advertised at most (the presence schema's cap). Default 64. */
  maxCapabilities?: number
}

/** What the publisher reads and where it publishes. */
export interface PresencePublisherComponents {
  mesh: { setPresence(patch: MeshNodeInit['presence']): void }
  catalog: { agents(): readonly Pick<CatalogAgent, 'id' | 'manifest'>[] }
  executor: { has(agentId: string): boolean; freeWorkers(): number }
  llm: { state(): { state: string } }
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
}

/** `presencePublisher(init)(components)`. */
export function presencePublisher(init: PresencePublisherInit = {}): (components: PresencePublisherComponents) => PresencePublisher {
  const intervalMs = init.intervalMs ?? 1000
  const maxCapabilities = init.maxCapabilities ?? 64
  return ({ mesh, catalog, executor, llm, publicKey }) => {
    let donating = false
    let timer: ReturnType<typeof setInterval> | undefined
    const refresh = (): void => {
      const caps = new Set<string>()
      // A donor advertises only what it can run now: agents whose bytes it holds.
      if (donating) for (const a of catalog.agents()) if (executor.has(a.id)) for (const c of a.manifest.capabilities) caps.add(c)
      if (llm.state().state === 'ready') caps.add(LLM_CAPABILITY)
      mesh.setPresence({ donating, freeWorkers: donating ? executor.freeWorkers() : 0, capabilities: [...caps].sort().slice(0, maxCapabilities) })
    }
    return {
      start() {
        if (timer != null) return
        mesh.setPresence({ publicKey })
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
      }
    }
  }
}
