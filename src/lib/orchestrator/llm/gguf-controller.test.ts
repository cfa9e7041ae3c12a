// GgufController (issue 14): the checks that say why a model cannot run here, before any download, and
// the state Settings shows (loading, ready with its speed, cancelled, unloaded). The engine is a fake
// with WllamaEngine's surface; the real one runs in test/llm.test.mjs.
import { describe, expect, it } from 'vitest'
import { GgufController, GgufFormatError, ModelTooLargeError, ModelUnreachableError, type GgufState } from './gguf-controller.ts'
import type { WllamaEngine } from './wllama-engine.ts'

const GGUF_HEAD = new Uint8Array([0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])

function fakeEngine(opts: { cached?: number; hang?: boolean } = {}) {
  let loaded = false
  const engine = {
    cachedBytes: async () => opts.cached ?? 0,
    async loadGguf(_source: unknown, onProgress: (p: { progress: number; text: string }) => void, o: { signal?: AbortSignal } = {}) {
      onProgress({ progress: 0.5, text: 'Loading: 0.5 of 1.0 MB' })
      if (opts.hang) await new Promise((_, reject) => o.signal?.addEventListener('abort', () => reject(o.signal!.reason), { once: true }))
      loaded = true
      return { name: 'tiny', family: 'llama', context: 512, multiThread: false, source: 'x' }
    },
    models: () => (loaded ? [{ name: 'tiny', family: 'llama', context: 512 }] : []),
    async generate() {
      await new Promise((r) => setTimeout(r, 20))
      return { text: 'abcd', model: 'tiny', tokens: 8 }
    },
    async unload() {
      loaded = false
    }
  }
  return engine as unknown as WllamaEngine
}

/** A fetch answering a Range request with `head` and a Content-Range of `total` bytes (or `status`). */
function fetchOf(head: Uint8Array, total: number, status = 206): typeof fetch {
  return (async () =>
    new Response(status === 206 || status === 200 ? (head as Uint8Array<ArrayBuffer>) : 'nope', {
      status,
      headers: status === 206 ? { 'content-range': `bytes 0-15/${total}` } : {}
    })) as unknown as typeof fetch
}

describe('GgufController.check', () => {
  it('refuses what is not GGUF, too big or unreachable, each with its own error and sentence', async () => {
    const url = 'https://models.example/m.gguf'
    const c = (f: typeof fetch, mem = 8) => new GgufController(fakeEngine(), () => {}, { fetch: f, deviceMemoryGiB: mem, measure: false })
    await expect(c(fetchOf(new TextEncoder().encode('<!doctype html>.'), 16)).check({ url })).rejects.toThrow(GgufFormatError)
    await expect(c(fetchOf(new TextEncoder().encode('<!doctype html>.'), 16)).check({ url })).rejects.toThrow(/it looks like an HTML page/)
    await expect(c(fetchOf(GGUF_HEAD, 7 * 1024 ** 3)).check({ url })).rejects.toThrow(ModelTooLargeError)
    await expect(c(fetchOf(GGUF_HEAD, 7 * 1024 ** 3)).check({ url })).rejects.toThrow(/is 7\.0 GB, too big to run here: this device reports 8 GB/)
    expect(await c(fetchOf(GGUF_HEAD, 5 * 1024 ** 3)).check({ url })).toBe(5 * 1024 ** 3)
    await expect(c(fetchOf(GGUF_HEAD, 16, 404)).check({ url })).rejects.toThrow(/answered HTTP 404/)
    const down = (async () => {
      throw new TypeError('Failed to fetch')
    }) as unknown as typeof fetch
    await expect(c(down).check({ url })).rejects.toThrow(ModelUnreachableError)
    await expect(c(down).check({ url: 'https://models.example/model.bin' })).rejects.toThrow(/does not name a \.gguf file/)
    const zip = new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0])
    await expect(c(down).check({ bytes: zip, name: 'pytorch_model.bin' })).rejects.toThrow(
      /"pytorch_model\.bin" is not a GGUF model \(it looks like a zip archive/
    )
    await expect(c(down).check({ file: new Blob([GGUF_HEAD]), name: 'ok.gguf' })).resolves.toBe(16)
  })

  it('a model already in the cache is not fetched again', async () => {
    let fetched = 0
    const f = (async () => {
      fetched++
      return new Response(null, { status: 500 })
    }) as unknown as typeof fetch
    const c = new GgufController(fakeEngine({ cached: 1234 }), () => {}, { fetch: f, measure: false })
    expect(await c.check({ url: 'https://models.example/m.gguf' })).toBe(1234)
    expect(fetched).toBe(0)
  })
})

describe('GgufController state', () => {
  it('loading shows progress, ready shows the model and its measured speed, unload goes back to idle', async () => {
    const states: GgufState[] = []
    const c = new GgufController(fakeEngine(), () => states.push(c.state()), { fetch: fetchOf(GGUF_HEAD, 1024) })
    await c.load({ url: 'https://models.example/m.gguf' })
    expect(states.some((s) => s.state === 'loading' && s.progress === 0.5 && s.progressText === 'Loading: 0.5 of 1.0 MB')).toBe(true)
    await expect.poll(() => c.state().tokensPerSecond).toBeGreaterThan(0)
    expect(c.state()).toMatchObject({ state: 'ready', model: { name: 'tiny' }, bytes: 1024 })
    expect(c.models()).toHaveLength(1)
    await c.unload()
    expect(c.state().state).toBe('idle')
    expect(c.models()).toEqual([])
  })

  it('a refused model leaves the error with its name; a cancel goes back to idle and says so', async () => {
    const c = new GgufController(fakeEngine({ hang: true }), () => {}, { fetch: fetchOf(GGUF_HEAD, 64 * 1024 ** 3), measure: false })
    await expect(c.load({ url: 'https://models.example/m.gguf' })).rejects.toThrow(ModelTooLargeError)
    expect(c.state()).toMatchObject({ state: 'error', reasonName: 'ModelTooLargeError' })
    const d = new GgufController(fakeEngine({ hang: true }), () => {}, { fetch: fetchOf(GGUF_HEAD, 1024), measure: false })
    const loading = d.load({ url: 'https://models.example/m.gguf' })
    await expect.poll(() => d.state().state).toBe('loading')
    d.cancel()
    await expect(loading).rejects.toThrow(/cancelled/)
    expect(d.state()).toMatchObject({ state: 'idle', reason: 'The load was cancelled.' })
    expect(d.models()).toEqual([])
  })
})
