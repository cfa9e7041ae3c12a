/**
 * Versioned, length-prefixed, schema-validated, size-capped framing for the
 * project's own libp2p protocols. Each frame is a varint length followed by UTF-8
 * JSON; the JSON must match the protocol's valibot schema. Every protocol file
 * defines its messages once with `defineProtocol`, and the schema is the type.
 */
import { byteStream } from '@libp2p/utils'
import type { AbortOptions, Stream } from '@libp2p/interface'
import * as v from 'valibot'
import { FrameTimeoutError, FrameTooLargeError, InvalidFrameError, StreamEndedError } from './errors.ts'

/** Default cap on one frame: 64 KiB keeps a frame inside a few WebRTC messages. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** A protocol: a versioned id, one schema for its messages, and a frame cap. */
export interface ProtocolDefinition<S extends v.GenericSchema> {
  /** e.g. `/zerostate/task/1.0.0` */
  readonly id: string
  readonly schema: S
  readonly maxFrameBytes: number
  /** Encode a message, checking it against the schema and the cap first. */
  encode(message: v.InferInput<S>): Uint8Array
  /** Decode bytes into a validated message or throw an InvalidFrameError subclass. */
  decode(bytes: Uint8Array): v.InferOutput<S>
}

/** Define a protocol's id, message schema and frame cap in one place. */
export function defineProtocol<S extends v.GenericSchema>(id: string, schema: S, opts: { maxFrameBytes?: number } = {}): ProtocolDefinition<S> {
  if (!/^\/zerostate\/[a-z0-9-]+(\/[a-z0-9-]+)*\/\d+\.\d+\.\d+$/.test(id)) {
    throw new TypeError(`protocol id "${id}" must look like /zerostate/<name>/<major.minor.patch>`)
  }
  const maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
  return {
    id,
    schema,
    maxFrameBytes,
    encode(message) {
      const checked = v.safeParse(schema, message)
      if (!checked.success) {
        throw new InvalidFrameError(`refusing to send an invalid ${id} message: ${v.summarize(checked.issues)}`)
      }
      const bytes = encoder.encode(JSON.stringify(checked.output))
      if (bytes.byteLength > maxFrameBytes) {
        throw new FrameTooLargeError(`a ${id} message of ${bytes.byteLength} bytes exceeds the ${maxFrameBytes}-byte cap`)
      }
      return bytes
    },
    decode(bytes) {
      if (bytes.byteLength > maxFrameBytes) {
        throw new FrameTooLargeError(`a ${id} message of ${bytes.byteLength} bytes exceeds the ${maxFrameBytes}-byte cap`)
      }
      let json: unknown
      try {
        json = JSON.parse(decoder.decode(bytes))
      } catch (err) {
        throw new InvalidFrameError(`a ${id} message is not UTF-8 JSON`, { cause: err })
      }
      const checked = v.safeParse(schema, json)
      if (!checked.success) {
        throw new InvalidFrameError(`a ${id} message does not match its schema: ${v.summarize(checked.issues)}`)
      }
      return checked.output
    }
  }
}

/** A stream that reads and writes validated frames of one protocol. */
export interface FramedStream<S extends v.GenericSchema> {
  read(options?: AbortOptions): Promise<v.InferOutput<S>>
  write(message: v.InferInput<S>, options?: AbortOptions): Promise<void>
  readonly stream: Stream
}

/** Options of {@link framed}. */
export interface FramedInit {
  /**
   * Told of every invalid frame the reader meets (a length prefix that is too long or
   * too large, a body that is not UTF-8 JSON or breaks the schema, a frame that stalls)
   * just before `read` throws it: the caller's strike policy plugs in here.
   */
  onInvalid?: (err: InvalidFrameError) => void
  /**
   * Once a frame's first byte arrived, the whole frame must arrive within this many ms,
   * or `read` throws FrameTimeoutError. Waiting for a frame to begin is not limited
   * (long-lived streams idle between frames; pass a signal to bound that). Default 10 s.
   */
  frameTimeoutMs?: number
}

/** Default deadline for the rest of a frame once it began. */
export const DEFAULT_FRAME_TIMEOUT_MS = 10_000

/** Bytes of the varint that encodes `n`. */
function varintBytes(n: number): number {
  let bytes = 1
  for (let x = n; x >= 0x80; x = Math.floor(x / 0x80)) bytes++
  return bytes
}

/** `body` behind its unsigned-varint length, in one buffer (one write, frames never interleave). */
function withPrefix(body: Uint8Array): Uint8Array {
  const prefix = varintBytes(body.byteLength)
  const out = new Uint8Array(prefix + body.byteLength)
  let x = body.byteLength
  for (let i = 0; i < prefix; i++) {
    out[i] = (x % 0x80) | (i < prefix - 1 ? 0x80 : 0)
    x = Math.floor(x / 0x80)
  }
  out.set(body, prefix)
  return out
}

type ByteList = NonNullable<Awaited<ReturnType<ReturnType<typeof byteStream>['read']>>>

/**
 * Wrap a libp2p stream so it speaks `protocol`'s frames.
 *
 * The reader is ours, not `lpStream`'s: @libp2p/utils reads a varint byte by byte and
 * checks its length only once it decodes, so a prefix of 0x80 bytes that never ends
 * kept a tab busy for ~49 s and 600 MB (issue 11, item 2). Here the prefix is capped
 * as its bytes arrive: a prefix longer than the cap's own varint, or announcing more
 * than the cap, fails at once with FrameTooLargeError (after at most 4 bytes for
 * 64 KiB frames), and unread bytes are never buffered past a few frames.
 */
export function framed<S extends v.GenericSchema>(stream: Stream, protocol: ProtocolDefinition<S>, init: FramedInit = {}): FramedStream<S> {
  const maxPrefix = varintBytes(protocol.maxFrameBytes)
  const bytes = byteStream(stream, { maxBufferSize: Math.max(1024 * 1024, 4 * protocol.maxFrameBytes) })
  const frameTimeoutMs = init.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS
  const invalid = (err: InvalidFrameError): InvalidFrameError => {
    init.onInvalid?.(err)
    return err
  }
  async function readBytes(n: number, signal: AbortSignal | undefined, deadline: AbortSignal | undefined): Promise<ByteList | null> {
    const both = deadline == null ? signal : signal == null ? deadline : AbortSignal.any([signal, deadline])
    try {
      return await bytes.read({ bytes: n, signal: both })
    } catch (err) {
      if (deadline?.aborted === true && signal?.aborted !== true) {
        throw invalid(new FrameTimeoutError(`a ${protocol.id} frame did not finish within ${frameTimeoutMs} ms`, { cause: err }))
      }
      const name = (err as Error)?.name
      if (name === 'UnexpectedEOFError') throw new StreamEndedError(undefined, { cause: err })
      if (name === 'StreamBufferError') throw invalid(new FrameTooLargeError(`a ${protocol.id} peer sent more than it lets us read`, { cause: err }))
      throw err
    }
  }
  return {
    stream,
    async read(options) {
      const signal = options?.signal ?? undefined
      let length = 0
      let deadline: AbortSignal | undefined
      for (let i = 0; ; i++) {
        const b = await readBytes(1, signal, deadline)
        if (b == null) throw new StreamEndedError()
        deadline ??= AbortSignal.timeout(frameTimeoutMs)
        const byte = b.get(0)
        length += (byte & 0x7f) * 2 ** (7 * i)
        if (length > protocol.maxFrameBytes) {
          throw invalid(new FrameTooLargeError(`a ${protocol.id} frame announces more than the ${protocol.maxFrameBytes}-byte cap`))
        }
        if (byte < 0x80) break
        if (i + 1 >= maxPrefix) {
          throw invalid(new FrameTooLargeError(`a ${protocol.id} length prefix runs past ${maxPrefix} bytes`))
        }
      }
      const body = length === 0 ? new Uint8Array(0) : await readBytes(length, signal, deadline)
      if (body == null) throw new StreamEndedError()
      try {
        return protocol.decode(body instanceof Uint8Array ? body : body.subarray())
      } catch (err) {
        if (err instanceof InvalidFrameError) throw invalid(err)
        throw err
      }
    },
    async write(message, options) {
      await bytes.write(withPrefix(protocol.encode(message)), options)
    }
  }
}
