// WllamaEngine through its worker interface (issue 14). wllama itself cannot run in Node 20 (its
// WebAssembly uses memory64, which Node 20 does not enable), so the worker here is a fake speaking
// WllamaWorkerApi over a real MessageChannel and Comlink; the real one runs in test/llm.test.mjs.
import { afterEach, describe, expect, it } from 'vitest'
import * as Comlink from 'comlink'
import type { WorkerHandle } from '../../core/index.ts'
import { LlmLoadError, LlmPlanError } from '../errors.ts'
import { capabilityCatalog } from '../plan/index.ts'
import { agent, catalogOf } from '../test-fixtures.ts'
import { WllamaEngine } from './wllama-engine.ts'
import type { GgufProgress, GgufSource, WllamaWorkerApi } from './wllama-worker-api.ts'
import { LlmContextExceededError, type LlmGenerateRequest } from '../../runtime/index.ts'

const engines: WllamaEngine[] = []
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.unload()))
})

/** An engine whose worker is `api` in this thread; `spawned` counts workers, `asked` the generations. */
function setup(api: Partial<WllamaWorkerApi> = {}, init: { generateDeadlineMs?: number } = {}) {
  const asked: LlmGenerateRequest[] = []
  let spawned = 0
  const full: WllamaWorkerApi = {
    async load(source: GgufSource, opts, onProgress: (p: GgufProgress) => void) {
      await onProgress({ loaded: 512, total: 1024 })
      await onProgress({ loaded: 1024, total: 1024 })
      return { name: 'url' in source ? 'tiny' : (source.name ?? 'bytes'), family: 'llama', context: opts.contextSize, multiThread: opts.threads > 1 }
    },
    async generate(req, onToken) {
      asked.push(req)
      for (const p of ['{"a"', ':', '1}']) await onToken(p)
      return { text: '{"a":1}', model: 'tiny', tokens: 3 }
    },
    async unload() {},
    async cachedBytes() {
      return 0
    },
    ...api
  }
  const spawn = (): WorkerHandle => {
    spawned++
    const { port1, port2 } = new MessageChannel()
    Comlink.expose(full, port2 as unknown as Comlink.Endpoint)
    port1.start()
    port2.start()
    return {
      endpoint: port1 as unknown as Comlink.Endpoint,
      terminate: () => {
        port1.close()
        port2.close()
      },
      onCrash: () => {}
    }
  }
  const engine = new WllamaEngine({ spawn, contextSize: 512, ...init })
  engines.push(engine)
  return { engine, asked, spawned: () => spawned }
}

describe('WllamaEngine', () => {
  it('loads with progress from 0 to 1, reports its model single-threaded, and runs llm-prompt generations streaming each piece', async () => {
    const { engine, asked } = setup()
    expect(engine.models()).toEqual([])
    const progress: number[] = []
    const model = await engine.loadGguf({ url: 'http://models.test/tiny.gguf' }, (p) => progress.push(p.progress))
    expect(progress).toEqual([0.5, 1])
    expect(model).toMatchObject({ name: 'tiny', family: 'llama', context: 512, multiThread: false, source: 'http://models.test/tiny.gguf' })
    expect(engine.models()).toEqual([{ name: 'tiny', family: 'llama', context: 512 }])
    const pieces: string[] = []
    const res = await engine.generate({ prompt: 'p', maxTokens: 8, temperature: 0, jsonSchema: { type: 'object' } }, { onToken: (t) => pieces.push(t) })
    expect(pieces).toEqual(['{"a"', ':', '1}'])
    expect(res).toEqual({ text: '{"a":1}', model: 'tiny', tokens: 3 })
    expect(asked[0]).toMatchObject({ jsonSchema: { type: 'object' } })
  })

  it('generations run one at a time (llama.cpp has one context); a queued one that is aborted leaves the queue', async () => {
    let inFlight = 0
    let most = 0
    const { engine } = setup({
      async generate(req) {
        inFlight++
        most = Math.max(most, inFlight)
        await new Promise((r) => setTimeout(r, 30))
        inFlight--
        return { text: req.prompt, model: 'tiny', tokens: 1 }
      }
    })
    await engine.loadGguf({ url: 'http://models.test/tiny.gguf' })
    const gen = (prompt: string, signal?: AbortSignal) => engine.generate({ prompt, maxTokens: 1, temperature: 0 }, signal ? { signal } : {})
    const aborted = new AbortController()
    const all = [gen('a'), gen('b', aborted.signal), gen('c')]
    aborted.abort(new Error('gone'))
    const res = await Promise.allSettled(all)
    expect(res.map((r) => (r.status === 'fulfilled' ? r.value.text : (r.reason as Error).message))).toEqual(['a', 'gone', 'c'])
    expect(most).toBe(1)
  })

  it("the worker's context refusal (llama-server tokenized the prompt) is LlmContextExceededError with the counts; the worker stays", async () => {
    let asked = 0
    const { engine, spawned } = setup({
      async generate(req) {
        asked++
        if (req.prompt.length > 100) {
          const e = new Error("the prompt is 9109 tokens, over the model's context of 512")
          e.name = 'LlmContextExceededError'
          throw e
        }
        return { text: 'ok', model: 'tiny', tokens: 1 }
      }
    })
    await engine.loadGguf({ url: 'http://models.test/tiny.gguf' })
    const err = await engine.generate({ prompt: 'x'.repeat(500), maxTokens: 8, temperature: 0 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LlmContextExceededError)
    expect(err).toMatchObject({ promptTokens: 9109, contextTokens: 512 })
    expect((err as Error).message).toMatch(/9109 tokens and the model's context is 512/)
    // Not a crash: the model is still loaded and the next prompt runs on the same worker.
    expect((await engine.generate({ prompt: 'short', maxTokens: 8, temperature: 0 })).text).toBe('ok')
    expect([asked, spawned()]).toEqual([2, 1])
  })

  it('a failed load is LlmLoadError naming the model; generating with no model is refused', async () => {
    const { engine } = setup({
      load: async () => {
        throw new Error('not a GGUF file')
      }
    })
    await expect(engine.loadGguf({ url: 'http://models.test/bad.gguf' })).rejects.toSatisfy(
      (e) => e instanceof LlmLoadError && /bad\.gguf.*not a GGUF file/.test((e as Error).message)
    )
    await expect(engine.generate({ prompt: 'p', maxTokens: 1, temperature: 0 })).rejects.toBeInstanceOf(LlmLoadError)
  })

  it('a generation past its deadline terminates the worker, which loses its model', async () => {
    const { engine, spawned } = setup({ generate: () => new Promise(() => {}) }, { generateDeadlineMs: 100 })
    await engine.loadGguf({ bytes: new Uint8Array(8), name: 'mem' })
    expect(engine.models()).toHaveLength(1)
    await expect(engine.generate({ prompt: 'p', maxTokens: 1, temperature: 0 })).rejects.toMatchObject({ name: 'WorkerTimeoutError' })
    expect(engine.models()).toEqual([])
    expect(spawned()).toBe(1)
  })

  it('plans through the plan JSON Schema; an answer that is not a plan is LlmPlanError', async () => {
    const info = capabilityCatalog(catalogOf([agent('sum', ['text-summarization'], 0.1)]))
    const plan = {
      subtasks: [{ id: 's1', description: 'sum', capabilities: ['text-summarization'], dependencies: [], input: { from: 'task.input' }, estimated_cost: 0.1 }],
      execution_mode: 'sequential',
      total_estimated_cost: 0.1
    }
    const answers = [JSON.stringify(plan), '{"nope":1}']
    const { engine, asked } = setup({
      async generate(req) {
        asked.push(req)
        const text = answers.shift()!
        return { text, model: 'tiny', tokens: 10 }
      }
    })
    await engine.loadGguf({ url: 'http://models.test/tiny.gguf' })
    const draft = await engine.plan({ description: 'summarize this' }, info)
    expect(draft.subtasks[0]!.capabilities).toEqual(['text-summarization'])
    expect(asked[0]!.jsonSchema).toBeDefined()
    expect(asked[0]!.system).toMatch(/text-summarization/)
    await expect(engine.plan({ description: 'again' }, info)).rejects.toBeInstanceOf(LlmPlanError)
  })
})
