/** The API of `llm-worker.ts`, shared by the worker and the page (types only: no WebLLM code). */
import type { AppConfig } from '@mlc-ai/web-llm'

/** A chat completion request as the planner sends it. */
export interface LlmCompletionRequest {
  messages: Array<{ role: 'system' | 'user'; content: string }>
  response_format: { type: 'json_object'; schema: string }
  temperature?: number
  max_tokens?: number
}

/** What the LLM worker exposes over Comlink. */
export interface LlmWorkerApi {
  load(model: string, appConfig: AppConfig | undefined, onProgress: (report: { progress: number; text: string }) => void): Promise<void>
  complete(request: LlmCompletionRequest): Promise<{ choices: Array<{ message: { content: string | null } }> }>
  unload(): Promise<void>
}
