/**
 * Publishing an agent (`agents.publish`): validate, sign with the profile's key and
 * store it here, then announce it in the mesh registry with this peer as a holder.
 */
import { sha256Hex, type AgentManifest, type UnsignedManifest } from '../runtime/index.ts'
import type { CatalogAgent } from './adapters.ts'
import type { AgentEntry } from './api.ts'

/** An agent as submitted for publishing. */
export interface AgentBundle {
  manifest: UnsignedManifest | AgentManifest
  wasm: Uint8Array
}

/** Options of the publisher: none yet. */
export type AgentPublisherInit = Record<string, never>

/** What the publisher needs. */
export interface AgentPublisherComponents {
  /** Validate, sign and store locally (`publishLocal` over the runtime's store and the profile's identity). */
  packages: { publish(bundle: AgentBundle): Promise<{ id: string; manifest: AgentManifest; author: string; publishedAt: number }> }
  registry: { publish(input: { id: string; manifest: AgentManifest; moduleSha256: string; holders: string[] }): Promise<unknown> }
  executor: { markLocal(agentId: string): void }
  catalog: { agents(): readonly CatalogAgent[] }
  listing: { entry(agent: CatalogAgent): AgentEntry }
  /** Settles once the bundled agents are known (the catalog is complete). */
  bundled: Promise<unknown>
  presence: { refresh(): void }
  changes: { changed(): void }
  /** This peer's id: the first holder. */
  peerId: string
}

/** The publisher. */
export interface AgentPublisher {
  /** Rejects with the runtime's typed error when the module or manifest is invalid; nothing is announced then. */
  publish(bundle: AgentBundle): Promise<AgentEntry>
}

/** `agentPublisher(init)(components)`. */
export function agentPublisher(_init: AgentPublisherInit = {}): (components: AgentPublisherComponents) => AgentPublisher {
  return ({ packages, registry, executor, catalog, listing, bundled, presence, changes, peerId }) => ({
    async publish(bundle) {
      const stored = await packages.publish(bundle)
      executor.markLocal(stored.id)
      await registry.publish({ id: stored.id, manifest: stored.manifest, moduleSha256: await sha256Hex(bundle.wasm), holders: [peerId] })
      await bundled
      const entry = catalog.agents().find((a) => a.id === stored.id)
      presence.refresh()
      changes.changed()
      // The catalog lists a registry entry only after verifying it, which may not have happened yet.
      return listing.entry(
        entry ?? { id: stored.id, manifest: stored.manifest, author: stored.author, bundled: false, holders: [peerId], publishedAt: stored.publishedAt }
      )
    }
  })
}
