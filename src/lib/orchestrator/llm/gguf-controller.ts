/**
 * The GGUF model this tab donates (issue 14), as Settings shows it: load one from a URL
 * (self-hosted weights; wllama keeps them in the browser's cache, so a second load does
 * not download) or from a file picked on disk, with progress; cancel a load; unload it;
 * its speed (tokens per second, measured once after the load and then on every generation
 * it runs for the mesh); and, before anything is downloaded, a clear sentence when the model
 * cannot run here (not GGUF, too big for this device or for WebAssembly, not reachable).
 * It is the `LlmRunner` the runtime runs `llm-prompt` agents on.
 */
import { logger } from '../../core/index.ts'
import type { LlmGenerateRequest, LlmGenerateResult, LlmModelInfo, LlmRunner } from '../../runtime/index.ts'
import { LlmLoadError, toError } from '../errors.ts'
import type { LlmProgress } from './llm-engine.ts'
import type { WllamaEngine, WllamaModel } from './wllama-engine.ts'
import type { GgufSource } from './wllama-worker-api.ts'

const log = logger('orchestrator:llm:gguf')

/** "GGUF" as the file's first four bytes. */
const GGUF_MAGIC = [0x47, 0x47, 0x55, 0x46]
/** The most a WebAssembly model can address here (memory64 in Chromium: 16 GiB). */
export const MAX_GGUF_BYTES = 16 * 1024 ** 3
/** Share of the device's memory a model may take (the page, the browser and the KV cache need the rest). */
const DEVICE_SHARE = 0.75
/** Tokens generated to measure the speed after a load. */
const SPEED_PROBE_TOKENS = 16

/** The file is not a GGUF model. */
export class GgufFormatError extends LlmLoadError {
  override readonly name: string = 'GgufFormatError'
  static override readonly defaultMessage: string = 'This is not a GGUF model'
}

/** The model is larger than this device or WebAssembly can hold. */
export class ModelTooLargeError extends LlmLoadError {
  override readonly name: string = 'ModelTooLargeError'
  static override readonly defaultMessage: string = 'This model is too big to run here'
}

/** The model's URL could not be read (network, CORS, the page's Content-Security-Policy, an HTTP error). */
export class ModelUnreachableError extends LlmLoadError {
  override readonly name: string = 'ModelUnreachableError'
  static override readonly defaultMessage: string = 'The model could not be downloaded'
}

/** The GGUF model of this tab, as Settings shows it. */
export interface GgufState {
  state: 'idle' | 'checking' | 'loading' | 'ready' | 'error'
  /** What is (being) loaded: a URL or a file name. */
  source?: string
  /** 0..1 while loading. */
  progress?: number
  progressText?: string
  /** Bytes of the model, once known. */
  bytes?: number
  model?: WllamaModel
  /** Measured generation speed (tokens per second): after the load, then a running average of the generations served. */
  tokensPerSecond?: number
  /** Why the last load failed or why the model cannot run here (a sentence). */
  reason?: string
  /** The error's name (GgufFormatError, ModelTooLargeError, ModelUnreachableError, LlmLoadError). */
  reasonName?: string
}

/** What a load is given: a URL, bytes, or a file picked on disk (read in the model's worker, never copied into the page). */
export type GgufLoadSource = GgufSource

/** Options of `GgufController`. */
export interface GgufControllerInit {
  /** This device's memory in GiB (default `navigator.deviceMemory`; unknown: only the WebAssembly cap applies). */
  deviceMemoryGiB?: number
  /** `fetch` for the URL check (default the global one). */
  fetch?: typeof fetch
  /** Measure the speed after a load (default true). */
  measure?: boolean
}

function gib(n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GB` : `${(n / 1024 ** 2).toFixed(1)} MB`
}

/** The sentence for bytes that do not start with "GGUF": what they look like instead. */
export function notGgufReason(head: Uint8Array, what: string): string {
  const text = new TextDecoder('latin1').decode(head.subarray(0, 16))
  let looks = ''
  if (text.startsWith('PK')) looks = ' (it looks like a zip archive, e.g. a PyTorch checkpoint)'
  else if (/^\s*</.test(text)) looks = ' (it looks like an HTML page: is the URL the file itself, e.g. …/resolve/main/model.gguf?)'
  else if (head.byteLength >= 10 && head[8] === 0x7b && head[9] === 0x22) looks = ' (it looks like safetensors)'
  else if (text.startsWith('ggml') || text.startsWith('ggjt') || text.startsWith('lmgg')) looks = ' (an old GGML file: convert it to GGUF)'
  return `${what} is not a GGUF model${looks}: wllama runs llama.cpp's GGUF files only. Pick a .gguf file, or convert the model with llama.cpp's convert_hf_to_gguf.py.`
}

function isGguf(head: Uint8Array): boolean {
  return GGUF_MAGIC.every((b, i) => head[i] === b)
}

/** The GGUF model this tab loads and donates. */
export class GgufController implements LlmRunner {
  readonly #engine: WllamaEngine
  readonly #changed: () => void
  readonly #init: GgufControllerInit
  #state: GgufState = { state: 'idle' }
  #abort: AbortController | undefined

  constructor(engine: WllamaEngine, changed: () => void, init: GgufControllerInit = {}) {
    this.#engine = engine
    this.#changed = changed
    this.#init = init
  }

  state(): GgufState {
    return { ...this.#state }
  }

  /** The most bytes a model may have on this device, and why. */
  limit(): { bytes: number; why: string } {
    const device = this.#init.deviceMemoryGiB ?? (globalThis.navigator as { deviceMemory?: number } | undefined)?.deviceMemory
    const share = device != null && device > 0 ? Math.floor(device * 1024 ** 3 * DEVICE_SHARE) : undefined
    if (share != null && share < MAX_GGUF_BYTES)
      return { bytes: share, why: `this device reports ${device} GB of memory and a model may take ${DEVICE_SHARE * 100} % of it (${gib(share)})` }
    return { bytes: MAX_GGUF_BYTES, why: `WebAssembly can address at most ${gib(MAX_GGUF_BYTES)}` }
  }

  /** Check a model before loading it: GGUF, not too big, reachable. Resolves with its size; rejects with a sentence. */
  async check(source: GgufLoadSource, signal?: AbortSignal): Promise<number> {
    if ('bytes' in source || 'file' in source) {
      const what = `"${source.name ?? 'This file'}"`
      const head = 'bytes' in source ? source.bytes.subarray(0, 16) : new Uint8Array(await source.file.slice(0, 16).arrayBuffer())
      const size = 'bytes' in source ? source.bytes.byteLength : source.file.size
      if (!isGguf(head)) throw new GgufFormatError(notGgufReason(head, what))
      this.#tooBig(size, what)
      return size
    }
    const url = source.url
    if (!/^https?:\/\//.test(url))
      throw new ModelUnreachableError(`"${url.slice(0, 200)}" is not a URL: give https://…/model.gguf (or http://… on this machine).`)
    if (!/\.gguf(\?.*)?$/i.test(new URL(url).pathname + new URL(url).search))
      throw new GgufFormatError(
        `${url.slice(0, 200)} does not name a .gguf file: wllama loads GGUF models by their URL (…/model.gguf, or the first part of a split model, …-00001-of-00003.gguf).`
      )
    // Weights already in this browser's cache load without the network (offline too).
    const cached = await this.#engine.cachedBytes(url)
    if (cached > 0) {
      this.#tooBig(cached, url.slice(0, 200))
      return cached
    }
    let res: Response
    try {
      res = await (this.#init.fetch ?? fetch)(url, { headers: { Range: 'bytes=0-15' }, ...(signal != null ? { signal } : {}) })
    } catch (err) {
      if (signal?.aborted === true) throw err
      throw new ModelUnreachableError(
        `${url.slice(0, 200)} could not be reached (${toError(err).message}): the host is down, does not allow this site (CORS), or is not one of the model hosts this app may connect to (its Content-Security-Policy; a deployment adds hosts with ZEROSTATE_MODEL_HOSTS).`,
        { cause: err }
      )
    }
    if (!res.ok)
      throw new ModelUnreachableError(`${url.slice(0, 200)} answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}: check the URL.`)
    // The size: from Content-Range (a server that honours Range), else Content-Length.
    const range = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '')
    const length = Number(res.headers.get('content-length') ?? Number.NaN)
    const size = range != null ? Number(range[1]) : res.status === 200 && Number.isFinite(length) ? length : undefined
    // The first bytes only: a server that ignores Range would send the whole model.
    const head = new Uint8Array(16)
    let got = 0
    const reader = res.body?.getReader()
    try {
      while (reader != null && got < head.byteLength) {
        const { done, value } = await reader.read()
        if (done) break
        const take = value.subarray(0, head.byteLength - got)
        head.set(take, got)
        got += take.byteLength
      }
    } finally {
      await reader?.cancel().catch(() => {})
    }
    if (!isGguf(head.subarray(0, got))) throw new GgufFormatError(notGgufReason(head.subarray(0, got), url.slice(0, 200)))
    if (size != null) this.#tooBig(size, url.slice(0, 200))
    return size ?? 0
  }

  #tooBig(size: number, what: string): void {
    const { bytes, why } = this.limit()
    if (size > bytes)
      throw new ModelTooLargeError(
        `${what} is ${gib(size)}, too big to run here: ${why}. Pick a smaller model or a smaller quantization (Q4_K_M is about a quarter of the F16 size).`
      )
  }

  /** Check, then load the model (replacing the loaded one), with progress; then measure its speed. */
  async load(source: GgufLoadSource, onProgress: (p: LlmProgress) => void = () => {}): Promise<WllamaModel> {
    this.#abort?.abort(new LlmLoadError('another model was chosen'))
    const abort = new AbortController()
    this.#abort = abort
    const label = 'url' in source ? source.url : (source.name ?? 'a file')
    this.#set({
      state: 'checking',
      source: label,
      progress: 0,
      progressText: 'Checking the model…',
      reason: undefined,
      reasonName: undefined,
      model: undefined,
      tokensPerSecond: undefined,
      bytes: undefined
    })
    try {
      const bytes = await this.check(source, abort.signal)
      this.#set({ state: 'loading', bytes: bytes || undefined, progressText: 'url' in source ? 'Starting the download…' : 'Reading the file…' })
      const model = await this.#engine.loadGguf(
        source,
        (p) => {
          if (this.#abort !== abort) return
          this.#set({ progress: p.progress, progressText: p.text })
          onProgress(p)
        },
        { signal: abort.signal }
      )
      if (this.#abort !== abort) throw abort.signal.reason
      this.#set({ state: 'ready', model, progress: 1, progressText: model.cached === true ? 'Loaded from this browser’s cache' : 'Loaded' })
      if (this.#init.measure !== false) void this.#measure(model)
      return model
    } catch (err) {
      const e = abort.signal.aborted ? toError(abort.signal.reason) : toError(err)
      if (this.#abort === abort) {
        this.#abort = undefined
        // A cancel is the user's choice, not a failure: back to idle, saying so.
        const cancelled = abort.signal.aborted && abort.signal.reason === this.#cancelled
        this.#set({
          state: cancelled ? 'idle' : 'error',
          reason: e.message,
          reasonName: e.name,
          progress: undefined,
          progressText: undefined,
          model: undefined
        })
      }
      throw e
    }
  }

  /** Stop a load under way (its worker is stopped; nothing stays loaded). */
  cancel(): void {
    this.#cancelled = new LlmLoadError('The load was cancelled.')
    this.#abort?.abort(this.#cancelled)
  }
  #cancelled: Error | undefined

  /** Unload the model: this tab stops running llm-prompt agents and stops advertising `llm` (its cached weights stay). */
  async unload(): Promise<void> {
    this.#abort?.abort(new LlmLoadError('The model was unloaded.'))
    this.#abort = undefined
    await this.#engine.unload()
    this.#set({
      state: 'idle',
      model: undefined,
      progress: undefined,
      progressText: undefined,
      tokensPerSecond: undefined,
      reason: undefined,
      reasonName: undefined
    })
  }

  /** The loaded model (`LlmRunner`). */
  models(): LlmModelInfo[] {
    return this.#state.state === 'ready' ? this.#engine.models() : []
  }

  /** Generate on the loaded model (`LlmRunner`), folding the run into the measured speed. */
  async generate(req: LlmGenerateRequest, opts: { signal?: AbortSignal; onToken?: (text: string) => void } = {}): Promise<LlmGenerateResult> {
    const t0 = performance.now()
    const res = await this.#engine.generate(req, opts)
    this.#note(res.tokens, performance.now() - t0)
    return res
  }

  async #measure(model: WllamaModel): Promise<void> {
    try {
      await this.generate({ prompt: 'Hello', maxTokens: SPEED_PROBE_TOKENS, temperature: 0 })
    } catch (err) {
      log('measuring %s failed: %s', model.name, toError(err).message)
    }
  }

  #note(tokens: number, ms: number): void {
    if (tokens < 2 || ms <= 0 || this.#state.state !== 'ready') return
    const tps = (tokens * 1000) / ms
    const prev = this.#state.tokensPerSecond
    this.#set({ tokensPerSecond: prev == null ? tps : prev * 0.7 + tps * 0.3 })
  }

  #set(patch: Partial<GgufState>): void {
    this.#state = { ...this.#state, ...patch }
    for (const k of Object.keys(this.#state) as Array<keyof GgufState>) if (this.#state[k] === undefined) delete this.#state[k]
    this.#changed()
  }
}
