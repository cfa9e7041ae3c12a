/**
 * Every sandbox limit in one place. A manifest may ask for less, the donor's
 * settings may lower them further; nothing raises them.
 */

/** One WebAssembly page. */
export const WASM_PAGE_BYTES = 65_536

/** Largest module accepted (bytes). */
export const MAX_MODULE_BYTES = 16 * 1024 * 1024

/** Default memory cap per agent call (MiB). */
export const DEFAULT_MEMORY_MIB = 128

/** Default wall-time deadline per call (ms). */
export const DEFAULT_TIME_MS = 30_000

/** Default cap on an agent's stdout / JSON output (bytes). */
export const DEFAULT_OUTPUT_BYTES = 10 * 1024 * 1024

/** Cap on stderr kept for error reports (bytes); the rest is dropped, not an error. */
export const MAX_STDERR_BYTES = 64 * 1024

/** Largest JSON manifest accepted (bytes of its canonical form). */
export const MAX_MANIFEST_BYTES = 64 * 1024

/** A trap with memory at or above this fraction of the cap is reported as a memory-limit hit. */
export const MEMORY_LIMIT_TRAP_FRACTION = 0.75

/** Compiled modules kept per worker (least recently used are dropped). */
export const MODULE_CACHE_ENTRIES = 32

/** Import module allowed for WASI commands. */
export const WASI_IMPORT_MODULE = 'wasi_snapshot_preview1'

/** Import module and functions allowed for json-v1 agents. */
export const JSON_V1_IMPORT_MODULE = 'env'
export const JSON_V1_ALLOWED_IMPORTS = ['abort', 'log'] as const

/** The ABIs an agent may declare: two WebAssembly ABIs and the LLM prompt kind (no module). */
export const AGENT_ABIS = ['wasi-preview1', 'json-v1', 'llm-prompt'] as const
export type AgentAbi = (typeof AGENT_ABIS)[number]
/** The ABIs that run a WebAssembly module in the sandbox. */
export type WasmAbi = Exclude<AgentAbi, 'llm-prompt'>

/** Largest prompt template of an `llm-prompt` agent (characters). */
export const MAX_PROMPT_CHARS = 16_000

/** Most tokens an `llm-prompt` agent may ask to generate. */
export const MAX_LLM_TOKENS = 4096

/** The limits a sandbox applies to one call. */
export interface SandboxLimits {
  /** Memory cap (MiB), enforced by rewriting the module's memory maximum. */
  memoryMiB: number
  /** Wall-time deadline (ms) from `run()` to result. */
  timeMs: number
  /** Cap on output bytes (stdout for WASI, the JSON text for json-v1). */
  outputBytes: number
}

/** The defaults above as one object. */
export const DEFAULT_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  memoryMiB: DEFAULT_MEMORY_MIB,
  timeMs: DEFAULT_TIME_MS,
  outputBytes: DEFAULT_OUTPUT_BYTES
})

/** Default pool size: cores − 1, at least 1. */
export function defaultWorkerCount(): number {
  const cores = typeof navigator !== 'undefined' && typeof navigator.hardwareConcurrency === 'number' ? navigator.hardwareConcurrency : 2
  return Math.max(1, cores - 1)
}
