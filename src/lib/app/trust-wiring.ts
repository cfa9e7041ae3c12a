/**
 * The trust service's adapters (issue 12): who is behind a peer (presence's profile
 * key), what an agent's manifest declares (output schema, comparison), where signed
 * statements live (the registry doc's reputation records) and where the state is kept.
 */
import type * as Y from 'yjs'
import type { MeshNode } from '../mesh/index.ts'
import type { Registry } from '../memory/index.ts'
import type { Identity } from '../core/index.ts'
import {
  IndexedDbTrustStore,
  MemoryTrustStore,
  trustService,
  type AgentContracts,
  type PeerUsers,
  type StatementStore,
  type TrustService
} from '../orchestrator/index.ts'
import type { AppCatalog } from './adapters.ts'

/** The user (profile key) behind a peer: this tab's own key, or the key its presence announces. */
export function meshPeerUsers(mesh: MeshNode, identity: Identity): PeerUsers {
  return {
    userOf: (peerId) => (peerId === mesh.peerId ? identity.publicKey : mesh.peers().find((p) => p.id === peerId)?.publicKey)
  }
}

/** An agent's output schema and declared comparison (`verification` in the manifest), from the catalog. */
export function catalogContracts(catalog: AppCatalog): AgentContracts {
  return {
    contract(agentId) {
      const m = catalog.get(agentId)?.manifest as ({ output?: Record<string, unknown>; verification?: unknown } & object) | undefined
      return m == null ? undefined : { output: m.output, comparison: m.verification }
    }
  }
}

/**
 * Statements travel as the registry's signed reputation records (subject `user:<key>[/<agent>]`):
 * `publishReputation` signs and writes them; reads take the raw map, every record checked again by trust/.
 */
export function registryStatements(registry: Registry, doc: () => Y.Doc | undefined): StatementStore {
  return {
    publish: (s) => registry.publishReputation({ subject: s.subject, score: s.score, successes: s.valid, failures: s.invalid }),
    records: () => doc()?.getMap('reputation').values() ?? [],
    subscribe: (l) => registry.subscribe(l)
  }
}

/** The trust service of a tab. */
export function appTrust(opts: {
  mesh: MeshNode
  identity: Identity
  catalog: AppCatalog
  registry: Registry
  registryDoc: () => Y.Doc | undefined
  persist: boolean
}): TrustService {
  return trustService()({
    identity: opts.identity,
    users: meshPeerUsers(opts.mesh, opts.identity),
    contracts: catalogContracts(opts.catalog),
    store: opts.persist ? new IndexedDbTrustStore() : new MemoryTrustStore(),
    statements: registryStatements(opts.registry, opts.registryDoc)
  })
}
