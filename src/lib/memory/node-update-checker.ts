/** Node only: an {@link UpdateChecker} on worker_threads (tests, benchmarks, Node peers). */
import { Worker } from 'node:worker_threads'
import { nodeWorkerHandle } from '../core/index.ts'
import { WorkerUpdateChecker, type CheckWorker } from './update-checker.ts'

/** Spawn `update-check-worker-node.mjs` on a worker thread. */
export function nodeCheckWorker(): CheckWorker {
  const w = new Worker(new URL('./update-check-worker-node.mjs', import.meta.url))
  w.unref()
  return nodeWorkerHandle(w)
}

/** A worker-thread checker with a deadline. */
export function nodeUpdateChecker(deadlineMs = 2000): WorkerUpdateChecker {
  return new WorkerUpdateChecker(nodeCheckWorker, { deadlineMs })
}
