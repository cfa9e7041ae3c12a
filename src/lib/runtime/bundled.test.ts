import { readFileSync } from 'node:fs'
import { describe, expect, it, vi } from 'vitest'
import { bundledAgentsRetrying } from './bundled.ts'
import { InvalidManifestError } from './errors.ts'

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
