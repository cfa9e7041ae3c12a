/**
 * Validation of a module before anything runs it: size, binary structure, the
 * ABI's imports and exports, and the memory cap (rewritten into the module).
 * Used on the main thread when publishing and inside the worker before compiling.
 */
import { MAX_MODULE_BYTES, type AgentAbi, type WasmAbi } from './constants.ts'
import { ForbiddenImportError, InvalidModuleError } from './errors.ts'
import { WASI_PREVIEW1_FUNCTIONS } from './wasi-host.ts'
import { TOOL_IMPORT_MODULE } from './tool-bridge.ts'
import { capMemory, checkAbi, importMemory, parseModule } from './wasm-binary.ts'

const wasiNames: ReadonlySet<string> = new Set(WASI_PREVIEW1_FUNCTIONS)

/** The WASI preview1 functions the sandbox provides (all of them). */
export function wasiFunctionNames(): ReadonlySet<string> {
  return wasiNames
}

/**
 * Check `bytes` for `abi` and return them with the memory maximum capped at
 * `capPages`. Throws `InvalidModuleError`, `ForbiddenImportError` or
 * `AgentMemoryLimitError` with a sentence saying what is wrong. Does not compile.
 */
export function prepareModule(bytes: Uint8Array, abi: WasmAbi, capPages: number): Uint8Array {
  if (bytes.byteLength > MAX_MODULE_BYTES) {
    throw new InvalidModuleError(`the module is ${(bytes.byteLength / 1048576).toFixed(1)} MiB; the limit is ${MAX_MODULE_BYTES / 1048576} MiB`)
  }
  const info = parseModule(bytes)
  checkAbi(info, abi)
  if (abi === 'wasi-preview1') {
    const names = wasiFunctionNames()
    for (const imp of info.imports) {
      if (imp.module !== TOOL_IMPORT_MODULE && !names.has(imp.name))
        throw new ForbiddenImportError(`module imports "${imp.module}.${imp.name}", which is not a WASI preview1 function this runtime provides`)
    }
  }
  return capMemory(bytes, info, capPages)
}

/**
 * As `prepareModule`, but the module's memory becomes an import of a host memory
 * (see `importMemory`), so the sandbox can reuse one memory across calls.
 */
export function prepareModuleForHostMemory(bytes: Uint8Array, abi: WasmAbi, capPages: number): { bytes: Uint8Array; min: number; max: number } {
  prepareModule(bytes, abi, capPages)
  return importMemory(bytes, parseModule(bytes), capPages)
}

/**
 * Full check including the engine's own validation (compiles nothing). An
 * `llm-prompt` agent has no module: its bytes must be empty.
 */
export function validateModule(bytes: Uint8Array, abi: AgentAbi, capPages: number): void {
  if (abi === 'llm-prompt') {
    if (bytes.byteLength !== 0) throw new InvalidModuleError('an llm-prompt agent has no WebAssembly module: publish it with empty bytes')
    return
  }
  const capped = prepareModule(bytes, abi, capPages)
  if (!WebAssembly.validate(capped as Uint8Array<ArrayBuffer>)) {
    throw new InvalidModuleError('the module is not valid WebAssembly (the engine rejected it)')
  }
}
