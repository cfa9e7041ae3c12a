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
  type DirectKeyClaim,
  SpendingGuard,
  checkLimits,
  parseSubject,
  signPeerKey,
  trustService,
  verifyReceipt,
  type SpendLimits,
  type AgentContracts,
  type PeerUsers,
  type StatementStore,
  type TrustService
} from '../orchestrator/index.ts'
import type { AppCatalog } from './adapters.ts'
import type { UserReputation, ZeroStateApi } from './api.ts'

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
  let own: DirectKeyClaim | undefined
  signPeerKey(identity, mesh.peerId)
    .then((keyProof) => {
      own = { publicKey: identity.publicKey, keyProof }
      mesh.setPresence({ keyProof })
    })
    .catch((err: unknown) => {
      log.error('cannot sign the peer-key proof: %s', (err as Error).message)
    })
  return {
    keys,
    userOf: (peerId) => (peerId === mesh.peerId ? identity.publicKey : keys.userOf(peerId)),
    prove: async (peerId, claim) => await keys.prove(peerId, claim),
    claim: () => own,
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

/** Where the spending limits are saved (`localStorage`'s shape). */
export interface LimitsStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
}

/** The storage key of the spending limits. */
export const SPENDING_KEY = 'zerostate:spending'

/** Limits saved in `storage`, when they are valid (anything else is ignored: defaults apply). */
export function savedLimits(storage: Pick<LimitsStorage, 'getItem'> | null | undefined): Partial<SpendLimits> {
  try {
    const raw = JSON.parse(storage?.getItem(SPENDING_KEY) ?? 'null') as unknown
    if (raw == null || typeof raw !== 'object') return {}
    const r = raw as Record<string, unknown>
    const out: Partial<SpendLimits> = {}
    if (typeof r.allowance === 'number') out.allowance = r.allowance
    if (typeof r.dailyBudget === 'number') out.dailyBudget = r.dailyBudget
    checkLimits(out)
    return out
  } catch {
    return {}
  }
}

/** A tab's trust: the service the orchestrator uses, its spending guard, and the API's trust members. */
export type AppTrust = TrustService & {
  readonly spending: SpendingGuard
  readonly api: Pick<ZeroStateApi, 'credits' | 'trust' | 'spending' | 'setSpending'>
}

/** The trust service of a tab. */
export function appTrust(opts: {
  mesh: MeshNode
  identity: Identity
  catalog: AppCatalog
  registry: Registry
  registryDoc: () => Y.Doc | undefined
  persist: boolean
  /** Where the spending limits are saved. Default `localStorage` when persisting, else nowhere. */
  storage?: LimitsStorage | null
}): AppTrust {
  const users = meshPeerUsers(opts.mesh, opts.identity)
  const storage = opts.storage !== undefined ? opts.storage : opts.persist ? (globalThis.localStorage ?? null) : null
  const limits = savedLimits(storage)
  const statements = registryStatements(opts.registry, opts.registryDoc)
  const service = trustService({ allowance: limits.allowance })({
    identity: opts.identity,
    users,
    contracts: catalogContracts(opts.catalog),
    store: opts.persist ? new IndexedDbTrustStore() : new MemoryTrustStore(),
    statements
  })
  const self = opts.identity.publicKey
  const spending = new SpendingGuard({ self, credits: () => service.credits(), limits })
  const stop = service.stop.bind(service)
  const stats = service.stats.bind(service)

  /** Users worth listing: in signed statements, holding receipts of ours, or connected with a proven key. */
  const candidates = (): Set<string> => {
    const out = new Set<string>()
    for (const rec of statements.records()) {
      const subject = (rec as { subject?: unknown } | null)?.subject
      const s = typeof subject === 'string' ? parseSubject(subject) : undefined
      if (s != null) out.add(s.user)
    }
    for (const r of service.credits().receipts) out.add(r.donor === self ? r.submitter : r.donor)
    return out
  }
  const connected = (): Map<string, string[]> => {
    const m = new Map<string, string[]>()
    for (const p of opts.mesh.peers()) {
      const u = users.keys.userOf(p.id)
      if (u != null) m.set(u, [...(m.get(u) ?? []), p.id])
    }
    return m
  }

  const api: AppTrust['api'] = {
    credits() {
      const c = service.credits()
      const l = spending.limits
      return { ...c, allowance: l.allowance, available: Math.max(0, Math.round((c.balance + l.allowance) * 1e6) / 1e6) }
    },
    spending: () => spending.state(),
    setSpending(patch) {
      const next = spending.setLimits({
        ...(patch.allowance !== undefined ? { allowance: patch.allowance } : {}),
        ...('dailyBudget' in patch ? { dailyBudget: patch.dailyBudget ?? undefined } : {})
      })
      try {
        storage?.setItem(SPENDING_KEY, JSON.stringify(next))
      } catch {
        // Storage full or denied (private mode): the limits hold for this page only.
      }
      return spending.state()
    },
    trust: {
      users(agentId) {
        const live = connected()
        const all = new Set([...candidates(), ...(agentId == null ? live.keys() : [])])
        all.delete(self)
        const out: UserReputation[] = []
        for (const user of all) {
          const r = service.userReputation(user, agentId)
          if (agentId != null && r.valid + r.invalid === 0) continue
          if (agentId == null && r.valid + r.invalid === 0 && !live.has(user)) continue
          const t = agentId != null ? service.policy.trust(user, agentId) : undefined
          out.push({
            user,
            score: r.score,
            valid: r.valid,
            invalid: r.invalid,
            ...(r.avgMs != null ? { avgMs: r.avgMs } : {}),
            ...(r.avgCost != null ? { avgCost: r.avgCost } : {}),
            ...(t != null ? { streak: t.streak, trusted: t.trusted } : {}),
            peers: live.get(user) ?? [],
            self: false
          })
        }
        return out.sort((a, b) => b.score - a.score || b.valid - a.valid || a.user.localeCompare(b.user))
      },
      verifyReceipt: (receipt) => verifyReceipt(receipt)
    }
  }

  return Object.assign(service, {
    spending,
    api,
    async stop() {
      users.stop()
      await stop()
    },
    stats: () => ({ ...stats(), 'trust.peerKeysRefused': users.keys.refused })
  })
}
