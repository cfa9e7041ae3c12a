/**
 * libp2p 3's dependencies call `Promise.withResolvers`, which Node 20 lacks
 * (FIELD-NOTES). Import this module first in every Node entry (relay, tests).
 */
interface WithResolvers<T> {
  promise: Promise<T>
  resolve: (value: T | PromiseLike<T>) => void
  reject: (reason?: unknown) => void
}
const P = Promise as unknown as { withResolvers?: <T>() => WithResolvers<T> }
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T>(): WithResolvers<T> {
    let resolve!: WithResolvers<T>['resolve']
    let reject!: WithResolvers<T>['reject']
    const promise = new Promise<T>((res, rej) => {
      resolve = res
      reject = rej
    })
    return { promise, resolve, reject }
  }
}

// libp2p's logger (weald, a fork of debug) decides colours per logger it creates, by calling
// isatty(2) unless DEBUG_COLORS says: libp2p creates loggers per connection and stream, so a
// Node peer called isatty thousands of times a second (2.2 % of a 16-peer simulation's CPU
// profile, with createDebug another 0.5 %). The same answer, asked once: the stream knows.
const proc = (globalThis as { process?: { env?: Record<string, string | undefined>; stderr?: { isTTY?: boolean } } }).process
if (proc?.env != null && !('DEBUG_COLORS' in proc.env)) proc.env.DEBUG_COLORS = proc.stderr?.isTTY === true ? 'true' : 'false'
export {}
