/**
 * The Web Worker that runs wllama (llama.cpp in WebAssembly, issue 14): the only place its
 * ~10 MB WebAssembly is loaded. wllama starts its own worker beneath this one. Reached
 * through Comlink (`WllamaWorkerApi`) behind core's SupervisedWorker, so a hung generation
 * is stopped by terminating this worker.
 */
import * as Comlink from 'comlink'
import { CacheManager, Wllama, LoggerWithoutDebug } from '@wllama/wllama'
import wasmUrl from '@wllama/wllama/esm/wasm/wllama.wasm?url'
import type { LlmGenerateRequest } from '../../runtime/index.ts'
import type { GgufProgress, GgufSource, WllamaWorkerApi } from './wllama-worker-api.ts'

let wllama: Wllama | undefined
let modelName = ''
let cache: CacheManager | undefined

/** Bytes of `url` in wllama's cache, 0 when absent (or when the cache cannot be read here). */
async function cachedBytes(url: string): Promise<number> {
  try {
    cache ??= new CacheManager()
    return Math.max(0, await cache.getSize(await cache.getNameFromURL(url)))
  } catch {
    return 0
  }
}

/** wllama may reject with non-Errors; Comlink carries Errors as {name, message, stack}. */
async function asError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw err instanceof Error ? err : new Error(typeof err === 'string' ? err : JSON.stringify(err))
  }
}

const api: WllamaWorkerApi = {
  load: (source: GgufSource, opts: { contextSize: number; threads: number }, onProgress: (p: GgufProgress) => void) =>
    asError(async () => {
      await wllama?.exit()
      wllama = new Wllama({ default: wasmUrl }, { suppressNativeLog: true, logger: LoggerWithoutDebug, allowOffline: true })
      // One slot: the engine runs one completion at a time (llama-server otherwise splits n_ctx among its slots).
      const params = { n_ctx: opts.contextSize, n_threads: opts.threads, n_gpu_layers: 0, n_parallel: 1 }
      const cached = 'url' in source ? (await cachedBytes(source.url)) > 0 : false
      if ('url' in source) {
        await wllama.loadModelFromUrl(source.url, {
          ...params,
          progressCallback: ({ loaded, total }: GgufProgress) => {
            void onProgress({ loaded, total })
          }
        })
      } else {
        const blob = 'file' in source ? source.file : new Blob([source.bytes as Uint8Array<ArrayBuffer>])
        const total = blob.size
        void onProgress({ loaded: 0, total })
        await wllama.loadModel([blob], params)
        void onProgress({ loaded: total, total })
      }
      const info = wllama.getLoadedContextInfo()
      const meta = info.metadata ?? {}
      modelName = meta['general.name'] ?? ('url' in source ? (source.url.split('/').pop() ?? 'model') : (source.name ?? 'model'))
      return {
        name: modelName,
        family: (meta['general.architecture'] ?? 'unknown').toLowerCase(),
        // What one request may really hold: llama-server refused prompts past the model's trained context
        // (the tiny test model: n_ctx 2048 loaded, "exceeds the available context size (512 tokens)" = n_ctx_train).
        context: info.n_ctx_train > 0 ? Math.min(info.n_ctx, info.n_ctx_train) : info.n_ctx,
        multiThread: wllama.isMultithread(),
        cached
      }
    }),
  cachedBytes: (url: string) => cachedBytes(url),
  generate: (req: LlmGenerateRequest, onToken: (text: string) => void) =>
    asError(async () => {
      if (wllama == null) throw new Error('no model is loaded in the wllama worker')
      const prompt = req.system != null ? `${req.system}\n\n${req.prompt}` : req.prompt
      let text = ''
      let tokens = 0
      // Each piece crosses to the page on the callback proxy's own port, and the answer on the worker's:
      // two ports keep no order between them, so the answer waits until the page has taken every piece
      // (without this the last pieces could arrive after the result, and a submitter's stream lost its tail).
      const delivered: Array<Promise<unknown>> = []
      // llama-server's completion takes a JSON Schema and turns it into a grammar (not in wllama's types).
      const options = {
        prompt,
        max_tokens: req.maxTokens,
        temperature: req.temperature,
        ...(req.topP != null ? { top_p: req.topP } : {}),
        ...(req.topK != null ? { top_k: req.topK } : {}),
        ...(req.stop != null ? { stop: req.stop } : {}),
        ...(req.seed != null ? { seed: req.seed } : {}),
        ...(req.jsonSchema != null ? { json_schema: req.jsonSchema } : {}),
        stream: true as const,
        onData: (chunk: { choices: Array<{ text: string }> }) => {
          const piece = chunk.choices[0]?.text ?? ''
          if (piece === '') return
          text += piece
          tokens++
          delivered.push(Promise.resolve(onToken(piece)).catch(() => {}))
        }
      }
      try {
        await wllama.createCompletion(options)
      } catch (err) {
        // llama-server tokenizes the prompt and refuses one longer than the context before generating:
        // named, so the page rebuilds it as LlmContextExceededError instead of a bare Error.
        const message = err instanceof Error ? err.message : String(err)
        const m = /request \((\d+) tokens\) exceeds the available context size \((\d+) tokens\)/.exec(message)
        if (m != null || /exceed_context_size/.test(message)) {
          const e = new Error(m != null ? `the prompt is ${m[1]} tokens, over the model's context of ${m[2]}` : message)
          e.name = 'LlmContextExceededError'
          throw e
        }
        throw err
      }
      await Promise.all(delivered)
      return { text, model: modelName, tokens }
    }),
  unload: () =>
    asError(async () => {
      await wllama?.exit()
      wllama = undefined
    })
}

Comlink.expose(api)
