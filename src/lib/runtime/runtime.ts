/**
 * `createAgentRuntime()`: verifies packages, derives each call's limits
 * (runtime defaults ∧ donor settings ∧ manifest ∧ call), and runs calls in the
 * sandbox pool. `publishLocal()` validates, signs and stores a package.
 */
import type { Identity } from '../core/index.ts'
import { DEFAULT_LIMITS, defaultWorkerCount, type SandboxLimits } from './constants.ts'
import { AgentAbortedError, AgentTimeoutError } from './errors.ts'
import { runLlmPrompt, type LlmRunner } from './llm-prompt.ts'
import { MemoryAgentStore, type AgentEntry, type AgentStore } from './agent-store.ts'
import { assertManifest, signPackage, verifyPackage, type AgentId, type AgentManifest, type AgentPackage, type UnsignedManifest } from './manifest.ts'
import { validateModule } from './validate.ts'
import { pagesOf } from './wasm-binary.ts'
import { defaultWorkerFactory, type WorkerFactory } from './worker-factory.ts'
import { ComlinkWorkerPool, type AgentSandbox, type SandboxStats } from './worker-pool.ts'
import type { ToolCallContext, ToolHost } from './tool-host.ts'
import { runLlmWithTools } from './tool-llm.ts'

/** Options of `createAgentRuntime`. */
export interface AgentRuntimeInit {
  /** Worker count (the donation setting). Default: cores − 1, at least 1. */
  workers?: number
  /** Donor limits; each can only lower the defaults in constants.ts. */
  limits?: Partial<SandboxLimits>
  /** Where packages are kept. Default: in memory. */
  store?: AgentStore
  /** A different sandbox (tests); default: a `ComlinkWorkerPool`. */
  sandbox?: AgentSandbox
  /** A different worker factory for the default pool. */
  workerFactory?: WorkerFactory
  /**
   * Runs `llm-prompt` agents on a loaded language model (the composition root's LLM
   * engine); a getter, since the model comes and goes. Without one, such a call
   * rejects with `LlmUnavailableError`.
   */
  llm?: () => LlmRunner | undefined
  /** The tools agents may call (issue 14); without it every tool call is refused. */
  tools?: ToolHost
}

/** Options of one call. */
export interface RunOptions {
  signal?: AbortSignal
  /** Deadline for this call (ms); can only lower the agent's and runtime's. */
  timeoutMs?: number
  /** Each piece of text an `llm-prompt` agent generates, as it comes. */
  onToken?: (text: string) => void
  /** The task this call serves, for its tool calls' grants, scratch space and spans. Default: a task of its own. */
  task?: Omit<ToolCallContext, 'agent' | 'signal'>
}

/** The result of one call. */
export interface RunResult {
  output: unknown
  /** Wall time from `run()` to the result (ms). */
  ms: number
  /** Time the call waited for a worker (ms; issue 15's queue wait). */
  waitMs?: number
  stderr?: string
}

/** Runtime counters. */
export type RuntimeStats = SandboxStats

/** Runs agent packages in sandboxed workers. */
export interface AgentRuntime {
  /** The effective donor limits. */
  readonly limits: Readonly<SandboxLimits>
  readonly store: AgentStore
  /** Spawn the worker pool; idempotent. `run` starts it on demand. */
  start(): Promise<void>
  /** Terminate the workers; pending calls reject with `RuntimeStoppedError`. */
  stop(): Promise<void>
  /** Change the worker count (at least 1). */
  resize(workers: number): void
  /** Verify and run a package on `input`. Rejects with a `RuntimeError` subclass. */
  run(pkg: { id: string; manifest: AgentManifest; wasm: Uint8Array }, input: unknown, opts?: RunOptions): Promise<RunResult>
  stats(): RuntimeStats
}

function lower(base: number, ...others: Array<number | undefined>): number {
  return Math.min(base, ...others.filter((n): n is number => typeof n === 'number' && Number.isFinite(n) && n > 0))
}

/** Create an agent runtime. */
export function createAgentRuntime(init: AgentRuntimeInit = {}): AgentRuntime {
  const limits: SandboxLimits = Object.freeze({
    memoryMiB: lower(DEFAULT_LIMITS.memoryMiB, init.limits?.memoryMiB),
    timeMs: lower(DEFAULT_LIMITS.timeMs, init.limits?.timeMs),
    outputBytes: lower(DEFAULT_LIMITS.outputBytes, init.limits?.outputBytes)
  })
  const store = init.store ?? new MemoryAgentStore()
  const factory = init.workerFactory
  const sandbox = init.sandbox ?? new ComlinkWorkerPool(factory ? async () => factory : defaultWorkerFactory, init.workers ?? defaultWorkerCount())
  // Verified packages, keyed by the module bytes object, so warm calls skip hashing.
  const verified = new WeakMap<Uint8Array, { manifest: AgentManifest; id: AgentId }>()
  /** Failures of llm-prompt calls by error name (they run beside the sandbox, which counts its own). */
  const llmErrors: Record<string, number> = {}

  /** An llm-prompt call under the same deadline and signal as a module call. */
  /** Who calls tools, for which task (a call outside any task gets a task of its own). */
  function toolContext(m: AgentManifest, id: string, opts: RunOptions, signal?: AbortSignal): ToolCallContext {
    return {
      taskId: `run-${crypto.randomUUID()}`,
      ...opts.task,
      agent: { id, name: m.name, tools: m.tools ?? [] },
      ...(signal != null ? { signal } : {})
    }
  }

  async function runPrompt(m: AgentManifest, id: string, input: unknown, opts: RunOptions, t0: number): Promise<RunResult> {
    const timeMs = lower(limits.timeMs, m.limits?.timeMs, opts.timeoutMs)
    const controller = new AbortController()
    const timer = setTimeout(
      () => controller.abort(new AgentTimeoutError(`the agent did not finish within ${timeMs} ms`)),
      Math.max(0, timeMs - (performance.now() - t0))
    )
    const onAbort = (): void => controller.abort(new AgentAbortedError())
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const llmOpts = { signal: controller.signal, ...(opts.onToken ? { onToken: opts.onToken } : {}) }
      const tools = init.tools
      // One context for the run: its calls share one task (and so one scratch space) even outside a task.
      const ctx = tools != null ? toolContext(m, id, opts, controller.signal) : undefined
      const res =
        tools != null && ctx != null && (m.tools?.length ?? 0) > 0
          ? await runLlmWithTools(init.llm?.(), m, input, {
              ...llmOpts,
              specs: tools.list(),
              call: (name, args) => tools.call(name, args, ctx)
            })
          : await runLlmPrompt(init.llm?.(), m.llm!, m.output, input, llmOpts)
      return { output: res.output, ms: performance.now() - t0 }
    } catch (err) {
      const thrown = controller.signal.aborted && controller.signal.reason instanceof Error ? controller.signal.reason : err
      const name = thrown instanceof Error ? thrown.name : 'RuntimeError'
      llmErrors[name] = (llmErrors[name] ?? 0) + 1
      throw thrown
    } finally {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
    }
  }

  return {
    limits,
    store,
    start: () => sandbox.start(),
    stop: () => sandbox.stop(),
    resize: (n) => sandbox.resize(n),
    stats: () => {
      const s = sandbox.stats()
      const errors = { ...s.errors }
      for (const [name, n] of Object.entries(llmErrors)) errors[name] = (errors[name] ?? 0) + n
      return { ...s, errors }
    },
    async run(pkg, input, opts = {}) {
      const t0 = performance.now()
      const hit = verified.get(pkg.wasm)
      let id: AgentId
      if (hit != null && hit.manifest === pkg.manifest && hit.id === pkg.id) id = hit.id
      else {
        id = await verifyPackage(pkg.manifest, pkg.wasm, pkg.id)
        verified.set(pkg.wasm, { manifest: pkg.manifest, id })
      }
      const m = pkg.manifest
      if (m.abi === 'llm-prompt') return await runPrompt(m, id, input, opts, t0)
      const memoryMiB = lower(limits.memoryMiB, m.limits?.memoryMiB)
      const timeMs = lower(limits.timeMs, m.limits?.timeMs, opts.timeoutMs)
      await sandbox.start()
      const elapsed = performance.now() - t0
      if (elapsed >= timeMs) throw new AgentTimeoutError(`the agent did not start within ${timeMs} ms`)
      const res = await sandbox.execute({
        key: `${id}:${memoryMiB}`,
        abi: m.abi,
        bytes: pkg.wasm,
        memoryPages: pagesOf(memoryMiB),
        outputBytes: limits.outputBytes,
        timeMs: timeMs - elapsed,
        deadlineMs: timeMs,
        input,
        signal: opts.signal,
        ...(init.tools != null && (m.tools?.length ?? 0) > 0 ? { tools: toolHandler(init.tools, toolContext(m, id, opts, opts.signal)) } : {})
      })
      return { output: res.output, ms: performance.now() - t0, waitMs: res.waitMs, ...(res.stderr ? { stderr: res.stderr } : {}) }
    }
  }
}

/** The sandbox's handler of one run's tool calls: JSON in, a `ToolReply` as JSON out. */
function toolHandler(host: ToolHost, ctx: ToolCallContext): (name: string, argsJson: string) => Promise<string> {
  return async (name, argsJson) => JSON.stringify(await host.reply(name, argsJson, ctx))
}

/**
 * Validate a module for its ABI, sign its manifest as `identity` and keep it in
 * `store`. Returns the stored entry. Throws `InvalidManifestError`,
 * `InvalidModuleError` or `ForbiddenImportError` with what is wrong.
 */
export async function publishLocal(
  store: AgentStore,
  identity: Identity,
  bundle: { manifest: UnsignedManifest | AgentManifest; wasm: Uint8Array }
): Promise<AgentEntry> {
  const { signature: _old, ...unsigned } = bundle.manifest as AgentManifest
  // Every field's fault first (all of them, each with a sentence), then the module's.
  assertManifest(unsigned)
  const memoryMiB = lower(DEFAULT_LIMITS.memoryMiB, unsigned.limits?.memoryMiB)
  validateModule(bundle.wasm, unsigned.abi, pagesOf(memoryMiB))
  const { id, manifest } = await signPackage(identity, unsigned, bundle.wasm)
  return await store.put(id, manifest, bundle.wasm)
}

export type { AgentPackage }
