/**
 * The LLM that plans (vision §1), as an interface, and its WebLLM implementation.
 *
 * FIELD-NOTES: WebLLM rejects with plain strings, reports a missing GPU only
 * after downloading config and library, and its ~6 MB chunk is duplicated when
 * imported on the page as well as in the worker. So: check WebGPU first, wrap
 * every failure in a typed error, and keep `@mlc-ai/web-llm` out of this
 * module's static imports (types only; the default factory imports it lazily).
 */
import * as v from 'valibot'
import * as Comlink from 'comlink'
import type { AppConfig, ModelRecord } from '@mlc-ai/web-llm'
import type { LlmWorkerApi } from './llm-worker-api.ts'
import { LlmLoadError, LlmPlanError, OrchestratorError, WebGpuUnavailableError, toError } from '../errors.ts'
import { PlanDraftSchema, issuesText, planJsonSchema, type PlanDraft } from '../plan/index.ts'
import type { CapabilityInfo, PlanRequest } from '../plan/index.ts'
import { SupervisedWorker, webWorkerHandle, logger, type WorkerSpawn } from '../../core/index.ts'

const log = logger('orchestrator:llm')

/** Load progress, 0..1, with WebLLM's text. */
export interface LlmProgress {
  progress: number
  text: string
}

/** An LLM able to turn a request into a plan draft. */
export interface LlmEngine {
  /** Whether the engine can run here, without downloading anything. */
  available(): Promise<{ ok: boolean; reason?: string }>
  /** Load a model (downloads weights on first use). Rejects with `WebGpuUnavailableError` or `LlmLoadError`. */
  load(model: string, onProgress: (p: LlmProgress) => void): Promise<void>
  /** Plan; rejects with `LlmPlanError`. */
  plan(request: PlanRequest, capabilityCatalog: readonly CapabilityInfo[], opts?: { signal?: AbortSignal }): Promise<PlanDraft>
  unload(): Promise<void>
}

/** The part of an MLC engine we use (so tests can inject a fake). */
export interface MlcEngineLike {
  chat: {
    completions: {
      create(
        request: {
          messages: Array<{ role: 'system' | 'user'; content: string }>
          response_format: { type: 'json_object'; schema: string }
          temperature?: number
          max_tokens?: number
          stream?: false
        },
        opts?: { signal?: AbortSignal }
      ): Promise<{ choices: Array<{ message: { content: string | null } }> }>
    }
  }
  unload(): Promise<void>
}

/** Creates a loaded MLC engine. */
export type MlcEngineFactory = (opts: {
  model: string
  appConfig?: AppConfig
  onProgress: (report: { progress: number; text: string }) => void
}) => Promise<MlcEngineLike>

/** The WebGPU entry point (`navigator.gpu`), injectable for tests. */
export interface GpuLike {
  requestAdapter(): Promise<unknown>
}

/** Options of `WebLlmEngine`. */
export interface WebLlmEngineInit {
  /**
   * Models to offer, e.g. self-hosted weights:
   * `{ model: 'https://host/Qwen2.5-0.5B-Instruct-q4f16_1-MLC', model_id: 'qwen-0.5b', model_lib: 'https://host/qwen-0.5b.wasm' }`.
   * Default: WebLLM's prebuilt list.
   */
  models?: ModelRecord[]
  /** Keep WebLLM's prebuilt models besides `models`. Default false when `models` is given. */
  includePrebuilt?: boolean
  /** Default: `navigator.gpu`. */
  gpu?: GpuLike | null
  /** Default: a Web Worker (`llm-worker.ts`) driven by `CreateWebWorkerMLCEngine`. */
  engineFactory?: MlcEngineFactory
  /** Tokens the plan may use. Default 1024. */
  maxTokens?: number
}

/** Options of {@link llmWorkerEngineFactory}. */
export interface LlmWorkerEngineInit {
  /** Makes the worker that runs `LlmWorkerApi` (default: the module worker `llm-worker.ts`). */
  spawn: WorkerSpawn
  /** Deadline of a model load, download included (ms). Default 20 minutes. */
  loadDeadlineMs?: number
  /** Deadline of one plan (chat completion) (ms). Default 120 000, the plan service's own. */
  planDeadlineMs?: number
}

/**
 * An engine factory whose engine runs in a supervised worker: a load and each
 * completion have a deadline, and a completion past it, aborted, or on a worker
 * that died gets the worker terminated (nothing else can stop a hung WebGPU
 * generation). The next completion starts a new worker and loads the model again.
 */
export function llmWorkerEngineFactory(init: LlmWorkerEngineInit): MlcEngineFactory {
  return async ({ model, appConfig, onProgress }) => {
    let loaded = false
    const worker = new SupervisedWorker<LlmWorkerApi>({
      spawn: init.spawn,
      label: 'the LLM worker',
      deadlineMs: init.planDeadlineMs ?? 120_000,
      onReplace: (reason) => {
        loaded = false
        log('the LLM worker was replaced: %s', reason.message)
      }
    })
    let loading: Promise<void> | undefined
    const load = (signal?: AbortSignal): Promise<void> => {
      if (loaded) return Promise.resolve()
      loading ??= worker
        .call((r) => r.load(model, appConfig, Comlink.proxy(onProgress)), { deadlineMs: init.loadDeadlineMs ?? 20 * 60_000, signal })
        .then(() => {
          loaded = true
        })
        .finally(() => {
          loading = undefined
        })
      return loading
    }
    try {
      await load()
    } catch (err) {
      await worker.stop()
      throw err
    }
    return {
      chat: {
        completions: {
          create: async (request, opts = {}) => {
            await load(opts.signal)
            return await worker.call((r) => r.complete(request), { deadlineMs: init.planDeadlineMs, signal: opts.signal })
          }
        }
      },
      async unload() {
        try {
          if (worker.alive) await worker.call((r) => r.unload(), { deadlineMs: 5000 })
        } finally {
          await worker.stop()
        }
      }
    }
  }
}

/**
 * Default factory: a module worker that owns the WebLLM engine, driven over Comlink,
 * so the page never bundles WebLLM (~6 MB) and the precache never includes it.
 */
export const webWorkerEngineFactory: MlcEngineFactory = llmWorkerEngineFactory({
  spawn: () => webWorkerHandle(new Worker(new URL('./llm-worker.ts', import.meta.url), { type: 'module', name: 'zerostate-llm' }))
})

/** The plan prompt's line about the task's input (its preview), or nothing when it has none. */
export function inputLine(request: PlanRequest): string {
  return request.inputPreview != null ? `\nInput: ${request.inputPreview}` : ''
}

/** System prompt: the catalog, the rules and the output shape. */
export function planningPrompt(catalog: readonly CapabilityInfo[]): string {
  const lines = catalog.map((c) => `- ${c.capability} (from ${c.minPrice} credits): ${c.examples.join(' | ')}`)
  return [
    'You split a user task into steps for a mesh of agents. Answer with JSON only.',
    'Use ONLY these capabilities, one or two per step:',
    ...lines,
    'Rules: step ids are s1, s2, …; a step that needs another step\'s result lists it in "dependencies" and takes',
    '"input": {"from":"step","step":"<id>"}; otherwise "input": {"from":"task.input"}. Independent steps have no',
    'dependencies. "estimated_cost" is the capability\'s price. "execution_mode" is "sequential", "parallel" or "dag".',
    '"total_estimated_cost" is the sum. Use as few steps as the task needs.'
  ].join('\n')
}

/** `LlmEngine` on WebLLM (MLC) in a Web Worker, with constrained JSON output. */
export class WebLlmEngine implements LlmEngine {
  readonly #init: WebLlmEngineInit
  #engine: MlcEngineLike | undefined
  #model: string | undefined

  constructor(init: WebLlmEngineInit = {}) {
    this.#init = init
  }

  #gpu(): GpuLike | null | undefined {
    if ('gpu' in this.#init) return this.#init.gpu
    return (globalThis.navigator as { gpu?: GpuLike } | undefined)?.gpu
  }

  async available(): Promise<{ ok: boolean; reason?: string }> {
    const gpu = this.#gpu()
    if (gpu == null) return { ok: false, reason: 'WebGPU is not available in this browser (navigator.gpu is missing)' }
    try {
      const adapter = await gpu.requestAdapter()
      if (adapter == null) return { ok: false, reason: 'WebGPU has no adapter here (no usable GPU)' }
      return { ok: true }
    } catch (err) {
      return { ok: false, reason: `WebGPU failed to give an adapter: ${toError(err).message}` }
    }
  }

  /** The models this engine offers, or undefined for WebLLM's prebuilt list. */
  appConfig(prebuilt?: AppConfig): AppConfig | undefined {
    const own = this.#init.models
    if (own == null) return prebuilt
    const include = this.#init.includePrebuilt === true && prebuilt != null
    return { ...(prebuilt ?? {}), model_list: [...own, ...(include ? prebuilt.model_list : [])] }
  }

  async load(model: string, onProgress: (p: LlmProgress) => void): Promise<void> {
    const a = await this.available()
    if (!a.ok) throw new WebGpuUnavailableError(`${a.reason}: the local LLM planner cannot run, so planning falls back to a peer or the built-in rules`)
    if (this.#engine != null && this.#model === model) return
    if (this.#engine != null) await this.unload()
    const own = this.#init.models
    if (own != null && this.#init.includePrebuilt !== true && !own.some((m) => m.model_id === model)) {
      throw new LlmLoadError(`Model "${model}" is not in the configured model list (${own.map((m) => m.model_id).join(', ')})`)
    }
    const factory = this.#init.engineFactory ?? webWorkerEngineFactory
    try {
      this.#engine = await factory({
        model,
        appConfig: this.appConfig(),
        onProgress: (r) => {
          try {
            const p = Number.isFinite(r?.progress) ? Math.min(1, Math.max(0, r.progress)) : 0
            onProgress({ progress: p, text: String(r?.text ?? '') })
          } catch (err) {
            log.error('progress listener threw: %s', toError(err).message)
          }
        }
      })
      this.#model = model
    } catch (err) {
      if (err instanceof OrchestratorError) throw err
      const e = toError(err)
      throw new LlmLoadError(`Loading model "${model}" failed: ${e.message}`, { cause: err })
    }
  }

  async plan(request: PlanRequest, capabilityCatalog: readonly CapabilityInfo[], opts: { signal?: AbortSignal } = {}): Promise<PlanDraft> {
    const engine = this.#engine
    if (engine == null) throw new LlmPlanError('No model is loaded: call load() first')
    opts.signal?.throwIfAborted()
    const caps = request.capabilities != null && request.capabilities.length > 0 ? `\nRequired capabilities: ${request.capabilities.join(', ')}` : ''
    let content: string | null | undefined
    try {
      const reply = await engine.chat.completions.create(
        {
          messages: [
            { role: 'system', content: planningPrompt(capabilityCatalog) },
            { role: 'user', content: `Task: ${request.description}${caps}${inputLine(request)}` }
          ],
          response_format: { type: 'json_object', schema: JSON.stringify(planJsonSchema) },
          temperature: 0,
          max_tokens: this.#init.maxTokens ?? 1024,
          stream: false
        },
        { signal: opts.signal }
      )
      content = reply?.choices?.[0]?.message?.content
    } catch (err) {
      // Cancelled: the worker was terminated; say why with the caller's reason, as an abort does.
      if (opts.signal?.aborted === true) throw opts.signal.reason
      throw new LlmPlanError(`The LLM failed while planning: ${toError(err).message}`, { cause: err })
    }
    if (typeof content !== 'string' || content.length === 0) throw new LlmPlanError('The LLM returned an empty answer')
    let json: unknown
    try {
      json = JSON.parse(content)
    } catch (err) {
      throw new LlmPlanError(`The LLM answered with text that is not JSON: ${content.slice(0, 80)}`, { cause: err })
    }
    // Small models often emit a string for an empty path or extra keys: keep what the schema allows.
    const res = v.safeParse(PlanDraftSchema, json)
    if (!res.success) throw new LlmPlanError(`The LLM's plan does not match the plan schema: ${issuesText(res.issues)}`)
    return res.output
  }

  async unload(): Promise<void> {
    const engine = this.#engine
    this.#engine = undefined
    this.#model = undefined
    if (engine == null) return
    try {
      await engine.unload()
    } catch (err) {
      log('unload failed: %s', toError(err).message)
    }
  }
}
