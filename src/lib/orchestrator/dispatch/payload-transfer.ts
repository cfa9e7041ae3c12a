/**
 * Large inputs, outputs and agent modules over any `TaskTransport`: the core
 * payload scheme (`core/payload.ts`) with `chunk` messages of the task protocol,
 * matched to their transfer by (peer, rid). One subscription serves every
 * transfer of its owner; chunks of transfers it does not know are left to others.
 */
import {
  PAYLOAD_CHUNK_BYTES,
  PayloadAbortedError,
  PayloadAssembler,
  PayloadError,
  PayloadIntegrityError,
  describePayload,
  encodePayload,
  isBytes,
  sendPayloadChunks,
  type PayloadDescriptor,
  type PayloadProgress
} from '../../core/index.ts'
import { TASK_INLINE_JSON_BYTES, type TaskMessageOf } from './task-protocol.ts'
import type { TaskTransport } from './task-transport.ts'

export type { PayloadProgress } from '../../core/index.ts'

/** A value ready for an offer or a result: inline JSON, or a descriptor (and the bytes to stream when it is not inline). */
export type PreparedPayload = { inline: true; value: unknown; size: number } | { inline: false; payload: PayloadDescriptor; bytes?: Uint8Array; size: number }

const encoder = new TextEncoder()

/**
 * Prepare `value` for the wire once (hashing it once): small JSON stays inline in
 * the message; bytes and large JSON become a payload descriptor.
 */
export function preparePayload(value: unknown): PreparedPayload {
  if (!isBytes(value)) {
    const text = JSON.stringify(value ?? null)
    // Cheap bound first: a UTF-8 character is at most 3 bytes per UTF-16 unit.
    if (text.length * 3 <= TASK_INLINE_JSON_BYTES || (text.length <= TASK_INLINE_JSON_BYTES && encoder.encode(text).byteLength <= TASK_INLINE_JSON_BYTES)) {
      return { inline: true, value, size: text.length }
    }
  }
  const encoded = encodePayload(value)
  const payload = describePayload(encoded)
  return payload.inline != null
    ? { inline: false, payload, size: encoded.bytes.byteLength }
    : { inline: false, payload, bytes: encoded.bytes, size: encoded.bytes.byteLength }
}

/** Options of a transfer. */
export interface TransferOptions {
  signal?: AbortSignal
  onProgress?: (p: PayloadProgress) => void
}

interface Receiving {
  assembler: PayloadAssembler
  resolve: (value: unknown) => void
  reject: (err: Error) => void
  onProgress?: (p: PayloadProgress) => void
}

/** Sends and receives payloads over a task transport. */
export class TaskPayloads {
  readonly #transport: TaskTransport
  readonly #maxBytes: number | undefined
  readonly #receiving = new Map<string, Receiving>()
  #offs: Array<() => void> = []
  /** Counters: chunksIn, chunksOut, bytesIn, bytesOut, integrityErrors (lies about size or hash), aborted. */
  readonly stats = { chunksIn: 0, chunksOut: 0, bytesIn: 0, bytesOut: 0, integrityErrors: 0, aborted: 0 }

  constructor(transport: TaskTransport, init: { maxBytes?: number } = {}) {
    this.#transport = transport
    this.#maxBytes = init.maxBytes
  }

  /** Listen for chunks. Idempotent. */
  start(): void {
    if (this.#offs.length > 0) return
    this.#offs = [
      this.#transport.onMessage((from, m) => {
        if (m.type === 'chunk') this.#onChunk(from, m)
      }),
      this.#transport.onPeerClosed((peer) => {
        for (const [key, r] of this.#receiving) {
          if (key.startsWith(`${peer}\n`)) this.#fail(key, r, new PayloadAbortedError(`${peer} closed during the transfer`))
        }
      })
    ]
  }

  /** Stop listening; transfers in flight reject with `PayloadAbortedError`. */
  stop(): void {
    for (const off of this.#offs) off()
    this.#offs = []
    for (const [key, r] of this.#receiving) this.#fail(key, r, new PayloadAbortedError('the transfer stopped'))
  }

  /** Transfers being received. */
  get receiving(): number {
    return this.#receiving.size
  }

  /**
   * Send `bytes` as the chunks of the payload announced under `rid`. Resolves once
   * every chunk was handed to the transport; rejects with `PayloadAbortedError`
   * when the signal aborts, or the transport's error.
   */
  async send(peer: string, rid: string, bytes: Uint8Array, opts: TransferOptions = {}): Promise<void> {
    try {
      await sendPayloadChunks(
        bytes,
        async (chunk) => {
          await this.#transport.send(peer, { type: 'chunk', rid, ...chunk }, { signal: opts.signal })
          this.stats.chunksOut++
          this.stats.bytesOut += Math.min(PAYLOAD_CHUNK_BYTES, bytes.byteLength - chunk.index * PAYLOAD_CHUNK_BYTES)
        },
        opts
      )
    } catch (err) {
      if (opts.signal?.aborted === true) {
        this.stats.aborted++
        throw err instanceof PayloadAbortedError ? err : new PayloadAbortedError(undefined, { cause: err })
      }
      throw err
    }
  }

  /**
   * Receive the payload `descriptor` announces from `peer` under `rid`. Registers
   * at once (call it before the chunks can arrive); resolves with the decoded value
   * (a Uint8Array for bytes). Rejects with `PayloadIntegrityError` (counted) when
   * the size or hash is a lie, `PayloadTooLargeError` over the cap, and
   * `PayloadAbortedError` when the signal aborts, the peer closes or this stops.
   */
  receive(peer: string, rid: string, descriptor: PayloadDescriptor, opts: TransferOptions = {}): Promise<unknown> {
    const key = `${peer}\n${rid}`
    let assembler: PayloadAssembler
    try {
      assembler = new PayloadAssembler(descriptor, { maxBytes: this.#maxBytes })
      if (descriptor.inline != null) {
        const value = assembler.finish()
        this.stats.bytesIn += descriptor.size
        return Promise.resolve(value)
      }
      if (assembler.complete) return Promise.resolve(assembler.finish())
    } catch (err) {
      if (err instanceof PayloadIntegrityError) this.stats.integrityErrors++
      return Promise.reject(err)
    }
    const previous = this.#receiving.get(key)
    if (previous != null) this.#fail(key, previous, new PayloadAbortedError('a new transfer replaced this one'))
    const { promise, resolve, reject } = Promise.withResolvers<unknown>()
    const r: Receiving = { assembler, resolve, reject, onProgress: opts.onProgress }
    this.#receiving.set(key, r)
    const signal = opts.signal
    if (signal != null) {
      const onAbort = (): void => {
        this.#fail(key, r, new PayloadAbortedError(undefined, { cause: signal.reason }))
      }
      if (signal.aborted) onAbort()
      else {
        signal.addEventListener('abort', onAbort, { once: true })
        void promise.then(
          () => signal.removeEventListener('abort', onAbort),
          () => signal.removeEventListener('abort', onAbort)
        )
      }
    }
    return promise
  }

  #fail(key: string, r: Receiving, err: Error): void {
    if (this.#receiving.get(key) !== r) return
    this.#receiving.delete(key)
    if (err instanceof PayloadIntegrityError) this.stats.integrityErrors++
    else if (err instanceof PayloadAbortedError) this.stats.aborted++
    r.reject(err)
  }

  #onChunk(from: string, m: TaskMessageOf<'chunk'>): void {
    const key = `${from}\n${m.rid}`
    const r = this.#receiving.get(key)
    if (r == null) return
    try {
      if (!r.assembler.push(m)) return
      this.stats.chunksIn++
      const total = r.assembler.descriptor.size
      this.stats.bytesIn += Math.min(PAYLOAD_CHUNK_BYTES, total - m.index * PAYLOAD_CHUNK_BYTES)
      r.onProgress?.({ bytes: r.assembler.received, totalBytes: total })
      if (!r.assembler.complete) return
      this.#receiving.delete(key)
      r.resolve(r.assembler.finish())
    } catch (err) {
      this.#receiving.set(key, r)
      this.#fail(key, r, err instanceof PayloadError ? err : new PayloadIntegrityError(String(err), { cause: err }))
    }
  }
}
