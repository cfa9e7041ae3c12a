/**
 * What a donor needs to know of the page it runs in (issue 16, background tabs): whether the page
 * is hidden and when it is about to be frozen (Page Lifecycle API: `visibilitychange`, `freeze`,
 * `resume`), and a clock a hidden page does not throttle for its lease renewals. In Node (the
 * terminal peer, tests) there is no page: never hidden, and plain intervals.
 */
import { logger } from '../../core/index.ts'

const log = logger('orchestrator:donor')

/** A change of the page: shown, hidden, about to be frozen (no script runs until 'resumed'), resumed. */
export type PageState = 'visible' | 'hidden' | 'frozen' | 'resumed'

/** The page a donor runs in. */
export interface DonorPage {
  /** True while the page is hidden (another tab in front, minimised). */
  hidden(): boolean
  /** Called on each change; returns the unsubscribe. */
  on(listener: (state: PageState) => void): () => void
}

/** Calls `fn` every `ms` milliseconds until the returned stop is called. */
export interface Ticker {
  every(ms: number, fn: () => void): () => void
}

/** The page of a browser tab (`document`); undefined outside one. */
export function browserPage(): DonorPage | undefined {
  const doc = (globalThis as { document?: Document }).document
  if (doc == null || typeof doc.addEventListener !== 'function') return undefined
  return {
    hidden: () => doc.visibilityState === 'hidden',
    on(listener) {
      const vis = (): void => listener(doc.visibilityState === 'hidden' ? 'hidden' : 'visible')
      const freeze = (): void => listener('frozen')
      const resume = (): void => listener('resumed')
      doc.addEventListener('visibilitychange', vis)
      doc.addEventListener('freeze', freeze)
      doc.addEventListener('resume', resume)
      return () => {
        doc.removeEventListener('visibilitychange', vis)
        doc.removeEventListener('freeze', freeze)
        doc.removeEventListener('resume', resume)
      }
    }
  }
}

/** Plain intervals: right in Node and in a visible tab. */
export const intervalTicker: Ticker = {
  every(ms, fn) {
    const t = setInterval(fn, ms)
    return () => clearInterval(t)
  }
}

/**
 * Ticks from a dedicated worker (lease-ticker-worker.ts), whose timers a hidden tab does not
 * throttle; plain intervals where workers are not available or the worker cannot start.
 */
export function workerTicker(): Ticker {
  if (typeof Worker === 'undefined' || typeof document === 'undefined') return intervalTicker
  return {
    every(ms, fn) {
      let worker: Worker
      try {
        worker = new Worker(new URL('./lease-ticker-worker.ts', import.meta.url), { type: 'module', name: 'zerostate-lease-ticker' })
      } catch (err) {
        log('the lease ticker worker did not start (%s): renewing from the page', (err as Error).message)
        return intervalTicker.every(ms, fn)
      }
      // If the worker fails later, the page's own timer takes over (throttled when hidden, but alive).
      let fallback: (() => void) | undefined
      worker.onerror = () => {
        fallback ??= intervalTicker.every(ms, fn)
      }
      worker.onmessage = () => fn()
      worker.postMessage({ every: ms })
      return () => {
        fallback?.()
        worker.terminate()
      }
    }
  }
}
