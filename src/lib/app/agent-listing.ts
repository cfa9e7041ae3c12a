/**
 * Agents as the app lists them (`agents.list` / `agents.get`): the catalog's agents
 * (bundled and verified registry entries) with this peer's outcome statistics.
 */
import { type AgentCandidate, agentPosterior, betaMean, type RoutingTrust } from '../orchestrator/index.ts'
import type { CatalogAgent } from './adapters.ts'
import type { AgentEntry, AgentFilter } from './api.ts'

/** Options of the agent listing: none yet. */
export type AgentListingInit = Record<string, never>

/** What the listing reads. */
export interface AgentListingComponents {
  catalog: { agents(): readonly CatalogAgent[]; get(id: string): CatalogAgent | undefined }
  stats: { of(agentId: string): AgentEntry['stats'] }
  /**
   * Peers known to hold the bundled agents: this peer and every connected peer that
   * runs the app (relays excluded). Bundled agents ship with the app, so the registry
   * lists no holder for them; without this they would show "0 holders".
   */
  appPeers?: () => readonly string[]
  /**
   * Verified outcomes (the trust service, issue 12). With it, an agent that has results here
   * shows the reputation routing uses: the mean of its posterior (prior by provenance plus
   * verified outcomes or this peer's runs, whichever is larger). Without results, the
   * registry's published figure, if any.
   */
  outcomes?: Pick<RoutingTrust, 'agentOutcomes'>
}

/** The listing service. */
export interface AgentListing {
  /** Agents matching every field of `filter`, in catalog order (bundled first). */
  list(filter?: AgentFilter): AgentEntry[]
  get(id: string): AgentEntry | undefined
  /** One catalog agent as an entry. */
  entry(agent: CatalogAgent): AgentEntry
}

/** `agentListing(init)(components)`. */
export function agentListing(_init: AgentListingInit = {}): (components: AgentListingComponents) => AgentListing {
  return ({ catalog, stats, appPeers, outcomes }) => {
    const reputationOf = (a: CatalogAgent, s: AgentEntry['stats']): number | undefined => {
      if (outcomes == null) return a.reputation
      const v = outcomes.agentOutcomes(a.id)
      const seen = Math.max(s?.runs ?? 0, v == null ? 0 : v.valid + v.invalid)
      if (seen <= 0) return a.reputation
      const candidate: Pick<AgentCandidate, 'id' | 'bundled' | 'runs' | 'successes'> = {
        id: a.id,
        bundled: a.bundled,
        runs: s?.runs ?? 0,
        successes: s?.successes ?? 0
      }
      return betaMean(agentPosterior(candidate as AgentCandidate, outcomes))
    }
    const entry = (a: CatalogAgent): AgentEntry => {
      const m = a.manifest
      const s = stats.of(a.id)
      return {
        id: a.id,
        name: m.name,
        version: m.version,
        description: m.description,
        capabilities: [...m.capabilities],
        abi: m.abi,
        price: m.price,
        author: a.author,
        manifest: m,
        bundled: a.bundled,
        publishedAt: a.publishedAt,
        holders: a.bundled && appPeers != null ? [...new Set([...a.holders, ...appPeers()])] : a.holders,
        reputation: reputationOf(a, s),
        stats: s
      }
    }
    return {
      list: (filter) =>
        catalog
          .agents()
          .map(entry)
          .filter((e) => matches(e, filter)),
      get(id) {
        const a = catalog.get(id)
        return a == null ? undefined : entry(a)
      },
      entry
    }
  }
}

/** Empty filter fields match everything; an agent without reputation counts as 0. */
function matches(e: AgentEntry, f: AgentFilter = {}): boolean {
  if (f.capability != null && f.capability !== '' && !e.capabilities.includes(f.capability)) return false
  if (f.author != null && f.author !== '' && e.author !== f.author) return false
  if (f.minReputation != null && (e.reputation ?? 0) < f.minReputation) return false
  if (f.text != null && f.text !== '') {
    const t = f.text.toLowerCase()
    if (![e.id, e.name, e.description, ...e.capabilities].some((s) => s.toLowerCase().includes(t))) return false
  }
  return true
}
