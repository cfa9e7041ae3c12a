/**
 * Events, written once: one typed event target for every part that tells others of
 * changes (js-libp2p's `TypedEventEmitter` from `main-event`, a real `EventTarget`),
 * `listen()` that returns the unsubscribe function and keeps a throwing listener from
 * hurting the others, and `coalesce()` for notifications a UI must not hear thousands
 * of times a second.
 */
import { TypedEventEmitter, type TypedEventTarget } from 'main-event'
import { logger } from './logger.ts'

export { TypedEventEmitter, type TypedEventTarget }

const log = logger('events')

/** The event map of a typed target: event type → event class. */
// biome-ignore lint/suspicious/noExplicitAny: main-event's own constraint; `unknown` would refuse interfaces as maps
export type EventMap = Record<string, any>

/** Options of `listen()`. */
export interface ListenOptions {
  /** Told what a listener threw. Default: log it under `zerostate:events`. */
  onError?: (err: unknown) => void
  /** Unsubscribes when it aborts. */
  signal?: AbortSignal
}

const logListenerError =
  (type: string) =>
  (err: unknown): void => {
    log.error('a %s listener threw %e', type, err)
  }

/**
 * Add `listener` for `type` on `target`; returns the function that removes it.
 * A listener that throws is reported to `onError` and the others still run: the
 * browser would only report it, but Node treats a throwing `EventTarget` listener as
 * an uncaught exception (the relay and the terminal peer run this code too).
 */
export function listen<M extends EventMap, K extends keyof M & string>(
  target: TypedEventTarget<M>,
  type: K,
  listener: (event: M[K]) => void,
  opts: ListenOptions = {}
): () => void {
  const onError = opts.onError ?? logListenerError(type)
  const guarded = (event: M[K]): void => {
    try {
      listener(event)
    } catch (err) {
      onError(err)
    }
  }
  target.addEventListener(type, guarded, opts.signal == null ? undefined : { signal: opts.signal })
  return () => {
    target.removeEventListener(type, guarded)
  }
}

/** Options of `coalesce()`. */
export interface CoalesceInit {
  /** At most one call per this many ms. Default 0: at most one per microtask turn. */
  everyMs?: number
  /** Clock in ms. Default `performance.now`. */
  now?: () => number
  /** Told what the coalesced function threw. Default: log it. */
  onError?: (err: unknown) => void
}

/** A coalesced function: call it as often as you like; `cancel()` drops a pending call. */
export interface Coalesced {
  (): void
  cancel(): void
}

/**
 * `fn`, called at most once per `everyMs`: calls in between are folded into one. The
 * first call after a quiet spell runs at the next microtask (no timer delay); a call
 * within `everyMs` of the last run waits for the rest of that interval.
 */
export function coalesce(fn: () => void, init: CoalesceInit = {}): Coalesced {
  const everyMs = init.everyMs ?? 0
  const now = init.now ?? (() => performance.now())
  const onError = init.onError ?? logListenerError('coalesced')
  let queued = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let ranAt = Number.NEGATIVE_INFINITY
  const run = (): void => {
    // A cancelled or already-run call leaves a stale microtask behind: it does nothing.
    if (!queued) return
    queued = false
    timer = undefined
    ranAt = now()
    try {
      fn()
    } catch (err) {
      onError(err)
    }
  }
  const call = (): void => {
    if (queued) return
    queued = true
    const wait = ranAt + everyMs - now()
    if (wait <= 0) queueMicrotask(run)
    else timer = setTimeout(run, wait)
  }
  call.cancel = (): void => {
    queued = false
    if (timer != null) clearTimeout(timer)
    timer = undefined
  }
  return call
}

/** Events of a `ChangeNotifier`. */
export interface ChangeEvents {
  change: Event
}

/** Options of `ChangeNotifier`. */
export interface ChangeNotifierInit {
  /** Subscribers hear of changes at most this often. Default 0: once per microtask turn. */
  everyMs?: number
  /** Told what a subscriber threw. Default: log it. */
  onError?: (err: unknown) => void
  now?: () => number
}

/**
 * "Something changed": the one event a view needs to re-read its data. `changed()`
 * tells subscribers coalesced (see `coalesce`), `notify()` tells them at once.
 */
export class ChangeNotifier extends TypedEventEmitter<ChangeEvents> {
  readonly #coalesced: Coalesced
  readonly #onError: ((err: unknown) => void) | undefined

  constructor(init: ChangeNotifierInit = {}) {
    super()
    this.#onError = init.onError
    this.#coalesced = coalesce(
      () => {
        this.notify()
      },
      { everyMs: init.everyMs, now: init.now }
    )
  }

  /** Tell subscribers soon (coalesced). */
  changed(): void {
    this.#coalesced()
  }

  /** Tell subscribers now. */
  notify(): void {
    this.dispatchEvent(new Event('change'))
  }

  /** Drop a pending coalesced notification (e.g. on stop). */
  cancel(): void {
    this.#coalesced.cancel()
  }

  /** Call `listener` on every change; returns the unsubscribe function. */
  subscribe(listener: () => void, opts: { signal?: AbortSignal } = {}): () => void {
    return listen(
      this,
      'change',
      () => {
        listener()
      },
      { onError: this.#onError, signal: opts.signal }
    )
  }
}
