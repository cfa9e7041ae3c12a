/**
 * `/zerostate/sync/1.0.0`: the y-protocols sync (state vector, then only the
 * missing updates, then incremental updates) over one stream per peer and doc.
 * Yjs bytes travel base64 inside the JSON frames; payloads larger than one frame
 * are cut into parts (`more: true` until the last) and reassembled under a cap.
 */
import * as v from 'valibot'
import { defineProtocol } from '../core/index.ts'
import { fromString, toString as bytesToString } from 'uint8arrays'

/** The protocol id. */
export const SYNC_PROTOCOL_ID = '/zerostate/sync/1.0.0'
/** Largest frame: 1 MiB of JSON. */
export const SYNC_MAX_FRAME_BYTES = 1024 * 1024
/** Base64 characters of payload per frame (leaves room for the envelope). */
export const SYNC_PART_CHARS = 768 * 1024

const DocName = v.pipe(v.string(), v.maxLength(200), v.regex(/^[A-Za-z0-9_.:/-]+$/))
const B64 = v.pipe(v.string(), v.maxLength(SYNC_PART_CHARS), v.regex(/^[A-Za-z0-9+/]*={0,2}$/))

/** The messages of the sync protocol, a discriminated union on `type`. */
export const SyncMessageSchema = v.variant('type', [
  /** First frame of an outbound stream: which doc this stream syncs. */
  v.object({ type: v.literal('open'), doc: DocName }),
  /** Sync step 1: my state vector. */
  v.object({ type: v.literal('step1'), sv: B64 }),
  /** Sync step 2: what you are missing (possibly in parts). */
  v.object({ type: v.literal('step2'), data: B64, more: v.boolean() }),
  /** An incremental update made after the initial sync (possibly in parts). */
  v.object({ type: v.literal('update'), data: B64, more: v.boolean() })
])

/** One message of the sync protocol. */
export type SyncMessage = v.InferOutput<typeof SyncMessageSchema>

/** The protocol definition used by `framed()`. */
export const syncProtocol = defineProtocol(SYNC_PROTOCOL_ID, SyncMessageSchema, { maxFrameBytes: SYNC_MAX_FRAME_BYTES })

/** Base64-encode bytes for a frame. */
export function toB64(bytes: Uint8Array): string {
  return bytesToString(bytes, 'base64pad')
}
/** Decode a frame's base64 payload. */
export function fromB64(text: string): Uint8Array {
  return fromString(text, 'base64pad')
}

/** Split a payload into `step2`/`update` messages of at most one frame each. */
export function payloadMessages(type: 'step2' | 'update', bytes: Uint8Array): SyncMessage[] {
  const text = toB64(bytes)
  if (text.length <= SYNC_PART_CHARS) return [{ type, data: text, more: false }]
  const out: SyncMessage[] = []
  for (let i = 0; i < text.length; i += SYNC_PART_CHARS) {
    out.push({ type, data: text.slice(i, i + SYNC_PART_CHARS), more: i + SYNC_PART_CHARS < text.length })
  }
  return out
}
