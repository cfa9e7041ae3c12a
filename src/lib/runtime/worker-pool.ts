/**
 * `AgentSandbox` and its Comlink worker-pool implementation. Comlink alone
 * would hang forever on a dead or stuck worker, so every call here has a
 * deadline; a call past it, an aborted call, or a crashed worker gets its
 * worker terminated and replaced at once (the pool never shrinks), and every
 * pending call is settled with a typed error.
 */
import { wrap, type Remote } from 'comlink'
import { logger } from '../core/index.ts'
import { AgentAbortedError, AgentTimeoutError, RuntimeError, RuntimeStoppedError, WorkerCrashedError, deserializeError } from './errors.ts'
import type { AgentAbi } from './constants.ts'
import type { RunRequest, WorkerApi } from './sandbox-core.ts'
import type { WorkerFactory, WorkerHandle } from './worker-factory.ts'

const log = logger('runtime:pool')

/** One call to run in the sandbox. */
export interface SandboxJob {
  /** Cache key for the compiled module (content id + memory cap). */
  key: string
  abi: AgentAbi
  bytes: Uint8Array
  memoryPages: number
  outputBytes: number
  timeMs: number
  /** The deadline to name in a timeout message (default `timeMs`). */
  deadlineMs?: number
  input: unknown
  signal?: AbortSignal
}

/** A successful call. */
export interface SandboxResult {
  output: unknown
  stderr: string
  ms: number
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
  handle: WorkerHandle
  remote: Remote<WorkerApi>
  loaded: Set<string>
  job?: Pending
  retire: boolean
  ready: Promise<unknown>
}

interface Pending {
  job: SandboxJob
  resolve: (r: SandboxResult) => void
  reject: (e: RuntimeError) => void
  timer: ReturnType<typeof setTimeout>
  onAbort?: () => void
  slot?: Slot
  settled: boolean
  started: number
}

/** A pool of Web Workers (or worker_threads) reached through Comlink. */
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

  /** Spawn the workers and wait until each answers a no-op call. Idempotent. */
  start(): Promise<void> {
    this.#starting ??= (async () => {
      this.#make ??= await this.#factory()
      this.#running = true
      while (this.#slots.length < this.#size) this.#slots.push(this.#spawn())
      await Promise.all(this.#slots.map((s) => s.ready))
    })()
    return this.#starting
  }

  /** Terminate every worker and reject queued and running calls. Idempotent. */
  async stop(): Promise<void> {
    await this.#starting?.catch(() => undefined)
    this.#running = false
    this.#starting = undefined
    for (const p of [...this.#queue, ...this.#slots.flatMap((s) => (s.job ? [s.job] : []))]) {
      this.#settle(p, new RuntimeStoppedError('the agent runtime was stopped before the call finished'), false)
    }
    this.#queue = []
    for (const s of this.#slots) s.handle.terminate()
    this.#slots = []
  }

  /** Change the number of workers (at least 1). Busy workers retire after their call. */
  resize(workers: number): void {
    this.#size = Math.max(1, Math.floor(workers))
    if (!this.#running) return
    while (this.#live().length < this.#size) this.#slots.push(this.#spawn())
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
      const p: Pending = {
        job,
        resolve,
        reject,
        settled: false,
        started: performance.now(),
        timer: setTimeout(() => {
          this.#settle(p, new AgentTimeoutError(`the agent did not finish within ${Math.round(job.deadlineMs ?? job.timeMs)} ms and was stopped`), true)
        }, job.timeMs)
      }
      if (job.signal) {
        p.onAbort = () => this.#settle(p, new AgentAbortedError(), true)
        job.signal.addEventListener('abort', p.onAbort, { once: true })
      }
      this.#queue.push(p)
      this.#pump()
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

  #spawn(): Slot {
    const handle = this.#make!()
    const slot: Slot = { handle, remote: wrap<WorkerApi>(handle.endpoint), loaded: new Set(), retire: false, ready: Promise.resolve() }
    // `ready` also settles on a crash, so start() never waits on a dead worker.
    let crashed: () => void = () => undefined
    slot.ready = Promise.race([
      slot.remote.ping().catch(() => undefined),
      new Promise<void>((r) => {
        crashed = r
      })
    ])
    handle.onCrash((err) => {
      crashed()
      log.error('agent worker crashed: %s', err.message)
      if (!this.#slots.includes(slot)) return
      if (slot.job)
        this.#settle(slot.job, new WorkerCrashedError(`the sandbox worker crashed (${err.message}); it was replaced, try again`, { cause: err }), true)
      else this.#replace(slot)
    })
    return slot
  }

  #remove(slot: Slot): void {
    slot.handle.terminate()
    this.#slots = this.#slots.filter((s) => s !== slot)
  }

  #replace(slot: Slot): void {
    const i = this.#slots.indexOf(slot)
    slot.handle.terminate()
    slot.job = undefined
    if (i < 0) return
    this.#replaced++
    if (slot.retire || !this.#running) this.#slots.splice(i, 1)
    else this.#slots[i] = this.#spawn()
    this.#pump()
  }

  #settle(p: Pending, outcome: RuntimeError | SandboxResult, killWorker: boolean): void {
    if (p.settled) return
    p.settled = true
    clearTimeout(p.timer)
    if (p.onAbort) p.job.signal?.removeEventListener('abort', p.onAbort)
    const qi = this.#queue.indexOf(p)
    if (qi >= 0) this.#queue.splice(qi, 1)
    const slot = p.slot
    if (slot && slot.job === p) {
      if (killWorker) this.#replace(slot)
      else {
        slot.job = undefined
        if (slot.retire) this.#remove(slot)
      }
    }
    if (outcome instanceof Error) {
      this.#failed++
      this.#errors[outcome.name] = (this.#errors[outcome.name] ?? 0) + 1
      p.reject(outcome)
    } else {
      this.#completed++
      p.resolve(outcome)
    }
    queueMicrotask(() => this.#pump())
  }

  #pump(): void {
    if (!this.#running) return
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return
      if (slot.job != null || slot.retire) continue
      const p = this.#queue.shift()!
      slot.job = p
      p.slot = slot
      void this.#dispatch(slot, p)
    }
  }

  async #dispatch(slot: Slot, p: Pending): Promise<void> {
    const { job } = p
    const req = (withBytes: boolean): RunRequest => ({
      key: job.key,
      abi: job.abi,
      memoryPages: job.memoryPages,
      outputBytes: job.outputBytes,
      input: job.input,
      bytes: withBytes ? job.bytes : undefined
    })
    try {
      let reply = await slot.remote.run(req(!slot.loaded.has(job.key)))
      if (!reply.ok && reply.needsBytes === true && !p.settled) reply = await slot.remote.run(req(true))
      if (p.settled) return
      if (reply.ok) {
        slot.loaded.add(job.key)
        this.#settle(p, { output: reply.output, stderr: reply.stderr, ms: performance.now() - p.started }, false)
      } else {
        this.#settle(p, deserializeError(reply.error), false)
      }
    } catch (err) {
      // Comlink failed to post (e.g. an input that cannot be cloned).
      this.#settle(p, new RuntimeError(`the call could not be sent to the sandbox: ${err instanceof Error ? err.message : String(err)}`, { cause: err }), false)
    }
  }
}
