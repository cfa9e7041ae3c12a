/**
 * `/zerostate/sync/2.0.0`: the y-protocols sync (state vector, then only the
 * missing updates, then incremental updates) over one stream per peer and doc.
 * Yjs updates travel as core payloads (`core/payload.ts`, the one chunked,
 * content-addressed transfer of the mesh): a `step2` or `update` message carries
 * a payload descriptor (kind 'bytes', size, sha-256), with the bytes inline up to
 * one chunk (45 KiB); a larger update is followed by its `chunk` messages, named
 * by the transfer's `id` so small messages may travel between them.
 */
import * as v from 'valibot'
import {
  PAYLOAD_CHUNK_BYTES,
  PayloadDescriptorSchema,
  PayloadChunkEntries,
  defineProtocol,
  describePayload,
  payloadChunks,
  toBase64,
  fromBase64
} from '../core/index.ts'

/** The protocol id (2.0.0: core payloads replaced 1.0.0's base64 parts). */
export const SYNC_PROTOCOL_ID = '/zerostate/sync/2.0.0'
/** Largest frame: 1 MiB of JSON (a state vector may be large; payload chunks stay under 64 KiB). */
export const SYNC_MAX_FRAME_BYTES = 1024 * 1024
/** Base64 characters of a state vector. */
export const SYNC_SV_CHARS = 768 * 1024
/** Largest payload the wire can describe (1 GiB); what a peer accepts is its `MemoryLimits` cap. */
export const SYNC_MAX_PAYLOAD_BYTES = 1024 * 1024 * 1024

const DocName = v.pipe(v.string(), v.maxLength(200), v.regex(/^[A-Za-z0-9_.:/-]+$/))
const B64 = v.pipe(v.string(), v.maxLength(SYNC_SV_CHARS), v.regex(/^[A-Za-z0-9+/]*={0,2}$/))
/** A transfer's number on its channel (per sender, increasing). */
const TransferId = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER))
/** Core's descriptor, bytes only, with the size bounded by the sync wire ceiling (the receiver's cap is lower). */
const SyncPayload = v.object({
  ...PayloadDescriptorSchema.entries,
  kind: v.literal('bytes'),
  size: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(SYNC_MAX_PAYLOAD_BYTES))
})

/** The messages of the sync protocol, a discriminated union on `type`. */
export const SyncMessageSchema = v.variant('type', [
  /** First frame of an outbound stream: which doc this stream syncs. */
  v.object({ type: v.literal('open'), doc: DocName }),
  /** Sync step 1: my state vector. */
  v.object({ type: v.literal('step1'), sv: B64 }),
  /** Sync step 2: what you are missing (inline, or announced and followed by chunks of transfer `id`). */
  v.object({ type: v.literal('step2'), id: TransferId, payload: SyncPayload }),
  /**
   * An incremental update made after the initial sync (inline, or announced and chunked).
   * `relayed`: it carries changes the sender received from other peers and passes on (issue
   * 16), judged like a step 2 answer's third-party content (its cap, its admission), not as the
   * sender's own writes. Optional and stripped by older peers' schema, which read an update.
   */
  v.object({ type: v.literal('update'), id: TransferId, payload: SyncPayload, relayed: v.optional(v.literal(true)) }),
  /** One chunk of transfer `id`. */
  v.object({
    type: v.literal('chunk'),
    id: TransferId,
    ...PayloadChunkEntries,
    index: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Math.ceil(SYNC_MAX_PAYLOAD_BYTES / PAYLOAD_CHUNK_BYTES)))
  })
])

/** One message of the sync protocol. */
export type SyncMessage = v.InferOutput<typeof SyncMessageSchema>
/** A `step2` or `update` message: a payload descriptor. */
export type SyncPayloadMessage = Extract<SyncMessage, { type: 'step2' | 'update' }>

/** The protocol definition used by `framed()`. */
export const syncProtocol = defineProtocol(SYNC_PROTOCOL_ID, SyncMessageSchema, { maxFrameBytes: SYNC_MAX_FRAME_BYTES })

/** Base64-encode bytes (a state vector). */
export function toB64(bytes: Uint8Array): string {
  return toBase64(bytes)
}
/** Decode base64 (a state vector); throws on text that is not base64. */
export function fromB64(text: string): Uint8Array {
  return fromBase64(text)
}

/** The descriptor message of a Yjs update (hashing it once; inline when it fits one chunk). */
export function payloadMessage(type: 'step2' | 'update', id: number, bytes: Uint8Array): SyncPayloadMessage {
  const payload = describePayload({ kind: 'bytes', bytes })
  return { type, id, payload: { ...payload, kind: 'bytes' } }
}

/** Every message of one update, descriptor first then its chunks (for tests and tools; the provider streams them). */
export function payloadMessages(type: 'step2' | 'update', bytes: Uint8Array, id = 0): SyncMessage[] {
  const head = payloadMessage(type, id, bytes)
  const out: SyncMessage[] = [head]
  if (head.payload.inline == null) for (const c of payloadChunks(bytes)) out.push({ type: 'chunk', id, ...c })
  return out
}

/**
 * Bytes of a message's frame body, for the transport's counters. A chunk's is its data
 * plus the JSON around it (re-encoding every received 45 KiB chunk only to count it cost
 * a 7 MB sync transfer tens of ms of main thread and as much garbage, issue 11).
 */
export function frameBytes(msg: SyncMessage): number {
  if (msg.type === 'chunk') return msg.data.length + 40 + String(msg.id).length + String(msg.index).length
  return syncProtocol.encode(msg).byteLength
}
