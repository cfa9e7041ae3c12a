/**
 * How the pool gets a worker. The browser implementation is a module Web Worker
 * bundled by Vite; the Node one (`node-worker.ts`) uses worker_threads and is
 * loaded only in Node, so browser bundles never see `node:` imports.
 */
import type { Endpoint } from 'comlink'

/** A started worker as the pool sees it. */
export interface WorkerHandle {
  readonly endpoint: Endpoint
  /** Stop it now; used on deadlines, aborts and shrinking. */
  terminate(): void
  /** Called once if the worker dies on its own (uncaught error, exit). */
  onCrash(listener: (err: Error) => void): void
}

/** Makes workers. */
export type WorkerFactory = () => WorkerHandle

/** Module Web Workers (browser). */
export const webWorkerFactory: WorkerFactory = () => {
  const worker = new Worker(new URL('./agent-worker.ts', import.meta.url), { type: 'module', name: 'zerostate-agent' })
  let listener: ((err: Error) => void) | undefined
  const crash = (ev: Event): void => {
    ev.preventDefault()
    const message = ev instanceof ErrorEvent ? ev.message : 'the worker failed'
    listener?.(new Error(message))
    listener = undefined
  }
  worker.addEventListener('error', crash)
  worker.addEventListener('messageerror', crash)
  return {
    endpoint: worker,
    terminate: () => {
      listener = undefined
      worker.terminate()
    },
    onCrash: (l) => {
      listener = l
    }
  }
}

/** The default factory for this environment. */
export async function defaultWorkerFactory(): Promise<WorkerFactory> {
  if (typeof Worker === 'function') return webWorkerFactory
  // Node: a path in a variable so bundlers leave it alone.
  const nodeModule = './node-worker.ts'
  const mod = (await import(/* @vite-ignore */ nodeModule)) as { nodeWorkerFactory: WorkerFactory }
  return mod.nodeWorkerFactory
}
