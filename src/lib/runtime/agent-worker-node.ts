/**
 * Node worker entry (worker_threads), loaded through `node-worker-bootstrap.mjs`
 * which registers the tsx loader first. Same sandbox core as the browser; tool
 * calls wait with `Atomics.wait` and `receiveMessageOnPort` (tool-bridge.ts).
 */
import { parentPort, receiveMessageOnPort, type MessagePort as NodeMessagePort } from 'node:worker_threads'
import { expose } from 'comlink'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'
import { createWorkerApi } from './sandbox-core.ts'

if (parentPort == null) throw new Error('agent-worker-node.ts must run in a worker thread')
// No JSPI in Node 20's V8: a tool call blocks this thread on shared memory and takes its answer synchronously.
expose(createWorkerApi({ receiveSync: (port) => receiveMessageOnPort(port as unknown as NodeMessagePort)?.message }), nodeEndpoint(parentPort))
