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
export {}
