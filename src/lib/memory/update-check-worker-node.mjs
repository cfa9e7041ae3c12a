// worker_threads twin of update-check-worker.ts (plain JS so Node runs it without a loader).
import { parentPort } from 'node:worker_threads'
import { expose } from 'comlink'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'
import * as Y from 'yjs'

expose(
  {
    check(update) {
      if (!(update instanceof Uint8Array)) return { ok: false, error: 'the update is not bytes' }
      try {
        Y.applyUpdate(new Y.Doc({ gc: true }), update)
        return { ok: true }
      } catch (err) {
        return { ok: false, error: String(err?.message ?? err) }
      }
    }
  },
  nodeEndpoint(parentPort)
)
