/**
 * How the pool gets a worker. The browser implementation is a module Web Worker
 * bundled by Vite; the Node one (`node-worker.ts`) uses worker_threads and is
 * loaded only in Node, so browser bundles never see `node:` imports. The pool
 * supervises each one with core's `SupervisedWorker`.
 */
import { webWorkerHandle, type WorkerHandle } from '../core/index.ts'

export type { WorkerHandle }

/** Makes workers. */
export type WorkerFactory = () => WorkerHandle

/** Module Web Workers (browser). */
export const webWorkerFactory: WorkerFactory = () =>
  webWorkerHandle(new Worker(new URL('./agent-worker.ts', import.meta.url), { type: 'module', name: 'zerostate-agent' }))

/** The default factory for this environment. */
export async function defaultWorkerFactory(): Promise<WorkerFactory> {
  if (typeof Worker === 'function') return webWorkerFactory
  // Node: a path in a variable so bundlers leave it alone.
  const nodeModule = './node-worker.ts'
  const mod = (await import(/* @vite-ignore */ nodeModule)) as { nodeWorkerFactory: WorkerFactory }
  return mod.nodeWorkerFactory
}
