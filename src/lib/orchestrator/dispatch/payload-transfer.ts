/**
 * Large inputs, outputs and agent modules over any `TaskTransport`: the core
 * payload scheme (`core/payload.ts`) with `chunk` messages of the task protocol,
 * matched to their transfer by (peer, rid), with `chunk-ack` flow control (a
 * window of chunks in flight). One subscription serves every transfer of its
 * owner; chunks and acks of transfers it does not know are left to others.
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
  taken: number
}

interface Sending {
  acked: number
  wake?: () => void
}

/** Chunks a sender may have unacknowledged (16 × 45 KiB = 720 KiB in flight per transfer). */
export const PAYLOAD_WINDOW_CHUNKS = 16
/** The receiver acknowledges every this many chunks (and the last one). */
export const PAYLOAD_ACK_EVERY = 4
/** A sender waiting this long for an acknowledgement gives up (PayloadAbortedError). */
export const PAYLOAD_ACK_TIMEOUT_MS = 15_000

/** Sends and receives payloads over a task transport. */
export class TaskPayloads {
  readonly #transport: TaskTransport
  readonly #maxBytes: number | undefined
  readonly #receiving = new Map<string, Receiving>()
  readonly #sending = new Map<string, Sending>()
  #offs: Array<() => void> = []
  /** Counters: chunksIn, chunksOut, bytesIn, bytesOut, integrityErrors (lies about size or hash), aborted. */
  readonly stats = { chunksIn: 0, chunksOut: 0, bytesIn: 0, bytesOut: 0, integrityErrors: 0, aborted: 0 }

  /** The counters as `metrics()` names them (the dispatcher's and the donor's stats both carry them). */
  metrics(): Record<'payloadChunksIn' | 'payloadChunksOut' | 'payloadBytesIn' | 'payloadBytesOut' | 'payloadIntegrityErrors', number> {
    return {
      payloadChunksIn: this.stats.chunksIn,
      payloadChunksOut: this.stats.chunksOut,
      payloadBytesIn: this.stats.bytesIn,
      payloadBytesOut: this.stats.bytesOut,
      payloadIntegrityErrors: this.stats.integrityErrors
    }
  }

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
        else if (m.type === 'chunk-ack') {
          const s = this.#sending.get(`${from}\n${m.rid}`)
          if (s != null && m.next > s.acked) {
            s.acked = m.next
            s.wake?.()
          }
        }
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
    const key = `${peer}\n${rid}`
    const state: Sending = { acked: 0 }
    this.#sending.set(key, state)
    try {
      await sendPayloadChunks(
        bytes,
        async (chunk) => {
          // Flow control: wait while the window beyond the receiver's last acknowledgement is full.
          while (chunk.index - state.acked >= PAYLOAD_WINDOW_CHUNKS) await this.#ack(state, opts.signal)
          await this.#transport.send(peer, { type: 'chunk', rid, ...chunk }, { signal: opts.signal })
          this.stats.chunksOut++
          this.stats.bytesOut += Math.min(PAYLOAD_CHUNK_BYTES, bytes.byteLength - chunk.index * PAYLOAD_CHUNK_BYTES)
        },
        opts
      )
    } catch (err) {
      if (opts.signal?.aborted === true || err instanceof PayloadAbortedError) {
        this.stats.aborted++
        throw err instanceof PayloadAbortedError ? err : new PayloadAbortedError(undefined, { cause: err })
      }
      throw err
    } finally {
      if (this.#sending.get(key) === state) this.#sending.delete(key)
    }
  }

  /** Wait for the next acknowledgement (or the signal, or the ack timeout). */
  async #ack(state: Sending, signal?: AbortSignal): Promise<void> {
    if (this.#offs.length === 0) throw new PayloadAbortedError('payload transfers are stopped: no acknowledgement can arrive')
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    const timer = setTimeout(() => {
      reject(new PayloadAbortedError(`the receiver acknowledged nothing for ${PAYLOAD_ACK_TIMEOUT_MS} ms`))
    }, PAYLOAD_ACK_TIMEOUT_MS)
    const onAbort = (): void => {
      reject(new PayloadAbortedError(undefined, { cause: signal?.reason }))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    if (signal?.aborted === true) onAbort()
    state.wake = resolve
    try {
      await promise
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      state.wake = undefined
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
    } catch (err) {
      if (err instanceof PayloadIntegrityError) this.stats.integrityErrors++
      return Promise.reject(err)
    }
    if (descriptor.inline != null || assembler.complete) {
      return assembler.finish().then(
        (value) => {
          if (descriptor.inline != null) this.stats.bytesIn += descriptor.size
          return value
        },
        (err: unknown) => {
          if (err instanceof PayloadIntegrityError) this.stats.integrityErrors++
          throw err
        }
      )
    }
    const previous = this.#receiving.get(key)
    if (previous != null) this.#fail(key, previous, new PayloadAbortedError('a new transfer replaced this one'))
    const { promise, resolve, reject } = Promise.withResolvers<unknown>()
    const r: Receiving = { assembler, resolve, reject, onProgress: opts.onProgress, taken: 0 }
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
      r.taken++
      if (r.taken % PAYLOAD_ACK_EVERY === 0 || r.assembler.complete) {
        this.#transport.send(from, { type: 'chunk-ack', rid: m.rid, next: r.taken }).catch(() => {})
      }
      const total = r.assembler.descriptor.size
      this.stats.bytesIn += Math.min(PAYLOAD_CHUNK_BYTES, total - m.index * PAYLOAD_CHUNK_BYTES)
      r.onProgress?.({ bytes: r.assembler.received, totalBytes: total })
      if (!r.assembler.complete) return
      // Hashed off the main thread (WebCrypto); the transfer stays registered until it is checked.
      r.assembler.finish().then(
        (value) => {
          if (this.#receiving.get(key) !== r) return
          this.#receiving.delete(key)
          r.resolve(value)
        },
        (err: unknown) => this.#fail(key, r, err instanceof PayloadError ? err : new PayloadIntegrityError(String(err), { cause: err }))
      )
    } catch (err) {
      this.#receiving.set(key, r)
      this.#fail(key, r, err instanceof PayloadError ? err : new PayloadIntegrityError(String(err), { cause: err }))
    }
  }
}
