/**
 * Large payloads, one scheme for every protocol: a value (JSON or bytes) is
 * encoded once to bytes, named by its sha-256 (content address), described by a
 * small {@link PayloadDescriptor} that rides in the protocol's own message, and
 * sent as numbered chunks of at most {@link PAYLOAD_CHUNK_BYTES} (base64 in the
 * JSON frame, so a chunk frame stays under the 64 KiB frame cap and one WebRTC
 * message). The receiver keeps the chunks as they come (never the announced size
 * ahead of them: announcing 32 MiB costs nothing until it is sent), checks each
 * chunk's size as it comes and the sha-256 of the whole at the end (WebCrypto, off the
 * main thread where the platform has it; @noble/hashes where it does not): a peer
 * that lies about either gets a typed {@link PayloadIntegrityError}, and one that
 * announces a transfer and stops sending it a {@link PayloadStalledError} once no
 * chunk came for `stallMs` (its chunks are dropped then).
 *
 * Small payloads travel inline in the descriptor (`inline`), so they cost no
 * extra message. Memory per transfer: the sender's encoded bytes (chunks are
 * subarrays, base64 one chunk at a time), the receiver's chunks received so far.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { fromString, toString as bytesToString } from 'uint8arrays'
import * as v from 'valibot'
import { CoreError } from './errors.ts'

/** Raw bytes per chunk: 45 KiB is 60 KiB of base64, which leaves room for the envelope under a 64 KiB frame. */
export const PAYLOAD_CHUNK_BYTES = 45 * 1024
/** Largest payload any receiver accepts by default (the runtime's output cap is 10 MiB; JSON may add some). */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
/** Base64 characters of one chunk. */
export const PAYLOAD_CHUNK_CHARS = Math.ceil(PAYLOAD_CHUNK_BYTES / 3) * 4

/** The payload's failures. */
export class PayloadError extends CoreError {
  static override readonly defaultMessage: string = 'A large message could not be transferred'
  override readonly name: string = 'PayloadError'
}

/** The peer sent chunks that do not add up: wrong size, order, count or sha-256. */
export class PayloadIntegrityError extends PayloadError {
  static override readonly defaultMessage: string = 'A peer sent data that does not match the size or hash it announced'
  override readonly name: string = 'PayloadIntegrityError'
}

/** The announced payload is larger than this receiver accepts. */
export class PayloadTooLargeError extends PayloadIntegrityError {
  static override readonly defaultMessage: string = 'A peer announced a payload larger than this peer accepts'
  override readonly name: string = 'PayloadTooLargeError'
}

/** The peer announced a payload, then sent no chunk of it for too long. */
export class PayloadStalledError extends PayloadIntegrityError {
  static override readonly defaultMessage: string = 'A peer announced a payload and stopped sending it'
  override readonly name: string = 'PayloadStalledError'
}

/** How long a receiver waits for the next chunk of a transfer before giving it up. */
export const PAYLOAD_STALL_MS = 30_000

/** The transfer was aborted (by either side, or the connection closed) before it ended. */
export class PayloadAbortedError extends PayloadError {
  static override readonly defaultMessage: string = 'The transfer was aborted before it ended'
  override readonly name: string = 'PayloadAbortedError'
}

const hex64 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/))
// Bounded here, decoded (alphabet and padding checked) by the assembler: a PayloadIntegrityError,
// which strikes its sender as an invalid frame does. A regular expression here ran over every
// 60 KB chunk frame once more (~70 ms of a tab's main thread for a 7.7 MB sync step 2, issue 11).
const base64Chunk = v.pipe(v.string(), v.maxLength(PAYLOAD_CHUNK_CHARS))

/** How the bytes decode: UTF-8 JSON, or bytes as they are (a Uint8Array). */
export const PAYLOAD_KINDS = ['json', 'bytes'] as const
/** How the bytes decode. */
export type PayloadKind = (typeof PAYLOAD_KINDS)[number]

/** What a protocol message says about a payload that follows (or is inline). */
export const PayloadDescriptorSchema = v.object({
  kind: v.picklist(PAYLOAD_KINDS),
  /** Bytes in total. */
  size: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_PAYLOAD_BYTES)),
  /** sha-256 hex of the bytes: the content address. */
  sha256: hex64,
  /** The whole payload, base64, when it fits in one chunk (then no chunk follows). */
  inline: v.optional(base64Chunk)
})
/** What a protocol message says about a payload. */
export type PayloadDescriptor = v.InferOutput<typeof PayloadDescriptorSchema>

/** The fields of one chunk message (a protocol adds its own `type` and request id). */
export const PayloadChunkEntries = {
  /** 0-based, in order. */
  index: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Math.ceil(MAX_PAYLOAD_BYTES / PAYLOAD_CHUNK_BYTES))),
  data: base64Chunk
}
/** One chunk. */
export interface PayloadChunk {
  index: number
  data: string
}

/** A value encoded for transfer. */
export interface EncodedPayload {
  kind: PayloadKind
  bytes: Uint8Array
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

// Native base64 where there is one (Uint8Array.prototype.toBase64 in current browsers,
// Buffer in Node): ~10× faster than uint8arrays' generic codec (7 ms per chunk in Node).
type NativeBase64 = { toBase64?: () => string }
type NativeFromBase64 = { fromBase64?: (text: string, options?: { lastChunkHandling?: 'strict' }) => Uint8Array }
type NodeBuffer = { from(a: ArrayBufferLike | string, b?: number | string, c?: number): Uint8Array & { toString(enc: string): string } }
const nodeBuffer = (globalThis as unknown as { Buffer?: NodeBuffer }).Buffer

/** Base64 (with padding) of bytes. */
export function toBase64(bytes: Uint8Array): string {
  const native = (bytes as unknown as NativeBase64).toBase64
  if (typeof native === 'function') return native.call(bytes)
  if (nodeBuffer != null) return nodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
  return bytesToString(bytes, 'base64pad')
}

/** Bytes of base64 text; throws on text that is not base64. */
export function fromBase64(text: string): Uint8Array {
  if (text.length % 4 !== 0) throw new TypeError('not base64')
  const native = (Uint8Array as unknown as NativeFromBase64).fromBase64
  if (typeof native === 'function') {
    // The browser's own decoder checks the alphabet and the padding ('strict'), without the
    // regular expression (a 7.7 MB sync update spent ~70 ms of a tab's main thread in it). It
    // skips ASCII white space, which the length then gives away.
    let bytes: Uint8Array
    try {
      bytes = native(text, { lastChunkHandling: 'strict' })
    } catch {
      throw new TypeError('not base64')
    }
    const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0
    if (bytes.byteLength !== (text.length / 4) * 3 - pad) throw new TypeError('not base64')
    return bytes
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new TypeError('not base64')
  if (nodeBuffer != null) {
    const b = nodeBuffer.from(text, 'base64')
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  }
  return fromString(text, 'base64pad')
}

/** True for the values sent as bytes: any Uint8Array (or other ArrayBuffer view) and ArrayBuffer. */
export function isBytes(value: unknown): value is Uint8Array | ArrayBuffer | ArrayBufferView {
  return value instanceof Uint8Array || ArrayBuffer.isView(value) || value instanceof ArrayBuffer
}

/** Encode a value once: bytes as they are (no copy), anything else as UTF-8 JSON. */
export function encodePayload(value: unknown): EncodedPayload {
  if (value instanceof Uint8Array) return { kind: 'bytes', bytes: value }
  if (ArrayBuffer.isView(value)) return { kind: 'bytes', bytes: new Uint8Array(value.buffer, value.byteOffset, value.byteLength) }
  if (value instanceof ArrayBuffer) return { kind: 'bytes', bytes: new Uint8Array(value) }
  return { kind: 'json', bytes: encoder.encode(JSON.stringify(value ?? null)) }
}

/** Decode bytes of `kind`; throws `PayloadIntegrityError` when JSON bytes are not UTF-8 JSON. */
export function decodePayload(kind: PayloadKind, bytes: Uint8Array): unknown {
  if (kind === 'bytes') return bytes
  try {
    return JSON.parse(decoder.decode(bytes)) as unknown
  } catch (err) {
    throw new PayloadIntegrityError('a JSON payload is not UTF-8 JSON', { cause: err })
  }
}

/** Hex sha-256 of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return bytesToString(sha256(bytes), 'base16')
}

type Subtle = { digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer> }
const subtle = (globalThis as { crypto?: { subtle?: Subtle } }).crypto?.subtle

/**
 * Payloads up to this many bytes are hashed in JavaScript even where WebCrypto is: a digest
 * call costs a round trip to another thread and a promise whatever the size, more than
 * hashing a few KB here. Every sync exchange's small inline payload went to WebCrypto:
 * ~2.5 % of an idle simulated peer's CPU at 200 peers (issue 16).
 */
export const SHA256_SYNC_MAX_BYTES = 16 * 1024

/**
 * Hex sha-256 of bytes by WebCrypto where the platform has it (a browser in a secure
 * context, Node) and the payload is larger than SHA256_SYNC_MAX_BYTES: Chromium hashes on
 * its WebCrypto thread, so a 7 MB payload no longer costs the page ~100 ms of JavaScript
 * hashing (issue 11, the over-quota sync step 2). Elsewhere (small payloads, a page over
 * plain http) the JavaScript hash.
 */
export async function sha256HexAsync(bytes: Uint8Array): Promise<string> {
  if (subtle == null || bytes.byteLength <= SHA256_SYNC_MAX_BYTES) return sha256Hex(bytes)
  return bytesToString(new Uint8Array(await subtle.digest('SHA-256', bytes)), 'base16')
}

/** Chunks a payload of `size` bytes travels in (0 when it is inline). */
export function chunkCount(d: Pick<PayloadDescriptor, 'size' | 'inline'>): number {
  return d.inline != null ? 0 : Math.ceil(d.size / PAYLOAD_CHUNK_BYTES)
}

/** Describe an encoded payload (hashing it once); small ones are inlined. */
export function describePayload(p: EncodedPayload): PayloadDescriptor {
  const d: PayloadDescriptor = { kind: p.kind, size: p.bytes.byteLength, sha256: sha256Hex(p.bytes) }
  if (p.bytes.byteLength <= PAYLOAD_CHUNK_BYTES) d.inline = toBase64(p.bytes)
  return d
}

/** The chunks of a payload, base64-encoded one at a time (the bytes are not copied). */
export function* payloadChunks(bytes: Uint8Array): Generator<PayloadChunk> {
  const count = Math.ceil(bytes.byteLength / PAYLOAD_CHUNK_BYTES)
  for (let index = 0; index < count; index++) {
    yield { index, data: toBase64(bytes.subarray(index * PAYLOAD_CHUNK_BYTES, (index + 1) * PAYLOAD_CHUNK_BYTES)) }
  }
}

/** Progress of one transfer. */
export interface PayloadProgress {
  bytes: number
  totalBytes: number
}

/** Options of {@link sendPayloadChunks}. */
export interface SendPayloadOptions {
  signal?: AbortSignal
  onProgress?: (p: PayloadProgress) => void
}

/**
 * Send a payload's chunks through `send`, one at a time: each chunk waits for the
 * previous one to be handed to the stream (its backpressure), so messages other
 * senders queue meanwhile go out between chunks instead of after the whole payload.
 */
export async function sendPayloadChunks(bytes: Uint8Array, send: (chunk: PayloadChunk) => Promise<void>, opts: SendPayloadOptions = {}): Promise<void> {
  let sent = 0
  for (const chunk of payloadChunks(bytes)) {
    if (opts.signal?.aborted === true) throw new PayloadAbortedError(undefined, { cause: opts.signal.reason })
    await send(chunk)
    sent = Math.min(bytes.byteLength, sent + PAYLOAD_CHUNK_BYTES)
    opts.onProgress?.({ bytes: sent, totalBytes: bytes.byteLength })
  }
}

/** Options of {@link PayloadAssembler}. */
export interface PayloadAssemblerOptions {
  /** Largest announced size accepted. Default {@link MAX_PAYLOAD_BYTES}. */
  maxBytes?: number
  /** No chunk for this long: the transfer is stalled (chunks dropped). Default {@link PAYLOAD_STALL_MS}. */
  stallMs?: number
  /** Told once when the transfer stalls (the caller's strike policy and clean-up plug in here). */
  onStall?: (err: PayloadStalledError) => void
  /**
   * Given each chunk's bytes once taken, in order (a caller that can judge a prefix, e.g. a
   * quota, refuses early by throwing: the transfer fails, its chunks are dropped, and `push`
   * throws that error).
   */
  onChunk?: (bytes: Uint8Array) => void
}

/**
 * Reassembles one payload from its chunks: checks the announced size against
 * `maxBytes` first, takes chunks in order (duplicates ignored, a gap or an overflow
 * is an integrity error), keeps only what arrived and checks the sha-256 of the
 * whole at the end ({@link sha256HexAsync}). A transfer that gets no chunk for `stallMs` fails with
 * PayloadStalledError (on the next push or finish, and through `onStall` at once).
 */
export class PayloadAssembler {
  readonly descriptor: PayloadDescriptor
  #chunks: Uint8Array[] = []
  readonly #count: number
  readonly #stallMs: number
  readonly #onStall: ((err: PayloadStalledError) => void) | undefined
  readonly #onChunk: ((bytes: Uint8Array) => void) | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  #failed: PayloadError | undefined
  #next = 0
  #received = 0
  #finishing: Promise<unknown> | undefined

  /** Throws `PayloadTooLargeError` when the descriptor announces more than `maxBytes`. */
  constructor(descriptor: PayloadDescriptor, opts: PayloadAssemblerOptions = {}) {
    const max = opts.maxBytes ?? MAX_PAYLOAD_BYTES
    if (descriptor.size > max) throw new PayloadTooLargeError(`a peer announced ${descriptor.size} bytes; this peer accepts at most ${max}`)
    this.descriptor = descriptor
    this.#count = chunkCount(descriptor)
    this.#stallMs = opts.stallMs ?? PAYLOAD_STALL_MS
    this.#onStall = opts.onStall
    this.#onChunk = opts.onChunk
    if (!this.complete) this.#arm()
  }

  /** Bytes received so far. */
  get received(): number {
    return this.#received
  }
  /** Bytes this assembler holds now (what arrived; nothing once stalled, aborted or finished). */
  get buffered(): number {
    return this.#chunks.reduce((n, c) => n + c.byteLength, 0)
  }
  /** True once every chunk arrived. */
  get complete(): boolean {
    return this.#next >= this.#count
  }

  /** Give the transfer up (the stream closed, the caller refused it): drops its chunks and its timer. */
  abort(reason: PayloadError = new PayloadAbortedError()): void {
    this.#fail(reason)
  }

  #arm(): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      const err = new PayloadStalledError(`no chunk of a ${this.descriptor.size}-byte payload for ${this.#stallMs} ms (${this.#received} bytes came)`)
      this.#fail(err)
      this.#onStall?.(err)
    }, this.#stallMs)
    ;(this.#timer as { unref?: () => void }).unref?.()
  }

  #fail(err: PayloadError): void {
    clearTimeout(this.#timer)
    this.#failed ??= err
    this.#chunks = []
  }

  /** Take one chunk; returns false for a duplicate. Throws `PayloadIntegrityError` (PayloadStalledError once stalled), or what `onChunk` threw. */
  push(chunk: PayloadChunk): boolean {
    if (this.#failed != null) throw this.#failed
    if (chunk.index < this.#next) return false
    if (chunk.index > this.#next) throw new PayloadIntegrityError(`chunk ${chunk.index} arrived before chunk ${this.#next}`)
    if (chunk.index >= this.#count) throw new PayloadIntegrityError(`chunk ${chunk.index} is beyond the ${this.#count} announced`)
    let data: Uint8Array
    try {
      data = fromBase64(chunk.data)
    } catch (err) {
      throw new PayloadIntegrityError('a chunk is not base64', { cause: err })
    }
    const last = chunk.index === this.#count - 1
    const expected = last ? this.descriptor.size - chunk.index * PAYLOAD_CHUNK_BYTES : PAYLOAD_CHUNK_BYTES
    if (data.byteLength !== expected) throw new PayloadIntegrityError(`chunk ${chunk.index} has ${data.byteLength} bytes, not ${expected}`)
    if (this.#onChunk != null) {
      try {
        this.#onChunk(data)
      } catch (err) {
        this.#fail(new PayloadAbortedError('the receiver refused the payload', { cause: err }))
        throw err
      }
    }
    this.#chunks.push(data)
    this.#received += data.byteLength
    this.#next++
    if (this.complete) clearTimeout(this.#timer)
    else this.#arm()
    return true
  }

  /**
   * The decoded value, once complete; rejects with `PayloadIntegrityError` when the
   * size or the sha-256 does not match (the same promise to every caller).
   */
  finish(): Promise<unknown> {
    if (this.#failed != null) return Promise.reject(this.#failed)
    if (this.descriptor.inline == null && !this.complete)
      return Promise.reject(new PayloadIntegrityError(`the payload ended after ${this.#received} of ${this.descriptor.size} bytes`))
    this.#finishing ??= this.#finish()
    return this.#finishing
  }

  async #finish(): Promise<unknown> {
    const d = this.descriptor
    let bytes: Uint8Array
    if (d.inline != null) {
      try {
        bytes = fromBase64(d.inline)
      } catch (err) {
        throw new PayloadIntegrityError('an inline payload is not base64', { cause: err })
      }
      if (bytes.byteLength !== d.size) throw new PayloadIntegrityError(`an inline payload has ${bytes.byteLength} bytes, not the announced ${d.size}`)
    } else {
      bytes = this.#chunks.length === 1 ? (this.#chunks[0] as Uint8Array) : new Uint8Array(d.size)
      if (this.#chunks.length !== 1) {
        let at = 0
        for (const c of this.#chunks) {
          bytes.set(c, at)
          at += c.byteLength
        }
      }
      this.#chunks = []
    }
    if ((await sha256HexAsync(bytes)) !== d.sha256) {
      this.#failed = new PayloadIntegrityError('the payload does not match its sha-256: a chunk was corrupted or forged')
      throw this.#failed
    }
    return decodePayload(d.kind, bytes)
  }
}
