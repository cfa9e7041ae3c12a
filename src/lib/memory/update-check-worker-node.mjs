// worker_threads twin of update-check-worker.ts (plain JS so Node runs it without a loader).
import { parentPort } from 'node:worker_threads'
import * as Y from 'yjs'

parentPort.on('message', (data) => {
  if (data == null || typeof data.id !== 'number' || !(data.update instanceof Uint8Array)) return
  try {
    Y.applyUpdate(new Y.Doc({ gc: true }), data.update)
    parentPort.postMessage({ id: data.id, ok: true })
  } catch (err) {
    parentPort.postMessage({ id: data.id, ok: false, error: String(err?.message ?? err) })
  }
})
