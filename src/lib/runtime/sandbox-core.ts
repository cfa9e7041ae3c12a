/**
 * The worker side of the sandbox, shared by the browser worker
 * (`agent-worker.ts`) and the Node worker (`agent-worker-node.ts`). It has no
 * DOM and no Node imports: it compiles modules (cached by key), instantiates
 * one fresh instance per call, and runs it under the WASI or json-v1 ABI with
 * no ambient authority. Errors come back as values, `{ name, message, stack }`.
 * A module that imports `zerostate.tool_call` reaches the run's tools through
 * `tool-bridge.ts` (JSPI where the engine has it, else a blocking wait on shared memory).
 */
import { ConsoleStdout, File, OpenFile, WASIProcExit } from '@bjorn3/browser_wasi_shim'
import { MAX_STDERR_BYTES, MEMORY_LIMIT_TRAP_FRACTION, MODULE_CACHE_ENTRIES, WASM_PAGE_BYTES, type WasmAbi } from './constants.ts'
import {
  AgentBadOutputError,
  AgentExitError,
  AgentMemoryLimitError,
  AgentOutputTooLargeError,
  AgentTrapError,
  InvalidModuleError,
  RuntimeError,
  ToolDeniedError,
  deserializeError,
  serializeError,
  type SerializedError
} from './errors.ts'
import { prepareModuleForHostMemory } from './validate.ts'
import { wasiHost } from './wasi-host.ts'
import { HOST_MEMORY_IMPORT } from './wasm-binary.ts'
import { TOOL_IMPORT_MODULE, promising, toolImports, type ToolChannel, type ToolImports } from './tool-bridge.ts'

/** One call sent to a worker. */
export interface RunRequest {
  /** Cache key of the compiled module (module hash + memory cap). */
  key: string
  abi: WasmAbi
  /** The module bytes; omitted when the pool knows this worker has compiled `key`. */
  bytes?: Uint8Array
  memoryPages: number
  input: unknown
  outputBytes: number
  /** The run's tool channel, when its manifest declares tools (transferred with the call). */
  tools?: ToolChannel
}

/** What a worker answers. */
export type RunReply = { ok: true; output: unknown; stderr: string; ms: number } | { ok: false; error: SerializedError; needsBytes?: boolean }

/** Options of `createWorkerApi`. */
export interface WorkerApiInit {
  /** Take a message from a port synchronously (Node's `receiveMessageOnPort`): lets a tool call block on shared memory. */
  receiveSync?: (port: MessagePort) => unknown
}

/** The API a sandbox worker exposes through Comlink. */
export interface WorkerApi {
  /** A no-op round trip (the baseline cost of a call). */
  ping(): number
  run(req: RunRequest): Promise<RunReply>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

class Sink {
  readonly chunks: Uint8Array[] = []
  size = 0
  constructor(
    readonly limit: number,
    readonly strict: boolean
  ) {}
  write(data: Uint8Array): void {
    if (this.size + data.byteLength > this.limit) {
      if (this.strict) throw new AgentOutputTooLargeError(`the agent wrote more than ${this.limit} bytes of output`)
      data = data.subarray(0, Math.max(0, this.limit - this.size))
    }
    this.chunks.push(data.slice())
    this.size += data.byteLength
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size)
    let at = 0
    for (const c of this.chunks) {
      out.set(c, at)
      at += c.byteLength
    }
    return out
  }
  text(): string {
    return new TextDecoder().decode(this.bytes())
  }
}

function classify(err: unknown, memory: WebAssembly.Memory | undefined, capPages: number, stderr: string): RuntimeError {
  if (err instanceof RuntimeError) return err
  const capBytes = capPages * WASM_PAGE_BYTES
  const message = err instanceof Error ? err.message : String(err)
  const used = memory?.buffer.byteLength ?? 0
  const tail = stderr.trim() ? ` — stderr: ${stderr.trim().slice(-500)}` : ''
  if (err instanceof RangeError && /out of memory|allocat/i.test(message)) {
    return new AgentMemoryLimitError(`the agent could not get the memory it asked for (cap ${capBytes / 1048576} MiB): ${message}`)
  }
  if ((err instanceof WebAssembly.RuntimeError || err instanceof RangeError) && used >= capBytes * MEMORY_LIMIT_TRAP_FRACTION) {
    return new AgentMemoryLimitError(
      `the agent reached its memory cap of ${capBytes / 1048576} MiB (${(used / 1048576).toFixed(1)} MiB in use) and stopped: ${message}${tail}`
    )
  }
  return new AgentTrapError(`the agent trapped: ${message}${tail}`)
}

function parseOutput(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

function readAsString(memory: WebAssembly.Memory, ptr: number): string {
  // AssemblyScript strings: UTF-16LE, byte length in the 4 bytes before the pointer.
  if (ptr < 4 || ptr > memory.buffer.byteLength) return ''
  const len = new DataView(memory.buffer).getUint32(ptr - 4, true)
  const end = Math.min(ptr + Math.min(len, 2000), memory.buffer.byteLength)
  return new TextDecoder('utf-16le').decode(new Uint8Array(memory.buffer, ptr, end - ptr))
}

/** The tool imports of one run and the last error a tool answered (reported if the agent then fails). */
interface RunTools {
  bridge: ToolImports
  lastError?: { name: string; message: string; tool?: string; grant?: string }
}

function runTools(req: RunRequest, memory: WebAssembly.Memory, init: WorkerApiInit): RunTools {
  const tools: RunTools = {} as RunTools
  tools.bridge = toolImports({
    ...(req.tools != null ? { channel: req.tools } : {}),
    memory: () => memory,
    ...(init.receiveSync != null ? { receiveSync: init.receiveSync } : {}),
    reject: (name) => {
      const err = new ToolDeniedError(
        `the agent may not call ${name.slice(0, 64)}: its manifest declares no tools (add "${name.slice(0, 64)}" to the manifest's "tools")`
      )
      return JSON.stringify({ ok: false, error: { name: err.name, message: err.message, tool: name.slice(0, 64), grant: 'manifest' } })
    },
    onReply: (reply) => {
      if (!reply.startsWith('{"ok":false')) return
      try {
        tools.lastError = (JSON.parse(reply) as { error: RunTools['lastError'] }).error
      } catch {
        // A reply is always JSON; nothing to keep otherwise.
      }
    }
  })
  return tools
}

/** The host memory and, for an agent that calls tools, the tool ABI (both may share the `zerostate` module). */
function hostImports(memory: WebAssembly.Memory, tools: RunTools | undefined): WebAssembly.Imports {
  const out: WebAssembly.Imports = { [HOST_MEMORY_IMPORT.module]: { [HOST_MEMORY_IMPORT.name]: memory } }
  if (tools != null) out[TOOL_IMPORT_MODULE] = { ...out[TOOL_IMPORT_MODULE], ...tools.bridge.imports }
  return out
}

/** A failed run of an agent whose last tool call failed reports that tool error (typed, naming the tool and grant). */
function withToolError(err: unknown, tools: RunTools | undefined): unknown {
  const last = tools?.lastError
  if (last == null || err instanceof WASIProcExit) return err
  return deserializeError({
    name: last.name,
    message: last.message,
    ...(last.tool != null ? { tool: last.tool } : {}),
    ...(last.grant != null ? { grant: last.grant } : {})
  })
}

async function runWasi(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  req: RunRequest,
  tools?: RunTools
): Promise<{ output: unknown; stderr: string }> {
  // Bytes reach stdin as they are (API.md TaskRequest.input); text as UTF-8; anything else as JSON.
  const stdinBytes =
    req.input instanceof Uint8Array ? req.input : typeof req.input === 'string' ? encoder.encode(req.input) : encoder.encode(JSON.stringify(req.input ?? null))
  const stdout = new Sink(req.outputBytes, true)
  const stderr = new Sink(MAX_STDERR_BYTES, false)
  const fds = [new OpenFile(new File(stdinBytes, { readonly: true })), new ConsoleStdout((b) => stdout.write(b)), new ConsoleStdout((b) => stderr.write(b))]
  const host = wasiHost({ args: ['agent'], env: [], fds })
  try {
    const instance = new WebAssembly.Instance(module, {
      wasi_snapshot_preview1: host.imports,
      ...hostImports(memory, tools)
    })
    let code: number
    if (tools?.bridge.suspending === true) {
      // JSPI: `_start` runs through `promising`; the shim's start sees it return at once, the exit comes with the promise.
      let parked: Promise<unknown> = Promise.resolve()
      const start = promising(instance.exports._start as () => void)
      const _start = (): void => {
        parked = start()
      }
      code = host.start({ exports: { ...instance.exports, _start } } as unknown as WebAssembly.Instance)
      try {
        await parked
      } catch (err) {
        if (!(err instanceof WASIProcExit)) throw err
        code = err.code
      }
    } else code = host.start(instance)
    if (code !== 0) {
      const err = new AgentExitError(`the agent exited with status ${code}${stderr.size ? `: ${stderr.text().trim().slice(-500)}` : ''}`)
      err.exitCode = code
      err.stderr = stderr.text()
      throw err
    }
  } catch (err) {
    const e = withToolError(err, tools)
    if (e instanceof WASIProcExit) throw new AgentExitError(`the agent exited with status ${e.code}`)
    throw classify(e, memory, req.memoryPages, stderr.size ? stderr.text() : '')
  }
  let text: string
  const out = stdout.bytes()
  try {
    text = decoder.decode(out)
  } catch {
    // Output that is not UTF-8 text is a byte output: it comes back as bytes (API.md).
    return { output: out, stderr: stderr.text() }
  }
  return { output: parseOutput(text), stderr: stderr.text() }
}

async function runJsonV1(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  req: RunRequest,
  tools?: RunTools
): Promise<{ output: unknown; stderr: string }> {
  const stderr = new Sink(MAX_STDERR_BYTES, false)
  const env = {
    abort(msg: number, file: number, line: number, col: number): never {
      const m = readAsString(memory, msg >>> 0)
      const f = readAsString(memory, file >>> 0)
      throw new AgentTrapError(`the agent aborted: ${m || 'no message'}${f ? ` at ${f}:${line}:${col}` : ''}`)
    },
    log(ptr: number, len: number): void {
      ptr >>>= 0
      len >>>= 0
      if (ptr + len <= memory.buffer.byteLength) stderr.write(new Uint8Array(memory.buffer, ptr, len))
    }
  }
  try {
    const instance = new WebAssembly.Instance(module, {
      env,
      ...hostImports(memory, tools)
    })
    const exports = instance.exports as { alloc: (n: number) => number; run: (p: number, n: number) => bigint | number }
    const run = tools?.bridge.suspending === true ? promising(exports.run) : exports.run
    const input = encoder.encode(JSON.stringify(req.input ?? null))
    const ptr = exports.alloc(input.byteLength) >>> 0
    if (ptr + input.byteLength > memory.buffer.byteLength) throw new AgentBadOutputError('alloc() returned a pointer outside the agent memory')
    new Uint8Array(memory.buffer, ptr, input.byteLength).set(input)
    const packed = BigInt.asUintN(64, BigInt(await run(ptr, input.byteLength)))
    const outPtr = Number(packed >> 32n)
    const outLen = Number(packed & 0xffff_ffffn)
    if (outLen > req.outputBytes) throw new AgentOutputTooLargeError(`the agent returned ${outLen} bytes of output; the limit is ${req.outputBytes}`)
    if (outPtr + outLen > memory.buffer.byteLength) throw new AgentBadOutputError('run() returned an output range outside the agent memory')
    let text: string
    try {
      text = decoder.decode(new Uint8Array(memory.buffer, outPtr, outLen))
    } catch {
      throw new AgentBadOutputError('the agent returned output that is not UTF-8')
    }
    try {
      return { output: JSON.parse(text) as unknown, stderr: stderr.text() }
    } catch {
      throw new AgentBadOutputError(`the agent returned output that is not JSON: ${text.slice(0, 80)}`)
    }
  } catch (err) {
    throw classify(withToolError(err, tools), memory, req.memoryPages, stderr.size ? stderr.text() : '')
  }
}

/** A memory that grew past its initial size by more than this is dropped, not reused. */
const REUSE_GROWTH_BYTES = 16 * 1024 * 1024

interface Compiled {
  module: WebAssembly.Module
  min: number
  max: number
  spare?: WebAssembly.Memory
  /** The module imports the tool ABI (`zerostate.tool_call`). */
  usesTools: boolean
}

/**
 * Create the worker API with its own compiled-module cache. Each call gets a
 * fresh instance; its memory is a host memory reused across calls of the same
 * module and zeroed in between. (A new memory per call reserves ~8 GiB of
 * address space each in V8, freed only by GC; a burst of calls then fails
 * with "Cannot allocate Wasm memory" — seen in the benchmark.)
 */
export function createWorkerApi(init: WorkerApiInit = {}): WorkerApi {
  const cache = new Map<string, Compiled>()

  function compiledFor(req: RunRequest): Compiled | undefined {
    const hit = cache.get(req.key)
    if (hit != null) {
      cache.delete(req.key)
      cache.set(req.key, hit)
      return hit
    }
    if (req.bytes == null) return undefined
    const prepared = prepareModuleForHostMemory(req.bytes, req.abi, req.memoryPages)
    let module: WebAssembly.Module
    try {
      module = new WebAssembly.Module(prepared.bytes as Uint8Array<ArrayBuffer>)
    } catch (err) {
      throw new InvalidModuleError(`the module is not valid WebAssembly: ${err instanceof Error ? err.message : String(err)}`)
    }
    const usesTools = WebAssembly.Module.imports(module).some((i) => i.module === TOOL_IMPORT_MODULE)
    const entry: Compiled = { module, min: prepared.min, max: prepared.max, usesTools }
    cache.set(req.key, entry)
    if (cache.size > MODULE_CACHE_ENTRIES) cache.delete(cache.keys().next().value!)
    return entry
  }

  function takeMemory(c: Compiled): WebAssembly.Memory {
    const spare = c.spare
    c.spare = undefined
    if (spare != null) return spare
    try {
      return new WebAssembly.Memory({ initial: c.min, maximum: c.max })
    } catch (err) {
      throw new AgentMemoryLimitError(`the agent's memory could not be allocated: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
  }

  function releaseMemory(c: Compiled, memory: WebAssembly.Memory): void {
    if (memory.buffer.byteLength > c.min * WASM_PAGE_BYTES + REUSE_GROWTH_BYTES) return
    new Uint8Array(memory.buffer).fill(0)
    c.spare = memory
  }

  return {
    ping: () => 0,
    async run(req) {
      const t0 = performance.now()
      try {
        const compiled = compiledFor(req)
        if (compiled == null) return { ok: false, needsBytes: true, error: { name: 'RuntimeError', message: 'module not loaded in this worker' } }
        const memory = takeMemory(compiled)
        try {
          const tools = compiled.usesTools ? runTools(req, memory, init) : undefined
          const { output, stderr } =
            req.abi === 'wasi-preview1' ? await runWasi(compiled.module, memory, req, tools) : await runJsonV1(compiled.module, memory, req, tools)
          return { ok: true, output, stderr, ms: performance.now() - t0 }
        } finally {
          releaseMemory(compiled, memory)
          req.tools?.port.close()
        }
      } catch (err) {
        return { ok: false, error: serializeError(err instanceof RuntimeError ? err : classify(err, undefined, req.memoryPages, '')) }
      }
    }
  }
}
