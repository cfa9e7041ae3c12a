/**
 * The agents built from `agents/` into `static/agents/` (served at `/agents/`).
 * `index.json` lists them; their module bytes are fetched on demand and kept in
 * an `AgentStore`, so a reload does not fetch them again.
 */
import { abortableSleep } from '../core/index.ts'
import * as v from 'valibot'
import { AgentManifestSchema, toAgentId, type AgentId, type AgentManifest, type AgentPackage } from './manifest.ts'
import { AgentUnavailableError, InvalidManifestError } from './errors.ts'
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

/** A fetch's failure that may pass: the network (fetch threw), or HTTP 5xx/408/429. */
function passing(status: number): boolean {
  return status === 0 || status >= 500 || status === 408 || status === 429
}

/**
 * `bundledAgents`, tried again after a failure that may pass (the network, a server busy or
 * restarting: `fetch` throws, or HTTP 5xx/408/429), up to `tries` times with a doubling wait from
 * `retryMs`. A missing or invalid index (the agents were not built) is final at once. Without it,
 * one failed fetch as the tab started left it without the bundled agents until a reload: a
 * donor then advertised itself and refused every step of them (NoAgentError, issue 16).
 */
export async function bundledAgentsRetrying(
  opts: BundledAgentsOptions & { tries?: number; retryMs?: number; signal?: AbortSignal; onRetry?: (err: Error, attempt: number) => void } = {}
): Promise<BundledAgent[]> {
  const tries = Math.max(1, opts.tries ?? 6)
  const aborted = (): boolean => opts.signal?.aborted === true
  const fetchFn = opts.fetch ?? fetch
  let status = 0
  const tracked: typeof fetch = async (input, init) => {
    const res = await fetchFn(input, init)
    status = res.status
    return res
  }
  for (let attempt = 1; ; attempt++) {
    status = 0
    try {
      return await bundledAgents({ ...opts, fetch: tracked })
    } catch (err) {
      if (!passing(status) || attempt >= tries || aborted()) throw err
      opts.onRetry?.(err as Error, attempt)
      const ms = (opts.retryMs ?? 1000) * 2 ** (attempt - 1)
      // Ended early by stop(): the last failure is the answer. The wait lets go of the signal when it ends.
      await abortableSleep(ms, opts.signal ?? new AbortController().signal, () => err as Error)
    }
  }
}

/**
 * Get a bundled agent's package from `store`, fetching and storing it the first time. A fetch
 * that fails in a way that may pass is tried again (`tries`, default 3, from `retryMs`, default
 * 250, doubling); what still fails is an AgentUnavailableError: this peer ran nothing. A donor
 * under load whose one fetch of a module failed answered the step with a bare "TypeError: fetch
 * failed", counted as a run of the agent (issue 16: 2 of 100 tasks at 200 simulated peers).
 */
export async function loadBundledAgent(
  agent: BundledAgent,
  store: AgentStore,
  fetchFn: typeof fetch = fetch,
  opts: { tries?: number; retryMs?: number; signal?: AbortSignal } = {}
): Promise<AgentPackage> {
  const cached = await store.get(agent.id)
  if (cached) return cached
  const tries = Math.max(1, opts.tries ?? 3)
  const what = `the module of "${agent.manifest.name}"`
  for (let attempt = 1; ; attempt++) {
    let status = 0
    let why: string
    try {
      const res = await fetchFn(agent.url, opts.signal != null ? { signal: opts.signal } : undefined)
      status = res.status
      if (res.ok) {
        const wasm = new Uint8Array(await res.arrayBuffer())
        await store.put(agent.id, agent.manifest, wasm)
        return { id: agent.id, manifest: agent.manifest, wasm }
      }
      why = `HTTP ${res.status}`
    } catch (err) {
      if (opts.signal?.aborted === true) throw err
      why = (err as Error).message
    }
    if (!passing(status) || attempt >= tries) {
      throw new AgentUnavailableError(`${what} could not be fetched (${why}${attempt > 1 ? `, ${attempt} tries` : ''})`)
    }
    const ms = (opts.retryMs ?? 250) * 2 ** (attempt - 1)
    await abortableSleep(ms, opts.signal ?? new AbortController().signal, () => new AgentUnavailableError(`${what} could not be fetched (${why})`))
  }
}
