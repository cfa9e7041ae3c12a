/**
 * Node worker entry (worker_threads), loaded through `node-worker-bootstrap.mjs`
 * which registers the tsx loader first. Same sandbox core as the browser.
 */
import { parentPort } from 'node:worker_threads'
import { expose } from 'comlink'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'
import { createWorkerApi } from './sandbox-core.ts'

if (parentPort == null) throw new Error('agent-worker-node.ts must run in a worker thread')
expose(createWorkerApi(), nodeEndpoint(parentPort))
