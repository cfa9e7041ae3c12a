/**
 * The trust service's adapters (issue 12): who is behind a peer (presence's profile
 * key, once the peer proved it holds that key), what an agent's manifest declares (output schema, comparison), where signed
 * statements live (the registry doc's reputation records) and where the state is kept.
 */
import type * as Y from 'yjs'
import type { MeshNode } from '../mesh/index.ts'
import type { Registry } from '../memory/index.ts'
import { listen, logger, type Identity } from '../core/index.ts'
import {
  IndexedDbTrustStore,
  MemoryTrustStore,
  ProvenPeerKeys,
  signPeerKey,
  trustService,
  type AgentContracts,
  type PeerUsers,
  type StatementStore,
  type TrustService
} from '../orchestrator/index.ts'
import type { AppCatalog } from './adapters.ts'

const log = logger('app:trust')

/**
 * The user (profile key) behind a peer: this tab's own key, or the key its presence
 * announces once its `keyProof` (a signature over its peer id with that key) checks
 * out. A peer that claims another profile's key without proof is its own user
 * (`peer:<id>` in trust/): never credited or reputed as that profile, never answered
 * from that profile's donor cache. Also announces this tab's own proof.
 */
export function meshPeerUsers(mesh: MeshNode, identity: Identity): PeerUsers & { readonly keys: ProvenPeerKeys; stop(): void } {
  const keys = new ProvenPeerKeys(() => mesh.peers())
  const off = listen(mesh, 'change', () => {
    keys.prune()
    void keys.check()
  })
  signPeerKey(identity, mesh.peerId)
    .then((keyProof) => {
      mesh.setPresence({ keyProof })
    })
    .catch((err: unknown) => {
      log.error('cannot sign the peer-key proof: %s', (err as Error).message)
    })
  return {
    keys,
    userOf: (peerId) => (peerId === mesh.peerId ? identity.publicKey : keys.userOf(peerId)),
    stop: off
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
  const users = meshPeerUsers(opts.mesh, opts.identity)
  const service = trustService()({
    identity: opts.identity,
    users,
    contracts: catalogContracts(opts.catalog),
    store: opts.persist ? new IndexedDbTrustStore() : new MemoryTrustStore(),
    statements: registryStatements(opts.registry, opts.registryDoc)
  })
  const stop = service.stop.bind(service)
  return Object.assign(service, {
    async stop() {
      users.stop()
      await stop()
    },
    stats: ((stats) => () => ({ ...stats(), 'trust.peerKeysRefused': users.keys.refused }))(service.stats.bind(service))
  })
}
