/**
 * Who runs a durable run: exactly one tab of the profile, the one holding the run's
 * Web Lock (`navigator.locks`, shared by a profile's tabs of one origin).
 *
 * - A tab that starts a run takes its lock first and holds it until the run ends.
 * - On start a tab queues for the lock of every unfinished run. The browser grants it when
 *   nobody holds it: at once for a run whose tab is gone, or when the tab running it closes
 *   or crashes (the browser releases a dead context's locks itself). The queued tab then
 *   re-reads the journal and resumes the run only if it is still unfinished.
 * - Never `steal`: a tab that holds a lock is alive as far as the browser knows, and stealing
 *   from a slow but living tab would run the workflow twice. A frozen background tab keeps
 *   its run; it carries on when it is thawed.
 */

/** A held lock. */
export interface RunLease {
  /** Let the lock go (idempotent). */
  release(): void
}

/** Per-run mutual exclusion between the tabs of one profile. */
export interface RunLocks {
  /** The lock now, or undefined when another holder has it. */
  tryAcquire(name: string): Promise<RunLease | undefined>
  /** Wait (queued behind other holders) for the lock; rejects with the signal's reason when aborted. */
  acquire(name: string, opts?: { signal?: AbortSignal }): Promise<RunLease>
}

interface LockManagerLike {
  request(name: string, options: { ifAvailable?: boolean; signal?: AbortSignal; mode?: 'exclusive' }, callback: (lock: unknown) => Promise<void>): Promise<void>
}

/** The lock name of a run. */
export function runLockName(runId: string): string {
  return `zerostate:run:${runId}`
}

/** Web Locks (`navigator.locks`): the profile's tabs exclude each other. */
export class WebRunLocks implements RunLocks {
  readonly #locks: LockManagerLike
  constructor(locks: LockManagerLike) {
    this.#locks = locks
  }

  /** `navigator.locks` when the browser has it. */
  static available(): WebRunLocks | undefined {
    const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks
    return locks != null && typeof locks.request === 'function' ? new WebRunLocks(locks) : undefined
  }

  tryAcquire(name: string): Promise<RunLease | undefined> {
    return this.#request(name, { ifAvailable: true })
  }

  async acquire(name: string, opts: { signal?: AbortSignal } = {}): Promise<RunLease> {
    const lease = await this.#request(name, opts.signal != null ? { signal: opts.signal } : {})
    if (lease == null) throw new Error('lock not granted')
    return lease
  }

  #request(name: string, options: { ifAvailable?: boolean; signal?: AbortSignal }): Promise<RunLease | undefined> {
    const held = Promise.withResolvers<RunLease | undefined>()
    const released = Promise.withResolvers<void>()
    let done = false
    const lease: RunLease = {
      release() {
        if (done) return
        done = true
        released.resolve()
      }
    }
    this.#locks
      .request(name, { ...options, mode: 'exclusive' }, async (lock) => {
        if (lock == null) {
          held.resolve(undefined)
          return
        }
        held.resolve(lease)
        await released.promise
      })
      .catch((err: unknown) => {
        held.reject(err)
      })
    return held.promise
  }
}

/**
 * Locks within one JavaScript realm: the same semantics for tests and for Node (one
 * instance stands for one profile; share it between "tabs").
 */
export class MemoryRunLocks implements RunLocks {
  readonly #held = new Set<string>()
  readonly #queues = new Map<string, Array<() => void>>()

  async tryAcquire(name: string): Promise<RunLease | undefined> {
    if (this.#held.has(name)) return undefined
    return this.#grant(name)
  }

  acquire(name: string, opts: { signal?: AbortSignal } = {}): Promise<RunLease> {
    if (!this.#held.has(name)) return Promise.resolve(this.#grant(name))
    return new Promise<RunLease>((resolve, reject) => {
      const queue = this.#queues.get(name) ?? []
      const wake = (): void => {
        opts.signal?.removeEventListener('abort', abort)
        resolve(this.#grant(name))
      }
      const abort = (): void => {
        const q = this.#queues.get(name)
        if (q != null) q.splice(q.indexOf(wake), 1)
        reject(opts.signal?.reason)
      }
      if (opts.signal?.aborted) {
        reject(opts.signal.reason)
        return
      }
      opts.signal?.addEventListener('abort', abort, { once: true })
      queue.push(wake)
      this.#queues.set(name, queue)
    })
  }

  /** True while someone holds `name` (tests). */
  isHeld(name: string): boolean {
    return this.#held.has(name)
  }

  #grant(name: string): RunLease {
    this.#held.add(name)
    let done = false
    return {
      release: () => {
        if (done) return
        done = true
        this.#held.delete(name)
        const next = this.#queues.get(name)?.shift()
        if (next != null) next()
      }
    }
  }
}
