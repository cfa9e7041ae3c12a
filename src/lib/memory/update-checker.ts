/**
 * Where a remote update is tried before it touches a real doc. yjs#687: a tiny
 * crafted update can make Yjs loop or exhaust memory, and nothing on the page's
 * thread can interrupt that. So larger payloads are first decoded and applied to
 * a scratch doc in a worker with a deadline; a worker that misses it is
 * terminated and replaced, and the update is refused. The cheap structural walk
 * (`update-guard.ts`) runs before this on every update.
 */
import * as v from 'valibot'
import { type MemoryError, RejectedUpdateError, UpdateDeadlineError } from './errors.ts'
import { logger } from '../core/index.ts'

const log = logger('memory:check')

/** Tries an update on a scratch doc; rejects with a {@link RejectedUpdateError} if it is refused. */
export interface UpdateChecker {
  check(update: Uint8Array, options?: { deadlineMs?: number }): Promise<void>
  /** Start the worker now, so the first real check does not pay for its start-up. */
  warm?(): void
  destroy(): void
}

import { CheckReplySchema, type CheckRequestSchema } from './update-check-messages.ts'

/** The part of a Worker (browser or worker_threads, adapted) the checker uses. */
export interface CheckWorker {
  post(message: v.InferOutput<typeof CheckRequestSchema>): void
  onMessage(listener: (data: unknown) => void): void
  onError(listener: (err: unknown) => void): void
  terminate(): void
}

interface Pending {
  resolve: () => void
  reject: (err: Error) => void
  timer: ReturnType<typeof setTimeout>
}

/** An {@link UpdateChecker} backed by a worker that it replaces when it hangs or dies. */
export class WorkerUpdateChecker implements UpdateChecker {
  readonly #spawn: () => CheckWorker
  readonly #deadlineMs: number
  #worker: CheckWorker | undefined
  #nextId = 1
  readonly #pending = new Map<number, Pending>()
  #lastKillShared = false
  /** Workers replaced after a missed deadline or a crash. */
  replaced = 0

  constructor(spawn: () => CheckWorker, opts: { deadlineMs?: number } = {}) {
    this.#spawn = spawn
    this.#deadlineMs = opts.deadlineMs ?? 2000
  }

  #ensure(): CheckWorker {
    if (this.#worker != null) return this.#worker
    const w = this.#spawn()
    w.onMessage((data) => {
      const reply = v.safeParse(CheckReplySchema, data)
      if (!reply.success) {
        log('dropping an invalid reply from the check worker')
        return
      }
      const p = this.#pending.get(reply.output.id)
      if (p == null) return
      this.#pending.delete(reply.output.id)
      clearTimeout(p.timer)
      if (reply.output.ok) p.resolve()
      else p.reject(new RejectedUpdateError(`the update failed to apply on a scratch doc: ${reply.output.error ?? 'unknown error'}`))
    })
    w.onError((err) => {
      if (this.#worker === w) this.#kill(new RejectedUpdateError('the update check worker crashed', { cause: err }))
    })
    this.#worker = w
    return w
  }

  /** Terminate the worker and reject everything pending (a dead worker never answers). */
  #kill(err: MemoryError): void {
    this.#lastKillShared = this.#pending.size > 1
    const w = this.#worker
    this.#worker = undefined
    if (w != null) {
      try {
        w.terminate()
      } catch {
        /* already gone */
      }
      this.replaced++
    }
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer)
      p.reject(err)
      this.#pending.delete(id)
    }
  }

  check(update: Uint8Array, options: { deadlineMs?: number } = {}): Promise<void> {
    if (this.available === false) return Promise.resolve()
    const w = this.#ensure()
    const id = this.#nextId++
    const deadline = options.deadlineMs ?? this.#deadlineMs
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        log('an update check missed its %d ms deadline; replacing the worker', deadline)
        this.#kill(new UpdateDeadlineError())
      }, deadline)
      this.#pending.set(id, { resolve, reject, timer })
      w.post({ id, update })
    })
  }

  /**
   * Start the worker and prove it works with an empty update. If even that fails
   * (the worker script cannot load: CSP, a broken build), the checker marks itself
   * unavailable and lets updates through on the structural guard alone — better
   * than refusing every large sync and hanging up on honest peers.
   */
  warm(): void {
    if (this.available !== undefined || this.#destroyed) return
    this.check(new Uint8Array([0, 0])).then(
      () => {
        this.available = true
      },
      (err) => {
        // A crash while a peer's update was also being checked proves nothing about the worker: try again.
        if (this.#lastKillShared || err instanceof UpdateDeadlineError) {
          this.available = undefined
          setTimeout(() => this.warm(), 1000)
          return
        }
        this.available = false
        log.error('the update check worker does not work; large updates get the structural check only: %s', (err as Error)?.message)
      }
    )
  }

  /** undefined until `warm()` finished; false if the worker could not run at all. */
  available: boolean | undefined

  #destroyed = false

  destroy(): void {
    this.#destroyed = true
    this.#kill(new RejectedUpdateError('the update checker was destroyed'))
  }
}

/** The browser's module worker running `update-check-worker.ts`. */
export function browserCheckWorker(): CheckWorker {
  const w = new Worker(new URL('./update-check-worker.ts', import.meta.url), { type: 'module' })
  return {
    post: (m) => w.postMessage(m),
    onMessage: (l) => {
      w.onmessage = (e) => l(e.data)
    },
    onError: (l) => {
      w.onerror = (e) => l(e)
      w.onmessageerror = (e) => l(e)
    },
    terminate: () => w.terminate()
  }
}

/** The default checker here: a module worker in browsers, none elsewhere (pass one from `node-update-checker.ts`). */
export function defaultUpdateChecker(deadlineMs: number): UpdateChecker | undefined {
  if (typeof Worker === 'undefined' || typeof window === 'undefined') return undefined
  return new WorkerUpdateChecker(browserCheckWorker, { deadlineMs })
}
