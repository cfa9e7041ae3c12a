/**
 * The Web Worker that runs WebLLM: the only place the ~6 MB engine is loaded.
 * The page reaches it through Comlink (`LlmWorkerApi`) and never imports
 * @mlc-ai/web-llm itself (FIELD-NOTES: importing it on both sides duplicates it).
 */
import * as Comlink from 'comlink'
import { CreateMLCEngine, type AppConfig, type MLCEngine } from '@mlc-ai/web-llm'
import type { LlmWorkerApi, LlmCompletionRequest } from './llm-worker-api.ts'

let engine: MLCEngine | undefined

const api: LlmWorkerApi = {
  async load(model: string, appConfig: AppConfig | undefined, onProgress: (report: { progress: number; text: string }) => void) {
    await engine?.unload()
    engine = await CreateMLCEngine(model, {
      appConfig,
      initProgressCallback: (r) => {
        void onProgress({ progress: r.progress, text: r.text })
      }
    })
  },
  async complete(request: LlmCompletionRequest) {
    if (engine == null) throw new Error('no model is loaded in the LLM worker')
    const r = await engine.chat.completions.create({ ...request, stream: false })
    return { choices: r.choices.map((c) => ({ message: { content: c.message.content } })) }
  },
  async unload() {
    await engine?.unload()
    engine = undefined
  }
}

Comlink.expose(api)
