/** Exponential backoff with full jitter, capped. `attempt` starts at 0. */
export function backoffDelay(attempt: number, opts: { baseMs?: number; maxMs?: number; random?: () => number } = {}): number {
  const base = opts.baseMs ?? 500
  const max = opts.maxMs ?? 30_000
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 20))
  const r = (opts.random ?? Math.random)()
  return Math.round(ceiling / 2 + (ceiling / 2) * r)
}

/**
 * Wait `ms`, or reject with `cancelled(signal.reason)` as soon as `signal` aborts (at once
 * when it already has: a listener added to an aborted signal never fires).
 */
export async function abortableSleep(ms: number, signal: AbortSignal, cancelled: (reason: unknown) => Error): Promise<void> {
  if (signal.aborted) throw cancelled(signal.reason)
  if (ms <= 0) return
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(t)
      reject(cancelled(signal.reason))
    }
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * Wait for `promise` to settle (fulfilled or rejected), at most `ms`, and no longer than `signal`
 * stays unaborted: true when it settled in time, false when the bound or the abort came first (the
 * promise is left running; the timer and the abort listener are removed). No promise: nothing to
 * wait for, true at once.
 */
export async function settledWithin(promise: Promise<unknown> | undefined, ms: number, signal?: AbortSignal): Promise<boolean> {
  if (promise == null) return true
  let timer: ReturnType<typeof setTimeout> | undefined
  let onAbort: (() => void) | undefined
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
    if (signal == null) return
    onAbort = () => resolve(false)
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([
      promise.then(
        () => true as const,
        () => true as const
      ),
      late
    ])
  } finally {
    clearTimeout(timer)
    if (onAbort != null) signal?.removeEventListener('abort', onAbort)
  }
}
