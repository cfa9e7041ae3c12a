/**
 * Browser worker entry: `new Worker(new URL('./agent-worker.ts', import.meta.url), { type: 'module' })`.
 * Exposes the sandbox core through Comlink.
 */
import { expose } from 'comlink'
import { createWorkerApi } from './sandbox-core.ts'

expose(createWorkerApi())
