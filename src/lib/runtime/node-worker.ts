/**
 * worker_threads implementation of the worker factory (Node, vitest, CLI).
 * Never imported by browser code (see `defaultWorkerFactory`).
 */
import { Worker } from 'node:worker_threads'
import nodeEndpoint, { type NodeEndpoint } from 'comlink/dist/esm/node-adapter.mjs'
import type { WorkerFactory } from './worker-factory.ts'

const BOOTSTRAP = new URL('./node-worker-bootstrap.mjs', import.meta.url)

/** Node worker threads running `agent-worker-node.ts` through the tsx loader. */
export const nodeWorkerFactory: WorkerFactory = () => {
  const worker = new Worker(BOOTSTRAP, { name: 'zerostate-agent' })
  worker.unref()
  let listener: ((err: Error) => void) | undefined
  let terminated = false
  const fire = (err: Error): void => {
    const l = listener
    listener = undefined
    if (!terminated) l?.(err)
  }
  worker.on('error', (err) => fire(err instanceof Error ? err : new Error(String(err))))
  worker.on('exit', (code) => fire(new Error(`the worker exited with code ${code}`)))
  return {
    endpoint: nodeEndpoint(worker as unknown as NodeEndpoint),
    terminate: () => {
      terminated = true
      listener = undefined
      void worker.terminate()
    },
    onCrash: (l) => {
      listener = l
    }
  }
}
