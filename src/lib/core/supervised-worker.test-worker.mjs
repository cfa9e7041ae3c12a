// A worker_threads worker for supervised-worker.test.ts: answers, hangs, spins, throws or dies on demand.
import { parentPort } from 'node:worker_threads'
import { expose } from 'comlink'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'

let calls = 0
const api = {
  echo(x) {
    calls++
    return x
  },
  calls: () => calls,
  hang: () => new Promise(() => {}),
  spin() {
    for (;;) {}
  },
  fail(message) {
    const err = new Error(message)
    err.name = 'CustomError'
    throw err
  },
  exitSoon(code) {
    setTimeout(() => process.exit(code), 20)
    return new Promise(() => {})
  }
}
expose(api, nodeEndpoint(parentPort))
