/**
 * Module worker: apply an update to a fresh scratch doc and say whether Yjs
 * accepted it. The page reaches it through Comlink behind core's SupervisedWorker,
 * which terminates this worker if it takes too long (yjs#687).
 */
import { expose } from 'comlink'
import * as Y from 'yjs'
import * as v from 'valibot'
import { CheckRequestSchema, type UpdateCheckApi } from './update-check-messages.ts'

const api: UpdateCheckApi = {
  check(update) {
    const req = v.safeParse(CheckRequestSchema, update)
    if (!req.success) return { ok: false, error: 'the update is not bytes' }
    try {
      Y.applyUpdate(new Y.Doc({ gc: true }), req.output)
      return { ok: true }
    } catch (err) {
      return { ok: false, error: String((err as Error)?.message ?? err) }
    }
  }
}
expose(api)
