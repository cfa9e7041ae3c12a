/**
 * Where a remote update is tried before it touches a real doc. yjs#687: a tiny
 * crafted update can make Yjs loop or exhaust memory, and nothing on the page's
 * thread can interrupt that. So larger payloads are first decoded and applied to
 * a scratch doc in a worker under core's SupervisedWorker: a check that misses its
 * deadline gets the worker terminated (replaced at the next check) and the update
 * refused, and every check still waiting on that worker is refused with it. The
 * cheap structural walk (`update-guard.ts`) runs before this on every update.
 */
import * as v from 'valibot'
import { SupervisedWorker, WorkerCrashedError, WorkerStoppedError, WorkerTimeoutError, logger, webWorkerHandle, type WorkerHandle } from '../core/index.ts'
import { type MemoryError, RejectedUpdateError, UpdateDeadlineError } from './errors.ts'
import { CheckReplySchema, type UpdateCheckApi } from './update-check-messages.ts'

const log = logger('memory:check')

/** Tries an update on a scratch doc; rejects with a {@link RejectedUpdateError} if it is refused. */
export interface UpdateChecker {
  check(update: Uint8Array, options?: { deadlineMs?: number }): Promise<void>
  /** Start the worker now, so the first real check does not pay for its start-up. */
  warm?(): void
  destroy(): void
}

/** A started check worker (browser module worker or worker_threads) that speaks {@link UpdateCheckApi} over Comlink. */
export type CheckWorker = WorkerHandle

/** An {@link UpdateChecker} backed by a supervised worker, replaced when it hangs or dies. */
export class WorkerUpdateChecker implements UpdateChecker {
  readonly #worker: SupervisedWorker<UpdateCheckApi>
  #inFlight = 0
  #lastKillShared = false

  constructor(spawn: () => CheckWorker, opts: { deadlineMs?: number } = {}) {
    this.#worker = new SupervisedWorker<UpdateCheckApi>({
      spawn,
      label: 'the update check worker',
      deadlineMs: opts.deadlineMs ?? 2000,
      onReplace: (reason) => {
        // Runs before the calls' rejections are seen: #inFlight still counts every check that was on the worker.
        this.#lastKillShared = this.#inFlight > 1
        if (reason instanceof WorkerTimeoutError) log('an update check missed its deadline; the worker was terminated')
        else log('the update check worker was replaced: %s', reason.message)
      }
    })
  }

  /** Workers replaced after a missed deadline or a crash. */
  get replaced(): number {
    return this.#worker.replaced
  }

  async check(update: Uint8Array, options: { deadlineMs?: number } = {}): Promise<void> {
    if (this.available === false) return
    this.#inFlight++
    let data: unknown
    try {
      data = await this.#worker.call((r) => r.check(update), { deadlineMs: options.deadlineMs })
    } catch (err) {
      throw this.#memoryError(err)
    } finally {
      this.#inFlight--
    }
    const reply = v.safeParse(CheckReplySchema, data)
    if (!reply.success) throw new RejectedUpdateError('the update check worker gave an answer that is not valid')
    if (!reply.output.ok) throw new RejectedUpdateError(`the update failed to apply on a scratch doc: ${reply.output.error ?? 'unknown error'}`)
  }

  /** Core's worker errors as the memory's own: a missed deadline (this check's or the one that took the worker down) refuses the update. */
  #memoryError(err: unknown): MemoryError {
    if (err instanceof WorkerTimeoutError) return new UpdateDeadlineError(undefined, { cause: err })
    if (err instanceof WorkerCrashedError && err.cause instanceof WorkerTimeoutError) return new UpdateDeadlineError(undefined, { cause: err })
    if (err instanceof WorkerStoppedError) return new RejectedUpdateError('the update checker was destroyed', { cause: err })
    if (err instanceof WorkerCrashedError) return new RejectedUpdateError('the update check worker crashed', { cause: err })
    return new RejectedUpdateError(`the update could not be checked: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
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
        if (this.#destroyed) return
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
    void this.#worker.stop()
  }
}

/** The browser's module worker running `update-check-worker.ts`. */
export function browserCheckWorker(): CheckWorker {
  return webWorkerHandle(new Worker(new URL('./update-check-worker.ts', import.meta.url), { type: 'module', name: 'zerostate-update-check' }))
}

/** The default checker here: a module worker in browsers, none elsewhere (pass one from `node-update-checker.ts`). */
export function defaultUpdateChecker(deadlineMs: number): UpdateChecker | undefined {
  if (typeof Worker === 'undefined' || typeof window === 'undefined') return undefined
  return new WorkerUpdateChecker(browserCheckWorker, { deadlineMs })
}
