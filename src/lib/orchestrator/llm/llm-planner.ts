import { PlannerUnavailableError } from '../errors.ts'
import type { Planner } from '../plan/index.ts'
import type { LlmEngine, LlmProgress } from './llm-engine.ts'

/** Options of the WebLLM planner. */
export interface LlmPlannerInit {
  /** Model id to load (one of the engine's model list). */
  model: string
  onProgress?: (p: LlmProgress) => void
}

/** A planner backed by an `LlmEngine` running on this page. Loads the model on first use. */
export function llmPlanner(engine: LlmEngine, init: LlmPlannerInit): Planner {
  let loading: Promise<void> | undefined
  return {
    name: 'webllm',
    async plan(request, catalog, opts) {
      const a = await engine.available()
      if (!a.ok) throw new PlannerUnavailableError(a.reason ?? 'the local LLM is not available')
      loading ??= engine.load(init.model, init.onProgress ?? (() => {})).catch((err) => {
        loading = undefined
        throw err
      })
      await loading
      return await engine.plan(request, catalog, opts)
    }
  }
}
