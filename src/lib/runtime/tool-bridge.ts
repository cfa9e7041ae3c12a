/**
 * The host import behind `zerostate.tool_call` (issue 14): a WebAssembly import is
 * synchronous, the tool host is async (memory, the mesh, `fetch`) and lives on the
 * main thread, so a call must suspend the agent until the answer comes back.
 *
 * The ABI (both `wasi-preview1` and `json-v1`), module `zerostate`:
 * - `tool_call(name_ptr, name_len, args_ptr, args_len) -> i32`: call the tool named by
 *   the UTF-8 at name_ptr with the JSON arguments at args_ptr; returns the byte length
 *   of the reply, `{"ok":true,"value":…}` or `{"ok":false,"error":{"name","message","tool","grant"?}}`.
 * - `tool_result(ptr, len) -> i32`: copy the last reply (up to len bytes) to ptr;
 *   returns the bytes copied. Two calls, so no language needs an allocator export.
 *
 * How the agent is suspended, by what the worker has (chosen per call, in this order):
 * - **JSPI** (`WebAssembly.Suspending` / `WebAssembly.promising`; Chromium ≥ 137, so
 *   the Chromium 156 here): `tool_call` is a suspending import and the agent's entry is
 *   called through `promising`; the worker's event loop keeps running while the agent's
 *   stack is parked, and the answer arrives as an ordinary message. This needs neither
 *   shared memory nor cross-origin isolation: the app's tabs are not isolated, so they
 *   have no `SharedArrayBuffer`, and this is the only way a tab's worker can wait.
 * - **Atomics.wait** on a `SharedArrayBuffer` (Node's worker_threads, whose V8 11.3 in
 *   Node 20 has JSPI only behind a flag and with an older API): the worker posts the
 *   request, blocks in `Atomics.wait` until the main thread bumps the flag, and takes
 *   the answer with `receiveMessageOnPort` (handed in by the Node entry, as the sandbox
 *   core has no Node imports). The sandbox's deadline still terminates a blocked worker.
 * - neither: the call answers `ToolsUnavailableError` at once; nothing blocks or spins.
 */
import { ToolsUnavailableError } from './errors.ts'

/** The import module of the tool ABI. */
export const TOOL_IMPORT_MODULE = 'zerostate'
/** The functions of the tool ABI. */
export const TOOL_IMPORT_NAMES = ['tool_call', 'tool_result'] as const

/** The worker's end of a run's tool channel. */
export interface ToolChannel {
  port: MessagePort
  /** A counter on shared memory the main thread bumps after each answer (where shared memory exists). */
  flag?: Int32Array
}

/** What a tool request and its answer look like on the channel. */
interface ToolRequestMessage {
  id: number
  name: string
  args: string
}
interface ToolAnswerMessage {
  id: number
  reply: string
}

/** Handles one call on the main thread: the JSON reply (a `ToolReply`). */
export type ToolCallHandler = (name: string, argsJson: string) => Promise<string>

/** The main thread's end: serve calls from a worker until closed. */
export interface OpenToolChannel {
  /** Send this to the worker (its port is in `transfer`). */
  channel: ToolChannel
  transfer: Transferable[]
  close(): void
}

interface JspiWebAssembly {
  Suspending: new (fn: (...args: number[]) => Promise<number>) => WebAssembly.ImportValue
  promising: <F extends (...args: never[]) => unknown>(fn: F) => (...args: Parameters<F>) => Promise<ReturnType<F>>
}

/** Whether this engine has JSPI (`WebAssembly.Suspending` and `WebAssembly.promising`). */
export function hasJspi(): boolean {
  const wa = WebAssembly as unknown as Partial<JspiWebAssembly>
  return typeof wa.Suspending === 'function' && typeof wa.promising === 'function'
}

/** Wrap an export so a suspending import may park it (JSPI). */
export function promising<F extends (...args: never[]) => unknown>(fn: F): (...args: Parameters<F>) => Promise<ReturnType<F>> {
  return (WebAssembly as unknown as JspiWebAssembly).promising(fn)
}

/** Open a channel for one run: `handler` answers each call the worker sends. */
export function openToolChannel(handler: ToolCallHandler): OpenToolChannel {
  const { port1, port2 } = new MessageChannel()
  const flag = typeof SharedArrayBuffer === 'function' ? new Int32Array(new SharedArrayBuffer(4)) : undefined
  let open = true
  const onMessage = (e: MessageEvent<ToolRequestMessage>): void => {
    const m = e.data
    if (m == null || typeof m.id !== 'number' || typeof m.name !== 'string' || typeof m.args !== 'string') return
    void handler(m.name, m.args).then((reply) => {
      if (!open) return
      port1.postMessage({ id: m.id, reply } satisfies ToolAnswerMessage)
      if (flag != null) {
        Atomics.add(flag, 0, 1)
        Atomics.notify(flag, 0)
      }
    })
  }
  port1.addEventListener('message', onMessage as EventListener)
  port1.start()
  return {
    channel: { port: port2, ...(flag != null ? { flag } : {}) },
    transfer: [port2],
    close() {
      open = false
      port1.removeEventListener('message', onMessage as EventListener)
      port1.close()
    }
  }
}

/** Options of the worker side. */
export interface ToolImportsInit {
  /** The run's channel; without one every call is refused with `reject`'s reply. */
  channel?: ToolChannel
  /** The agent's memory (read at each call: it may grow). */
  memory: () => WebAssembly.Memory
  /** Take a message from a port synchronously (Node's `receiveMessageOnPort`); enables the Atomics bridge. */
  receiveSync?: (port: MessagePort) => unknown
  /** The reply when no channel was given (the manifest declares no tools). */
  reject: (name: string) => string
  /** Told of every reply (the sandbox keeps the last error to report if the agent then fails). */
  onReply?: (reply: string) => void
}

/** The worker side: the import object, and whether the agent's entry must be called through `promising`. */
export interface ToolImports {
  imports: Record<(typeof TOOL_IMPORT_NAMES)[number], WebAssembly.ImportValue>
  /** True when `tool_call` is a JSPI suspending import. */
  suspending: boolean
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
/** How long one `Atomics.wait` slice lasts (ms); the loop re-checks between slices. */
const WAIT_SLICE_MS = 1000

function unavailable(name: string, why: string): string {
  const err = new ToolsUnavailableError(why)
  return JSON.stringify({ ok: false, error: { name: err.name, message: err.message, tool: name } })
}

/** Build the `zerostate` imports for one agent instance. */
export function toolImports(init: ToolImportsInit): ToolImports {
  let last = new Uint8Array()
  let nextId = 1
  const read = (ptr: number, len: number): string => {
    const mem = init.memory()
    ptr >>>= 0
    len >>>= 0
    if (ptr + len > mem.buffer.byteLength) throw new RangeError('tool_call: a pointer outside the agent memory')
    return decoder.decode(new Uint8Array(mem.buffer, ptr, len))
  }
  const keep = (reply: string): number => {
    init.onReply?.(reply)
    last = encoder.encode(reply)
    return last.byteLength
  }
  const toolResult = (ptr: number, len: number): number => {
    const mem = init.memory()
    ptr >>>= 0
    const n = Math.min(len >>> 0, last.byteLength)
    if (ptr + n > mem.buffer.byteLength) throw new RangeError('tool_result: a pointer outside the agent memory')
    new Uint8Array(mem.buffer, ptr, n).set(last.subarray(0, n))
    return n
  }
  const channel = init.channel
  if (channel == null) {
    return {
      suspending: false,
      imports: { tool_call: (np: number, nl: number, _ap: number, _al: number) => keep(init.reject(read(np, nl))), tool_result: toolResult }
    }
  }
  const { port, flag } = channel
  if (hasJspi()) {
    const waiting = new Map<number, (reply: string) => void>()
    port.addEventListener('message', ((e: MessageEvent<ToolAnswerMessage>) => {
      waiting.get(e.data?.id)?.(String(e.data.reply))
      waiting.delete(e.data?.id)
    }) as EventListener)
    port.start()
    const call = async (np: number, nl: number, ap: number, al: number): Promise<number> => {
      const name = read(np, nl)
      const args = read(ap, al)
      const id = nextId++
      const reply = await new Promise<string>((resolve) => {
        waiting.set(id, resolve)
        port.postMessage({ id, name, args } satisfies ToolRequestMessage)
      })
      return keep(reply)
    }
    return { suspending: true, imports: { tool_call: new (WebAssembly as unknown as JspiWebAssembly).Suspending(call), tool_result: toolResult } }
  }
  const receive = init.receiveSync
  if (flag != null && receive != null) {
    const call = (np: number, nl: number, ap: number, al: number): number => {
      const name = read(np, nl)
      const args = read(ap, al)
      const id = nextId++
      let seen = Atomics.load(flag, 0)
      port.postMessage({ id, name, args } satisfies ToolRequestMessage)
      for (;;) {
        const m = receive(port) as ToolAnswerMessage | undefined
        if (m != null && m.id === id) return keep(String(m.reply))
        // Sleep until the main thread bumps the flag (it posts the answer first).
        Atomics.wait(flag, 0, seen, WAIT_SLICE_MS)
        seen = Atomics.load(flag, 0)
      }
    }
    return { suspending: false, imports: { tool_call: call, tool_result: toolResult } }
  }
  return {
    suspending: false,
    imports: {
      tool_call: (np: number, nl: number) =>
        keep(unavailable(read(np, nl), 'this peer cannot suspend an agent for a tool call (no JSPI, and no shared memory to wait on)')),
      tool_result: toolResult
    }
  }
}
