/** The update-check worker's API and its messages (kept apart so the worker bundle stays small). */
import * as v from 'valibot'

/** What a check worker receives: the update bytes. */
export const CheckRequestSchema = v.instance(Uint8Array<ArrayBufferLike>)
/** What a check worker answers. */
export const CheckReplySchema = v.object({ ok: v.boolean(), error: v.optional(v.string()) })

/** The API an update-check worker exposes through Comlink. */
export interface UpdateCheckApi {
  /** Apply `update` to a fresh scratch doc; says whether Yjs accepted it. */
  check(update: Uint8Array): v.InferOutput<typeof CheckReplySchema>
}
