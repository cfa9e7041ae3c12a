/**
 * Module worker: apply an update to a fresh scratch doc and say whether Yjs
 * accepted it. The page terminates this worker if it takes too long (yjs#687).
 */
import * as Y from 'yjs'
import * as v from 'valibot'
import { CheckRequestSchema } from './update-check-messages.ts'

const scope = self as unknown as { onmessage: ((e: MessageEvent) => void) | null; postMessage(m: unknown): void }
scope.onmessage = (e) => {
  const req = v.safeParse(CheckRequestSchema, e.data)
  if (!req.success) return
  try {
    Y.applyUpdate(new Y.Doc({ gc: true }), req.output.update)
    scope.postMessage({ id: req.output.id, ok: true })
  } catch (err) {
    scope.postMessage({ id: req.output.id, ok: false, error: String((err as Error)?.message ?? err) })
  }
}
