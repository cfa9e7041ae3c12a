/**
 * `LlmEngine` on wllama (llama.cpp in WebAssembly, issue 14): GGUF models on any CPU,
 * single-thread unless the page is cross-origin isolated. It runs in its own supervised
 * worker (`wllama-worker.ts`): a load and each generation have a deadline, and one past it,
 * aborted, or on a worker that died gets the worker terminated (the model must be loaded
 * again). Besides planning it is an `LlmRunner`: it runs `llm-prompt` agents, streaming
 * each token, with a JSON Schema turned into a grammar by llama.cpp.
 */
import * as v from 'valibot'
import * as Comlink from 'comlink'
import { SupervisedWorker, logger, webWorkerHandle, type WorkerSpawn } from '../../core/index.ts'
import { LlmContextExceededError, type LlmGenerateRequest, type LlmGenerateResult, type LlmModelInfo, type LlmRunner } from '../../runtime/index.ts'
import { LlmLoadError, LlmPlanError, OrchestratorError, toError } from '../errors.ts'
import { PlanDraftSchema, issuesText, planJsonSchema, type CapabilityInfo, type PlanDraft, type PlanRequest } from '../plan/index.ts'
import type { LlmEngine, LlmProgress } from './llm-engine.ts'
import { inputLine, planningPrompt } from './llm-engine.ts'
import type { GgufSource, WllamaWorkerApi } from './wllama-worker-api.ts'

const log = logger('orchestrator:llm:wllama')

/** Options of `WllamaEngine`. */
export interface WllamaEngineInit {
  /** Makes the worker running `WllamaWorkerApi` (default: the module worker `wllama-worker.ts`). */
  spawn?: WorkerSpawn
  /** Context size to load models with (tokens). Default 2048, or the model's own when smaller. */
  contextSize?: number
  /** Deadline of a load, download included (ms). Default 20 minutes. */
  loadDeadlineMs?: number
  /** Deadline of one generation (ms). Default 120 000. */
  generateDeadlineMs?: number
  /** Tokens a plan may use. Default 1024. */
  planTokens?: number
}

/** A loaded model as this engine reports it. */
export interface WllamaModel extends LlmModelInfo {
  /** Whether llama.cpp runs multi-threaded here (only when cross-origin isolated). */
  multiThread: boolean
  /** Where it came from (a URL, or "bytes"). */
  source: string
  /** Whether the weights came from this browser's cache (no download). */
  cached?: boolean
}

function threadsHere(): number {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1
  return isolated ? Math.max(1, Math.min(4, cores - 1)) : 1
}

/** The worker's context refusal as the runtime's typed error, with the token counts its message gives. */
function contextExceeded(message: string): LlmContextExceededError {
  const m = /prompt is (\d+) tokens, over the model's context of (\d+)/.exec(message)
  const err = new LlmContextExceededError(
    m != null ? `The prompt is ${m[1]} tokens and the model's context is ${m[2]}: give a shorter input, or load a model with a longer context` : message
  )
  if (m != null) {
    err.promptTokens = Number(m[1])
    err.contextTokens = Number(m[2])
  }
  return err
}

/** The default worker: a module worker that owns wllama, so the page never bundles it. */
const defaultSpawn: WorkerSpawn = () =>
  webWorkerHandle(new Worker(new URL('./wllama-worker.ts', import.meta.url), { type: 'module', name: 'zerostate-wllama' }))

/** An LLM engine on wllama in a supervised worker. */
export class WllamaEngine implements LlmEngine, LlmRunner {
  readonly #init: WllamaEngineInit
  readonly #worker: SupervisedWorker<WllamaWorkerApi>
  #model: WllamaModel | undefined
  #loadedSource: GgufSource | undefined

  constructor(init: WllamaEngineInit = {}) {
    this.#init = init
    this.#worker = new SupervisedWorker<WllamaWorkerApi>({
      spawn: init.spawn ?? defaultSpawn,
      label: 'the wllama worker',
      deadlineMs: init.generateDeadlineMs ?? 120_000,
      onReplace: (reason) => {
        // A terminated worker lost its model.
        this.#model = undefined
        log('the wllama worker was replaced: %s', reason.message)
      }
    })
  }

  /** The loaded model, if any. */
  get model(): WllamaModel | undefined {
    return this.#model
  }

  async available(): Promise<{ ok: boolean; reason?: string }> {
    if (typeof WebAssembly !== 'object') return { ok: false, reason: 'this browser has no WebAssembly' }
    if (typeof Worker !== 'function' && this.#init.spawn == null) return { ok: false, reason: 'this environment has no Web Workers' }
    return { ok: true }
  }

  /** Load a GGUF model by URL (`LlmEngine.load`). */
  async load(model: string, onProgress: (p: LlmProgress) => void): Promise<void> {
    await this.loadGguf({ url: model }, onProgress)
  }

  /** Load a GGUF model from a URL or bytes, reporting progress (0..1 with a sentence). */
  async loadGguf(source: GgufSource, onProgress: (p: LlmProgress) => void = () => {}, opts: { signal?: AbortSignal } = {}): Promise<WllamaModel> {
    const label = 'url' in source ? source.url : 'file' in source ? (source.name ?? `${source.file.size} bytes`) : `${source.bytes.byteLength} bytes`
    const progress = (p: { loaded: number; total: number }): void => {
      try {
        const fraction = p.total > 0 ? Math.min(1, Math.max(0, p.loaded / p.total)) : 0
        onProgress({ progress: fraction, text: `Loading ${label}: ${(p.loaded / 1048576).toFixed(1)} of ${(p.total / 1048576).toFixed(1)} MB` })
      } catch (err) {
        log.error('progress listener threw: %s', toError(err).message)
      }
    }
    try {
      // A worker stopped by `unload()` starts again for the next load.
      await this.#worker.start()
      const info = await this.#worker.call(
        (r) => r.load(source, { contextSize: this.#init.contextSize ?? 2048, threads: threadsHere() }, Comlink.proxy(progress)),
        {
          deadlineMs: this.#init.loadDeadlineMs ?? 20 * 60_000,
          ...(opts.signal ? { signal: opts.signal } : {})
        }
      )
      this.#model = { ...info, source: 'url' in source ? source.url : 'file' in source ? `file ${source.name ?? ''}`.trim() : 'bytes' }
      this.#loadedSource = source
      return this.#model
    } catch (err) {
      this.#model = undefined
      if (err instanceof OrchestratorError) throw err
      throw new LlmLoadError(`Loading the model ${label.slice(0, 200)} failed: ${toError(err).message}`, { cause: err })
    }
  }

  /** Bytes of the model at `url` in wllama's cache (0: not cached, or the cache cannot be read). */
  async cachedBytes(url: string): Promise<number> {
    try {
      await this.#worker.start()
      return await this.#worker.call((r) => r.cachedBytes(url), { deadlineMs: 10_000 })
    } catch (err) {
      log('reading the model cache failed: %s', toError(err).message)
      return 0
    }
  }

  models(): LlmModelInfo[] {
    const m = this.#model
    return m == null ? [] : [{ name: m.name, family: m.family, context: m.context }]
  }

  /** The generation under way: llama.cpp runs one completion at a time on a context, so they queue here. */
  #busy: Promise<unknown> = Promise.resolve()

  /** One completion at a time (a donor runs several llm-prompt steps at once; its speed probe too): the next waits, outside its deadline. */
  async generate(req: LlmGenerateRequest, opts: { signal?: AbortSignal; onToken?: (text: string) => void } = {}): Promise<LlmGenerateResult> {
    const before = this.#busy
    const mine = Promise.withResolvers<void>()
    // The next one waits for this one and for everything before it (one that gives up early must not let it jump ahead).
    this.#busy = before.catch(() => {}).then(() => mine.promise)
    try {
      await Promise.race([
        before.catch(() => {}),
        new Promise<never>((_, reject) => {
          if (opts.signal?.aborted === true) reject(opts.signal.reason)
          opts.signal?.addEventListener('abort', () => reject(opts.signal!.reason), { once: true })
        })
      ])
      return await this.#generate(req, opts)
    } finally {
      mine.resolve()
    }
  }

  async #generate(req: LlmGenerateRequest, opts: { signal?: AbortSignal; onToken?: (text: string) => void }): Promise<LlmGenerateResult> {
    if (this.#model == null) throw new LlmLoadError('No model is loaded: load one first')
    const onToken = opts.onToken ?? (() => {})
    const forward = (t: string): void => {
      try {
        onToken(t)
      } catch (err) {
        log.error('token listener threw: %s', toError(err).message)
      }
    }
    try {
      return await this.#worker.call((r) => r.generate(req, Comlink.proxy(forward)), {
        deadlineMs: this.#init.generateDeadlineMs ?? 120_000,
        ...(opts.signal ? { signal: opts.signal } : {})
      })
    } catch (err) {
      // The engine tokenized the prompt and refused it before generating (the worker names it): typed, with the counts.
      if (err instanceof Error && err.name === 'LlmContextExceededError') throw contextExceeded(err.message)
      throw err
    }
  }

  async plan(request: PlanRequest, capabilityCatalog: readonly CapabilityInfo[], opts: { signal?: AbortSignal } = {}): Promise<PlanDraft> {
    const caps = request.capabilities != null && request.capabilities.length > 0 ? `\nRequired capabilities: ${request.capabilities.join(', ')}` : ''
    let text: string
    try {
      const res = await this.generate(
        {
          system: planningPrompt(capabilityCatalog),
          prompt: `Task: ${request.description}${caps}${inputLine(request)}\nPlan (JSON):`,
          maxTokens: this.#init.planTokens ?? 1024,
          temperature: 0,
          jsonSchema: planJsonSchema as Record<string, unknown>
        },
        opts
      )
      text = res.text
    } catch (err) {
      if (opts.signal?.aborted === true) throw opts.signal.reason
      if (err instanceof OrchestratorError) throw err
      throw new LlmPlanError(`The LLM failed while planning: ${toError(err).message}`, { cause: err })
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (err) {
      throw new LlmPlanError(`The LLM answered with text that is not JSON: ${text.slice(0, 80)}`, { cause: err })
    }
    const res = v.safeParse(PlanDraftSchema, json)
    if (!res.success) throw new LlmPlanError(`The LLM's plan does not match the plan schema: ${issuesText(res.issues)}`)
    return res.output
  }

  async unload(): Promise<void> {
    this.#model = undefined
    this.#loadedSource = undefined
    try {
      if (this.#worker.alive) await this.#worker.call((r) => r.unload(), { deadlineMs: 5000 })
    } catch (err) {
      log('unload failed: %s', toError(err).message)
    } finally {
      await this.#worker.stop()
    }
  }
}
