/**
 * The in-browser LLM as the app sees it: whether WebGPU is there, which models
 * are offered (self-hosted weights by URL), loading progress, and the planners it
 * contributes (local WebLLM first, then a peer that advertises `llm`).
 */
import { PlannerUnavailableError } from '../errors.ts'
import { WebLlmEngine, type LlmEngine } from './llm-engine.ts'
import type { Planner } from '../plan/index.ts'
import { llmPlanner } from './llm-planner.ts'

const STORAGE_KEY = 'zerostate:llm-models'

type ModelEntry = LlmState['models'][number]

function loadModels(): ModelEntry[] {
  try {
    const raw = globalThis.localStorage?.getItem(STORAGE_KEY)
    const parsed: unknown = raw == null ? [] : JSON.parse(raw)
    return Array.isArray(parsed) ? parsed.filter((m): m is ModelEntry => typeof m?.id === 'string').slice(0, 32) : []
  } catch {
    return []
  }
}

/** WebLLM state: whether this tab can plan with a local model. */
export interface LlmState {
  /** 'unavailable' when WebGPU is missing (reason says why). */
  state: 'unknown' | 'unavailable' | 'idle' | 'loading' | 'ready' | 'error'
  reason?: string
  model?: string
  progress?: number
  progressText?: string
  models: Array<{ id: string; url?: string; libUrl?: string }>
}

/** Owns the WebLLM engine and its state. */
export class LlmController {
  #state: LlmState
  #engine: LlmEngine
  readonly #changed: () => void
  readonly #engineFor: (models: ModelEntry[]) => LlmEngine

  constructor(changed: () => void, engineFor?: (models: ModelEntry[]) => LlmEngine) {
    this.#changed = changed
    this.#engineFor =
      engineFor ??
      ((models) =>
        new WebLlmEngine(
          models.some((m) => m.url != null)
            ? { models: models.filter((m) => m.url != null).map((m) => ({ model: m.url!, model_id: m.id, model_lib: m.libUrl ?? '' })) }
            : {}
        ))
    const models = loadModels()
    this.#state = { state: 'unknown', models }
    this.#engine = this.#engineFor(models)
  }

  /** The engine the controller holds now; `setModels` replaces it (Settings → Save). */
  get engine(): LlmEngine {
    return this.#engine
  }

  /**
   * An engine that always calls the controller's current one, for services that
   * outlive a Settings → Save (the plan service answering peers). Capturing
   * `engine` once left peers talking to an unloaded engine ("No model is loaded")
   * while the tab said Ready (issue 10 item 5). Plans are refused until a model is
   * ready, so a peer never waits on a download.
   */
  readonly current: LlmEngine = {
    available: () => this.#engine.available(),
    load: (model, onProgress) => this.#engine.load(model, onProgress),
    plan: async (request, catalog, opts) => {
      if (this.#state.state !== 'ready') throw new PlannerUnavailableError(this.#state.reason ?? 'no model is loaded on this peer')
      return await this.#engine.plan(request, catalog, opts)
    },
    unload: () => this.#engine.unload()
  }
  state(): LlmState {
    return { ...this.#state, models: [...this.#state.models] }
  }

  /** Check WebGPU without downloading anything. */
  async probe(): Promise<void> {
    const a = await this.#engine.available().catch((err: unknown) => ({ ok: false, reason: String((err as Error)?.message ?? err) }))
    this.#set(a.ok ? { state: 'idle', reason: undefined } : { state: 'unavailable', reason: a.reason })
  }

  setModels(models: ModelEntry[]): void {
    const clean = models.filter((m) => typeof m.id === 'string' && m.id.length > 0).slice(0, 32)
    try {
      globalThis.localStorage?.setItem(STORAGE_KEY, JSON.stringify(clean))
    } catch {
      /* private mode: keep in memory */
    }
    void this.#engine.unload().catch(() => {})
    this.#engine = this.#engineFor(clean)
    this.#set({ models: clean, model: undefined, state: this.#state.state === 'unavailable' ? 'unavailable' : 'idle' })
  }

  async load(modelId: string): Promise<void> {
    this.#set({ state: 'loading', model: modelId, progress: 0, progressText: 'starting…' })
    try {
      await this.#engine.load(modelId, (p) => {
        this.#set({ progress: p.progress, progressText: p.text })
      })
      this.#set({ state: 'ready', progress: 1 })
    } catch (err) {
      const unavailable = (err as Error).name === 'WebGpuUnavailableError'
      this.#set({ state: unavailable ? 'unavailable' : 'error', reason: (err as Error).message })
      throw err
    }
  }

  /** Unload the WebLLM model (its weights stay in the browser's cache): planning falls back to a peer or the rules. */
  async unload(): Promise<void> {
    await this.#engine.unload().catch(() => {})
    if (this.#state.state !== 'unavailable') this.#set({ state: 'idle', model: undefined, progress: undefined, progressText: undefined })
  }

  /** The local planner, used only once a model is ready (planning never triggers a download). */
  planner(): Planner {
    return {
      name: 'webllm',
      plan: async (request, catalog, opts) => {
        if (this.#state.state !== 'ready' || this.#state.model == null) {
          throw new PlannerUnavailableError(this.#state.reason ?? 'no local model is loaded (Settings → LLM planning)')
        }
        return await llmPlanner(this.#engine, { model: this.#state.model }).plan(request, catalog, opts)
      }
    }
  }

  #set(patch: Partial<LlmState>): void {
    this.#state = { ...this.#state, ...patch }
    this.#changed()
  }
}
