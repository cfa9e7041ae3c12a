/**
 * `AgentSandbox` and its Comlink worker-pool implementation. Each worker is a
 * core `SupervisedWorker`: every call has a deadline (the time left of the job's
 * limit once it leaves the queue), an aborted call or one past its deadline gets
 * its worker terminated and replaced at once (the pool never shrinks), and a
 * worker that dies rejects its call. Core's worker errors become the runtime's
 * own here (`AgentTimeoutError`, `AgentAbortedError`, `WorkerCrashedError`,
 * `RuntimeStoppedError`).
 */
import {
  SupervisedWorker,
  WorkerAbortedError,
  WorkerCrashedError as CoreWorkerCrashedError,
  WorkerStoppedError,
  WorkerTimeoutError,
  logger
} from '../core/index.ts'
import { AgentAbortedError, AgentTimeoutError, RuntimeError, RuntimeStoppedError, WorkerCrashedError, deserializeError } from './errors.ts'
import { DEFAULT_LIMITS, type WasmAbi } from './constants.ts'
import type { RunReply, RunRequest, WorkerApi } from './sandbox-core.ts'
import type { WorkerFactory } from './worker-factory.ts'
import { openToolChannel, type OpenToolChannel, type ToolCallHandler } from './tool-bridge.ts'
import { transfer } from 'comlink'

const log = logger('runtime:pool')

/** One call to run in the sandbox. */
export interface SandboxJob {
  /** Cache key for the compiled module (content id + memory cap). */
  key: string
  abi: WasmAbi
  bytes: Uint8Array
  memoryPages: number
  outputBytes: number
  timeMs: number
  /** The deadline to name in a timeout message (default `timeMs`). */
  deadlineMs?: number
  input: unknown
  signal?: AbortSignal
  /** Answers the agent's tool calls (its manifest declares tools); without it every call is refused. */
  tools?: ToolCallHandler
}

/** A successful call. */
export interface SandboxResult {
  output: unknown
  stderr: string
  ms: number
  /** Time the call waited for a worker (ms). */
  waitMs?: number
}

/** Counters of a sandbox. */
export interface SandboxStats {
  workers: number
  busy: number
  queued: number
  completed: number
  failed: number
  /** Workers terminated and replaced (deadline, abort, crash). */
  replaced: number
  /** Failures counted by error name. */
  errors: Record<string, number>
}

/** Where agent code runs. Implementations are named by technology. */
export interface AgentSandbox {
  start(): Promise<void>
  stop(): Promise<void>
  resize(workers: number): void
  execute(job: SandboxJob): Promise<SandboxResult>
  stats(): SandboxStats
}

interface Slot {
  worker: SupervisedWorker<WorkerApi>
  /** Module keys the current worker has compiled (cleared when it is replaced). */
  loaded: Set<string>
  job?: Pending
  retire: boolean
}

interface Pending {
  job: SandboxJob
  resolve: (r: SandboxResult) => void
  reject: (e: RuntimeError) => void
  /** The deadline while queued (a running call's deadline is its worker's). */
  timer?: ReturnType<typeof setTimeout>
  onAbort?: () => void
  slot?: Slot
  settled: boolean
  started: number
}

/** A pool of Web Workers (or worker_threads) reached through Comlink, each supervised. */
export class ComlinkWorkerPool implements AgentSandbox {
  readonly #factory: () => Promise<WorkerFactory>
  #make: WorkerFactory | undefined
  #size: number
  #slots: Slot[] = []
  #queue: Pending[] = []
  #running = false
  #starting: Promise<void> | undefined
  #completed = 0
  #failed = 0
  #replaced = 0
  #errors: Record<string, number> = {}

  /** @param factory resolves the worker factory (resolved once, at start). @param size initial worker count. */
  constructor(factory: () => Promise<WorkerFactory>, size: number) {
    this.#factory = factory
    this.#size = Math.max(1, Math.floor(size))
  }

  /** Spawn the workers and wait until each answers a no-op call (or dies trying). Idempotent. */
  start(): Promise<void> {
    this.#starting ??= (async () => {
      this.#make ??= await this.#factory()
      this.#running = true
      while (this.#slots.length < this.#size) this.#slots.push(this.#spawn())
      await Promise.all(this.#slots.map((s) => s.worker.start().catch(() => undefined)))
    })()
    return this.#starting
  }

  /** Terminate every worker and reject queued and running calls. Idempotent. */
  async stop(): Promise<void> {
    await this.#starting?.catch(() => undefined)
    this.#running = false
    this.#starting = undefined
    for (const p of [...this.#queue, ...this.#slots.flatMap((s) => (s.job ? [s.job] : []))]) {
      this.#settle(p, new RuntimeStoppedError('the agent runtime was stopped before the call finished'))
    }
    this.#queue = []
    const slots = this.#slots
    this.#slots = []
    await Promise.all(slots.map((s) => s.worker.stop()))
  }

  /** Change the number of workers (at least 1). Busy workers retire after their call. */
  resize(workers: number): void {
    this.#size = Math.max(1, Math.floor(workers))
    if (!this.#running) return
    while (this.#live().length < this.#size) {
      const slot = this.#spawn()
      this.#slots.push(slot)
      slot.worker.start().catch(() => undefined)
    }
    let extra = this.#live().length - this.#size
    for (const s of [...this.#live()].sort((a, b) => Number(a.job != null) - Number(b.job != null))) {
      if (extra <= 0) break
      extra--
      if (s.job == null) this.#remove(s)
      else s.retire = true
    }
    this.#pump()
  }

  /** Run one call; rejects with a typed `RuntimeError`, never hangs past `job.timeMs`. */
  execute(job: SandboxJob): Promise<SandboxResult> {
    if (!this.#running) return Promise.reject(new RuntimeStoppedError())
    if (job.signal?.aborted) return Promise.reject(new AgentAbortedError('the agent call was cancelled before it started'))
    return new Promise<SandboxResult>((resolve, reject) => {
      const p: Pending = { job, resolve, reject, settled: false, started: performance.now() }
      const free = this.#queue.length === 0 ? this.#slots.find((s) => s.job == null && !s.retire) : undefined
      if (free != null) {
        this.#dispatch(free, p)
        return
      }
      p.timer = setTimeout(() => this.#settle(p, this.#timeout(job)), job.timeMs)
      if (job.signal) {
        p.onAbort = () => this.#settle(p, new AgentAbortedError())
        job.signal.addEventListener('abort', p.onAbort, { once: true })
      }
      this.#queue.push(p)
    })
  }

  /** Current counters. */
  stats(): SandboxStats {
    return {
      workers: this.#live().length,
      busy: this.#slots.filter((s) => s.job != null).length,
      queued: this.#queue.length,
      completed: this.#completed,
      failed: this.#failed,
      replaced: this.#replaced,
      errors: { ...this.#errors }
    }
  }

  #live(): Slot[] {
    return this.#slots.filter((s) => !s.retire)
  }

  #timeout(job: SandboxJob): AgentTimeoutError {
    return new AgentTimeoutError(`the agent did not finish within ${Math.round(job.deadlineMs ?? job.timeMs)} ms and was stopped`)
  }

  #spawn(): Slot {
    const make = this.#make!
    const slot = { loaded: new Set<string>(), retire: false } as Slot
    slot.worker = new SupervisedWorker<WorkerApi>({
      spawn: make,
      label: 'the sandbox worker',
      respawn: 'eager',
      deadlineMs: DEFAULT_LIMITS.timeMs,
      probe: (r) => r.ping(),
      onSpawn: () => slot.loaded.clear(),
      onReplace: (reason) => {
        this.#replaced++
        if (reason instanceof CoreWorkerCrashedError) log.error('agent worker crashed: %s', reason.message)
        // A retiring (or removed) worker is not replaced: stopping it here also stops the eager respawn.
        if (slot.retire || !this.#slots.includes(slot)) void slot.worker.stop()
        queueMicrotask(() => this.#pump())
      }
    })
    return slot
  }

  #remove(slot: Slot): void {
    void slot.worker.stop()
    this.#slots = this.#slots.filter((s) => s !== slot)
  }

  #settle(p: Pending, outcome: RuntimeError | SandboxResult): void {
    if (p.settled) return
    p.settled = true
    if (p.timer !== undefined) clearTimeout(p.timer)
    if (p.onAbort) p.job.signal?.removeEventListener('abort', p.onAbort)
    const slot = p.slot
    if (slot == null) {
      const qi = this.#queue.indexOf(p)
      if (qi >= 0) this.#queue.splice(qi, 1)
    } else if (slot.job === p) {
      slot.job = undefined
      if (slot.retire) this.#remove(slot)
    }
    if (outcome instanceof Error) {
      this.#failed++
      this.#errors[outcome.name] = (this.#errors[outcome.name] ?? 0) + 1
      p.reject(outcome)
    } else {
      this.#completed++
      p.resolve(outcome)
    }
    if (this.#queue.length > 0) queueMicrotask(() => this.#pump())
  }

  #pump(): void {
    if (!this.#running) return
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return
      if (slot.job != null || slot.retire) continue
      const p = this.#queue.shift()!
      if (p.timer !== undefined) clearTimeout(p.timer)
      if (p.onAbort) p.job.signal?.removeEventListener('abort', p.onAbort)
      p.timer = undefined
      p.onAbort = undefined
      this.#dispatch(slot, p)
    }
  }

  #dispatch(slot: Slot, p: Pending): void {
    const { job } = p
    slot.job = p
    p.slot = slot
    const waitMs = performance.now() - p.started
    const left = job.timeMs - waitMs
    if (left <= 0) {
      this.#settle(p, this.#timeout(job))
      return
    }
    const loaded = slot.loaded
    const channels: OpenToolChannel[] = []
    const req = (withBytes: boolean): RunRequest => {
      const base: RunRequest = {
        key: job.key,
        abi: job.abi,
        memoryPages: job.memoryPages,
        outputBytes: job.outputBytes,
        input: job.input,
        bytes: withBytes ? job.bytes : undefined
      }
      if (job.tools == null) return base
      // A fresh channel per call: its port moves to the worker.
      const open = openToolChannel(job.tools)
      channels.push(open)
      return transfer({ ...base, tools: open.channel }, open.transfer)
    }
    slot.worker
      .call(
        async (remote): Promise<RunReply> => {
          const reply = await remote.run(req(!loaded.has(job.key)))
          return !reply.ok && reply.needsBytes === true ? await remote.run(req(true)) : reply
        },
        { deadlineMs: left, signal: job.signal }
      )
      .finally(() => {
        for (const c of channels) c.close()
      })
      .then(
        (reply) => {
          if (reply.ok) {
            loaded.add(job.key)
            this.#settle(p, { output: reply.output, stderr: reply.stderr, ms: performance.now() - p.started, waitMs })
          } else this.#settle(p, deserializeError(reply.error))
        },
        (err: unknown) => this.#settle(p, this.#runtimeError(err, job))
      )
  }

  /** Core's worker errors as the runtime's own; anything else failed to be sent. */
  #runtimeError(err: unknown, job: SandboxJob): RuntimeError {
    if (err instanceof WorkerTimeoutError) return this.#timeout(job)
    if (err instanceof WorkerAbortedError) return new AgentAbortedError(undefined, { cause: err })
    if (err instanceof CoreWorkerCrashedError) return new WorkerCrashedError(`${err.message}; it was replaced, try again`, { cause: err })
    if (err instanceof WorkerStoppedError) return new RuntimeStoppedError('the agent runtime was stopped before the call finished', { cause: err })
    // Comlink failed to post (e.g. an input that cannot be cloned).
    return new RuntimeError(`the call could not be sent to the sandbox: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
}
