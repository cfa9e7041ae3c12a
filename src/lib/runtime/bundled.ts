/**
 * The agents built from `agents/` into `static/agents/` (served at `/agents/`).
 * `index.json` lists them; their module bytes are fetched on demand and kept in
 * an `AgentStore`, so a reload does not fetch them again.
 */
import * as v from 'valibot'
import { AgentManifestSchema, toAgentId, type AgentId, type AgentManifest, type AgentPackage } from './manifest.ts'
import { InvalidManifestError } from './errors.ts'
import type { AgentStore } from './agent-store.ts'

/** One bundled agent as listed in `/agents/index.json`. */
export interface BundledAgent {
  id: AgentId
  manifest: AgentManifest
  url: string
  size: number
}

/** The schema of `static/agents/index.json`. */
export const BundledIndexSchema = v.object({
  version: v.literal(1),
  agents: v.array(v.object({ id: v.string(), file: v.string(), size: v.number(), manifest: AgentManifestSchema }))
})

/** Options of `bundledAgents`. */
export interface BundledAgentsOptions {
  /** Base URL of the agents directory. Default `/agents/`. */
  baseUrl?: string
  fetch?: typeof fetch
}

/** List the bundled agents (fetches `index.json`). */
export async function bundledAgents(opts: BundledAgentsOptions = {}): Promise<BundledAgent[]> {
  const base = opts.baseUrl ?? '/agents/'
  const res = await (opts.fetch ?? fetch)(new URL('index.json', new URL(base, globalThis.location?.href ?? 'http://localhost/')).href)
  if (!res.ok) throw new InvalidManifestError(`the bundled agent index could not be loaded (HTTP ${res.status}); run "npm run build:agents"`)
  const parsed = v.safeParse(BundledIndexSchema, await res.json())
  if (!parsed.success) throw new InvalidManifestError('the bundled agent index is not valid; rebuild it with "npm run build:agents"')
  return parsed.output.agents.map((a) => ({
    id: toAgentId(a.id),
    manifest: a.manifest,
    url: new URL(a.file, new URL(base, globalThis.location?.href ?? 'http://localhost/')).href,
    size: a.size
  }))
}

/** Get a bundled agent's package from `store`, fetching and storing it the first time. */
export async function loadBundledAgent(agent: BundledAgent, store: AgentStore, fetchFn: typeof fetch = fetch): Promise<AgentPackage> {
  const cached = await store.get(agent.id)
  if (cached) return cached
  const res = await fetchFn(agent.url)
  if (!res.ok) throw new InvalidManifestError(`the module of "${agent.manifest.name}" could not be fetched (HTTP ${res.status})`)
  const wasm = new Uint8Array(await res.arrayBuffer())
  await store.put(agent.id, agent.manifest, wasm)
  return { id: agent.id, manifest: agent.manifest, wasm }
}
