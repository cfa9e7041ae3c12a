/** The API of `wllama-worker.ts`, shared by the worker and the page (types only: no wllama code). */
import type { LlmGenerateRequest, LlmGenerateResult, LlmModelInfo } from '../../runtime/index.ts'

/** Where a GGUF model comes from: a URL (cached by wllama), bytes already here, or a file picked on disk (a Blob: not copied into the page). */
export type GgufSource = { url: string } | { bytes: Uint8Array; name?: string } | { file: Blob; name?: string }

/** Download or load progress, bytes. */
export interface GgufProgress {
  loaded: number
  total: number
}

/** What the wllama worker exposes over Comlink. */
export interface WllamaWorkerApi {
  /** Load a GGUF model (replacing any loaded one); `threads` 1 unless the page is cross-origin isolated. */
  load(
    source: GgufSource,
    opts: { contextSize: number; threads: number },
    onProgress: (p: GgufProgress) => void
  ): Promise<LlmModelInfo & { multiThread: boolean; cached?: boolean }>
  /** Bytes of the model at `url` in wllama's cache (the browser's Origin Private File System), 0 when it is not there. */
  cachedBytes(url: string): Promise<number>
  /** One completion; each generated piece of text goes to `onToken` as it comes. */
  generate(req: LlmGenerateRequest, onToken: (text: string) => void): Promise<LlmGenerateResult>
  unload(): Promise<void>
}
