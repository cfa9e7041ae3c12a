/**
 * The Web Worker that runs WebLLM: the only place the ~6 MB engine is loaded.
 * The page reaches it through Comlink (`LlmWorkerApi`) behind core's SupervisedWorker (a deadline on
 * load and on each completion; a hung one is freed by terminating this worker) and never imports
 * @mlc-ai/web-llm itself (FIELD-NOTES: importing it on both sides duplicates it).
 */
import * as Comlink from 'comlink'
import { CreateMLCEngine, type AppConfig, type MLCEngine } from '@mlc-ai/web-llm'
import type { LlmWorkerApi, LlmCompletionRequest } from './llm-worker-api.ts'

let engine: MLCEngine | undefined

/**
 * WebLLM rejects with plain strings (FIELD-NOTES); Comlink carries an Error across as
 * `{name, message, stack}`, so turn everything into one before it leaves the worker.
 */
async function asError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw err instanceof Error ? err : new Error(typeof err === 'string' ? err : JSON.stringify(err))
  }
}

const api: LlmWorkerApi = {
  load: (model: string, appConfig: AppConfig | undefined, onProgress: (report: { progress: number; text: string }) => void) =>
    asError(async () => {
      await engine?.unload()
      engine = await CreateMLCEngine(model, {
        appConfig,
        initProgressCallback: (r) => {
          void onProgress({ progress: r.progress, text: r.text })
        }
      })
    }),
  complete: (request: LlmCompletionRequest) =>
    asError(async () => {
      if (engine == null) throw new Error('no model is loaded in the LLM worker')
      const r = await engine.chat.completions.create({ ...request, stream: false })
      return { choices: r.choices.map((c) => ({ message: { content: c.message.content } })) }
    }),
  unload: () =>
    asError(async () => {
      await engine?.unload()
      engine = undefined
    })
}

Comlink.expose(api)
