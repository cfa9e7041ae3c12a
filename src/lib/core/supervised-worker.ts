/**
 * The supervised worker: one Comlink `Remote<Api>` behind a wrapper that gives every
 * call a deadline and an `AbortSignal`, rejects every pending call when the worker
 * dies (Comlink alone would wait forever: a dead worker answers nobody), and
 * terminates and replaces the worker when a call misses its deadline, is aborted, or
 * the worker crashes (STYLE.md "Workers", "Lifecycle").
 *
 * Core imports nothing of ours, so the worker itself comes from an injected `spawn`
 * (a browser module `Worker` through {@link webWorkerHandle}, or `worker_threads`
 * through {@link nodeWorkerHandle}).
 */
import { wrap, type Endpoint, type Remote } from 'comlink'
import nodeEndpoint, { type NodeEndpoint } from 'comlink/dist/esm/node-adapter.mjs'
import { WorkerAbortedError, WorkerCrashedError, WorkerStoppedError, WorkerTimeoutError } from './errors.ts'

/** A started worker as the supervisor sees it. */
export interface WorkerHandle {
  /** Where Comlink talks to it. */
  readonly endpoint: Endpoint
  /** Stop it now (deadline, abort, crash, stop). */
  terminate(): void
  /** Called once if the worker dies on its own (uncaught error, exit, undecodable message). */
  onCrash(listener: (err: Error) => void): void
}

/** Makes a worker. */
export type WorkerSpawn = () => WorkerHandle

/** Why a worker was terminated and replaced. */
export type ReplaceReason = WorkerTimeoutError | WorkerAbortedError | WorkerCrashedError

/** Options of a {@link SupervisedWorker}. */
export interface SupervisedWorkerInit<Api> {
  /** Makes the worker (at the first call, or at `start()`, and after each replacement). */
  spawn: WorkerSpawn
  /** The deadline of a call that gives none (ms). Default 30 000. */
  deadlineMs?: number
  /**
   * When a replacement is spawned: `'eager'` at once (a pool that keeps its workers warm),
   * `'lazy'` at the next call (default: a worker nobody may need again costs nothing).
   */
  respawn?: 'eager' | 'lazy'
  /** Names the worker in error messages. Default 'the worker'. */
  label?: string
  /** A call `start()` makes to prove a new worker answers (e.g. `r => r.ping()`). */
  probe?: (remote: Remote<Api>) => Promise<unknown>
  /** Called with each new worker's remote, before any call reaches it. */
  onSpawn?: (remote: Remote<Api>) => void
  /** Called after a worker was terminated for a deadline, an abort or a crash. */
  onReplace?: (reason: ReplaceReason) => void
}

/** Options of one call. */
export interface SupervisedCallOptions {
  /** This call's deadline (ms); default the worker's. Past it the worker is terminated and replaced. */
  deadlineMs?: number
  /** Aborting rejects the call at once and terminates and replaces the worker running it. */
  signal?: AbortSignal
}

interface Call {
  settle(err: Error): void
}

interface Live<Api> {
  handle: WorkerHandle
  remote: Remote<Api>
  calls: Set<Call>
  dead: boolean
}

/** setTimeout fires at once for delays above 2^31−1 ms; such deadlines are "never". */
const MAX_TIMER_MS = 2 ** 31 - 1

/** One worker under supervision. See the module comment. */
export class SupervisedWorker<Api> {
  readonly #init: SupervisedWorkerInit<Api>
  readonly #label: string
  #live: Live<Api> | undefined
  #stopped = false
  #starting: Promise<void> | undefined
  #replaced = 0

  constructor(init: SupervisedWorkerInit<Api>) {
    this.#init = init
    this.#label = init.label ?? 'the worker'
  }

  /** Workers terminated and replaced so far (deadline, abort, crash). */
  get replaced(): number {
    return this.#replaced
  }

  /** Calls waiting for the current worker. */
  get pending(): number {
    return this.#live?.calls.size ?? 0
  }

  /** Whether a worker is running now. */
  get alive(): boolean {
    return this.#live != null
  }

  /**
   * Spawn the worker now and, with a `probe`, wait until it answers (rejects if it
   * does not). Idempotent; after `stop()` it starts again. Calls start it on demand.
   */
  start(): Promise<void> {
    this.#stopped = false
    this.#starting ??= (async () => {
      this.#ensure()
      const probe = this.#init.probe
      if (probe != null) await this.call(probe)
    })()
    const starting = this.#starting
    starting.catch(() => {
      if (this.#starting === starting) this.#starting = undefined
    })
    return starting
  }

  /** Terminate the worker and reject its pending calls with `WorkerStoppedError`. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#starting = undefined
    const live = this.#live
    this.#live = undefined
    if (live == null || live.dead) return
    live.dead = true
    live.handle.terminate()
    const err = new WorkerStoppedError(`${this.#label} was stopped before the call finished`)
    for (const c of [...live.calls]) c.settle(err)
  }

  /**
   * Run `fn` against the worker under a deadline and an optional signal. `fn` may make
   * several round trips; they share the deadline. Rejects with `WorkerTimeoutError`,
   * `WorkerAbortedError`, `WorkerCrashedError` or `WorkerStoppedError`, or with what `fn` threw.
   */
  call<R>(fn: (remote: Remote<Api>) => Promise<R>, opts: SupervisedCallOptions = {}): Promise<R> {
    if (this.#stopped) return Promise.reject(new WorkerStoppedError(`${this.#label} is stopped`))
    const signal = opts.signal
    if (signal?.aborted) return Promise.reject(new WorkerAbortedError('the call was cancelled before it started'))
    const live = this.#ensure()
    let deadlineMs = opts.deadlineMs ?? this.#init.deadlineMs ?? 30_000
    // A NaN deadline would arm no timer at all: fall back to the worker's own.
    if (Number.isNaN(deadlineMs)) deadlineMs = this.#init.deadlineMs ?? 30_000
    return new Promise<R>((resolve, reject) => {
      let settled = false
      let timer: ReturnType<typeof setTimeout> | undefined
      const done = (): boolean => {
        if (settled) return false
        settled = true
        if (timer !== undefined) clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        live.calls.delete(call)
        return true
      }
      const call: Call = {
        settle: (err) => {
          if (done()) reject(err)
        }
      }
      const onAbort = (): void => {
        const err = new WorkerAbortedError(`the call to ${this.#label} was cancelled; the worker was stopped`)
        call.settle(err)
        this.#kill(live, err)
      }
      if (deadlineMs <= MAX_TIMER_MS) {
        timer = setTimeout(
          () => {
            const err = new WorkerTimeoutError(`${this.#label} did not answer within ${Math.round(deadlineMs)} ms and was stopped`)
            call.settle(err)
            this.#kill(live, err)
          },
          Math.max(0, deadlineMs)
        )
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      live.calls.add(call)
      let p: Promise<R>
      try {
        p = fn(live.remote)
      } catch (err) {
        call.settle(err instanceof Error ? err : new Error(String(err)))
        return
      }
      p.then(
        (value) => {
          if (done()) resolve(value)
        },
        (err: unknown) => {
          // Errors thrown in the worker arrive as Comlink rebuilt them ({name, message, stack}); strings stay strings.
          if (done()) reject(err)
        }
      )
    })
  }

  /** Terminate the current worker and reject its calls as if it had crashed (e.g. it reported it is unusable). */
  replace(reason = 'it was replaced'): void {
    const live = this.#live
    if (live != null) this.#kill(live, new WorkerCrashedError(`${this.#label} was terminated: ${reason}`))
  }

  #ensure(): Live<Api> {
    if (this.#live != null) return this.#live
    const handle = this.#init.spawn()
    const live: Live<Api> = { handle, remote: wrap<Api>(handle.endpoint), calls: new Set(), dead: false }
    handle.onCrash((err) => {
      this.#kill(live, new WorkerCrashedError(`${this.#label} crashed (${err.message})`, { cause: err }))
    })
    this.#live = live
    this.#init.onSpawn?.(live.remote)
    return live
  }

  /** Terminate `live`, reject every call still on it, and replace it (now or at the next call). */
  #kill(live: Live<Api>, reason: ReplaceReason): void {
    if (live.dead) return
    live.dead = true
    if (this.#live === live) this.#live = undefined
    try {
      live.handle.terminate()
    } catch {
      /* already gone */
    }
    this.#replaced++
    const others =
      reason instanceof WorkerCrashedError
        ? reason
        : new WorkerCrashedError(
            `${this.#label} was terminated because another call ${reason instanceof WorkerTimeoutError ? 'missed its deadline' : 'was cancelled'}; try again`,
            {
              cause: reason
            }
          )
    for (const c of [...live.calls]) c.settle(others)
    this.#init.onReplace?.(reason)
    if (this.#init.respawn === 'eager' && !this.#stopped) this.#ensure()
  }
}

/** Adapt a browser `Worker` (module worker) to a {@link WorkerHandle}; `error` and `messageerror` are crashes. */
export function webWorkerHandle(worker: Worker): WorkerHandle {
  let listener: ((err: Error) => void) | undefined
  const crash = (ev: Event): void => {
    ev.preventDefault()
    const l = listener
    listener = undefined
    l?.(
      new Error(
        ev instanceof ErrorEvent && ev.message
          ? ev.message
          : ev.type === 'messageerror'
            ? 'a message from the worker could not be decoded'
            : 'the worker failed'
      )
    )
  }
  worker.addEventListener('error', crash)
  worker.addEventListener('messageerror', crash)
  return {
    endpoint: worker,
    terminate: () => {
      listener = undefined
      worker.terminate()
    },
    onCrash: (l) => {
      listener = l
    }
  }
}

/** The part of a Node `worker_threads` Worker that {@link nodeWorkerHandle} uses (core imports no `node:` module). */
export interface NodeWorkerLike {
  postMessage(value: unknown): void
  // biome-ignore lint/suspicious/noExplicitAny: worker_threads' own listener type
  on(event: string, listener: (...args: any[]) => void): unknown
  // biome-ignore lint/suspicious/noExplicitAny: as above
  off(event: string, listener: (...args: any[]) => void): unknown
  terminate(): unknown
}

/** Adapt a Node `worker_threads` Worker to a {@link WorkerHandle}; `error` and any exit not asked for are crashes. */
export function nodeWorkerHandle(worker: NodeWorkerLike): WorkerHandle {
  let listener: ((err: Error) => void) | undefined
  let terminated = false
  const fire = (err: Error): void => {
    const l = listener
    listener = undefined
    if (!terminated) l?.(err)
  }
  worker.on('error', (err: unknown) => fire(err instanceof Error ? err : new Error(String(err))))
  worker.on('messageerror', (err: unknown) => fire(err instanceof Error ? err : new Error('a message from the worker could not be decoded')))
  worker.on('exit', (code: unknown) => fire(new Error(`the worker exited with code ${String(code)}`)))
  return {
    endpoint: nodeEndpoint(worker as unknown as NodeEndpoint),
    terminate: () => {
      terminated = true
      listener = undefined
      void worker.terminate()
    },
    onCrash: (l) => {
      listener = l
    }
  }
}
