/**
 * worker_threads implementation of the worker factory (Node, vitest, CLI).
 * Never imported by browser code (see `defaultWorkerFactory`).
 */
import { Worker } from 'node:worker_threads'
import { nodeWorkerHandle } from '../core/index.ts'
import type { WorkerFactory } from './worker-factory.ts'

const BOOTSTRAP = new URL('./node-worker-bootstrap.mjs', import.meta.url)

/** Node worker threads running `agent-worker-node.ts` through the tsx loader. */
export const nodeWorkerFactory: WorkerFactory = () => {
  const worker = new Worker(BOOTSTRAP, { name: 'zerostate-agent' })
  worker.unref()
  return nodeWorkerHandle(worker)
}
