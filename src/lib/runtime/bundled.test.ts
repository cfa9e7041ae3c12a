import { readFileSync } from 'node:fs'
import { describe, expect, it, vi } from 'vitest'
import { MemoryAgentStore } from './agent-store.ts'
import { bundledAgents, bundledAgentsRetrying, loadBundledAgent } from './bundled.ts'
import { AgentUnavailableError, InvalidManifestError } from './errors.ts'

/** The real index `npm run build:agents` writes. */
const index = readFileSync(new URL('../../../static/agents/index.json', import.meta.url), 'utf8')

/** A fetch that answers each call with the next of `answers`: a status, or a thrown network error. */
function fetchOf(answers: Array<number | 'offline'>) {
  return vi.fn(async () => {
    const a = answers.shift() ?? 200
    if (a === 'offline') throw new TypeError('fetch failed')
    return new Response(a === 200 ? index : 'no', { status: a })
  }) as unknown as typeof fetch & ReturnType<typeof vi.fn>
}

describe('bundledAgentsRetrying', () => {
  it('tries again after a network error or a busy server, and lists the agents once the index comes', async () => {
    const f = fetchOf(['offline', 503, 200])
    const retries: number[] = []
    const list = await bundledAgentsRetrying({ baseUrl: 'http://x/agents/', fetch: f, retryMs: 1, onRetry: (_e, n) => retries.push(n) })
    expect(f).toHaveBeenCalledTimes(3)
    expect(retries).toEqual([1, 2])
    expect(list.map((a) => a.manifest.name)).toContain('hash')
  })

  it('gives up at once on a missing index (the agents were not built), and after `tries` on failures that may pass', async () => {
    const missing = fetchOf([404, 200])
    await expect(bundledAgentsRetrying({ baseUrl: 'http://x/agents/', fetch: missing, retryMs: 1 })).rejects.toBeInstanceOf(InvalidManifestError)
    expect(missing).toHaveBeenCalledTimes(1)
    const down = fetchOf(['offline', 'offline', 'offline', 200])
    await expect(bundledAgentsRetrying({ baseUrl: 'http://x/agents/', fetch: down, retryMs: 1, tries: 3 })).rejects.toThrow('fetch failed')
    expect(down).toHaveBeenCalledTimes(3)
  })

  it('stops trying when its signal aborts', async () => {
    const f = fetchOf(['offline', 'offline', 200])
    const stop = new AbortController()
    const p = bundledAgentsRetrying({ baseUrl: 'http://x/agents/', fetch: f, retryMs: 60_000, signal: stop.signal })
    await vi.waitFor(() => expect(f).toHaveBeenCalledTimes(1))
    stop.abort()
    await expect(p).rejects.toThrow('fetch failed')
    expect(f).toHaveBeenCalledTimes(1)
  })
})

describe('loadBundledAgent', () => {
  /** The first bundled agent as the index lists it, and a fetch of its module answering `answers` in turn (then the real bytes). */
  async function agentAnd(answers: Array<number | 'offline'>) {
    const [agent] = await bundledAgents({ baseUrl: 'http://x/agents/', fetch: fetchOf([200]) })
    const file = new URL(agent!.url).pathname.split('/').pop()!
    const wasm = readFileSync(new URL(`../../../static/agents/${file}`, import.meta.url))
    const f = vi.fn(async () => {
      const a = answers.shift() ?? 200
      if (a === 'offline') throw new TypeError('fetch failed')
      return new Response(a === 200 ? wasm : 'busy', { status: a })
    }) as unknown as typeof fetch & ReturnType<typeof vi.fn>
    return { agent: agent!, f, wasm }
  }

  it('tries the module again after a network error or a busy server, then stores it once', async () => {
    const { agent, f, wasm } = await agentAnd(['offline', 503])
    const store = new MemoryAgentStore()
    const pkg = await loadBundledAgent(agent, store, f, { retryMs: 1 })
    expect(f).toHaveBeenCalledTimes(3)
    expect(pkg.wasm).toEqual(new Uint8Array(wasm))
    expect(await store.has(agent.id)).toBe(true)
    // Stored: not fetched again.
    await loadBundledAgent(agent, store, f, { retryMs: 1 })
    expect(f).toHaveBeenCalledTimes(3)
  })

  it('answers a typed AgentUnavailableError (this peer ran nothing) after its tries, and at once for a missing module', async () => {
    const down = await agentAnd(['offline', 'offline', 'offline'])
    const err = await loadBundledAgent(down.agent, new MemoryAgentStore(), down.f, { retryMs: 1 }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(AgentUnavailableError)
    expect((err as Error).message).toMatch(/fetch failed, 3 tries/)
    expect(down.f).toHaveBeenCalledTimes(3)
    const gone = await agentAnd([404])
    await expect(loadBundledAgent(gone.agent, new MemoryAgentStore(), gone.f, { retryMs: 1 })).rejects.toThrow(/HTTP 404/)
    expect(gone.f).toHaveBeenCalledTimes(1)
  })
})
