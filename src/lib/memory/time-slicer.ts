/**
 * Long work on the page's main thread, in slices (issue 11: verifying 512 registry records
 * or 600 namespace records in one task froze a tab for 0.4–0.7 s). `maybeYield()` gives the
 * event loop a turn — input, paint, pings, network — once a slice's budget is spent.
 */

interface SchedulerYield {
  yield?: () => Promise<void>
}

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now())

/**
 * One event-loop turn: `scheduler.yield()` where the browser has it (continuations run
 * before other queued tasks of the page, and hidden tabs do not throttle it as they do
 * timers), else a MessageChannel message in a page (timers are clamped and throttled
 * there), else a zero timeout (Node: a message port turn does not let timers run).
 */
export function yieldToEventLoop(): Promise<void> {
  const scheduler = (globalThis as { scheduler?: SchedulerYield }).scheduler
  if (typeof scheduler?.yield === 'function') return scheduler.yield()
  if (typeof window !== 'undefined' && typeof MessageChannel !== 'undefined') {
    return new Promise((resolve) => {
      const { port1, port2 } = new MessageChannel()
      port1.onmessage = () => {
        port1.close()
        resolve()
      }
      port2.postMessage(null)
    })
  }
  return new Promise((resolve) => setTimeout(resolve, 0))
}

/** Splits work into slices of at most about `budgetMs` of main-thread time each. */
export class TimeSlicer {
  readonly budgetMs: number
  #since = now()
  /** Turns given to the event loop so far (tests, counters). */
  yields = 0

  constructor(budgetMs = 20) {
    this.budgetMs = budgetMs
  }

  /** True once this slice has used its budget. */
  due(): boolean {
    return now() - this.#since >= this.budgetMs
  }

  /** Yield if this slice has used its budget; resolves at once otherwise. */
  async maybeYield(): Promise<void> {
    if (!this.due()) return
    this.yields++
    await yieldToEventLoop()
    this.#since = now()
  }
}
