/** Node only: an {@link UpdateChecker} on worker_threads (tests, benchmarks, Node peers). */
import { Worker } from 'node:worker_threads'
import { WorkerUpdateChecker, type CheckWorker } from './update-checker.ts'

/** Spawn `update-check-worker-node.mjs` on a worker thread. */
export function nodeCheckWorker(): CheckWorker {
  const w = new Worker(new URL('./update-check-worker-node.mjs', import.meta.url))
  w.unref()
  return {
    post: (m) => w.postMessage(m),
    onMessage: (l) => {
      w.on('message', l)
    },
    onError: (l) => {
      w.on('error', l)
      w.on('exit', (code) => {
        if (code !== 0) l(new Error(`exit ${code}`))
      })
    },
    terminate: () => {
      void w.terminate()
    }
  }
}

/** A worker-thread checker with a deadline. */
export function nodeUpdateChecker(deadlineMs = 2000): WorkerUpdateChecker {
  return new WorkerUpdateChecker(nodeCheckWorker, { deadlineMs })
}
