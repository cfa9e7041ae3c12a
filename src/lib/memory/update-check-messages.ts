/** Messages between the page and the update-check worker (kept apart so the worker bundle stays small). */
import * as v from 'valibot'

/** The request a check worker receives. */
export const CheckRequestSchema = v.object({ id: v.number(), update: v.instance(Uint8Array<ArrayBufferLike>) })
/** The reply a check worker posts. */
export const CheckReplySchema = v.object({ id: v.number(), ok: v.boolean(), error: v.optional(v.string()) })
