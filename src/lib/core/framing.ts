/**
 * Versioned, length-prefixed, schema-validated, size-capped framing for the
 * project's own libp2p protocols. Each frame is a varint length followed by UTF-8
 * JSON; the JSON must match the protocol's valibot schema. Every protocol file
 * defines its messages once with `defineProtocol`, and the schema is the type.
 */
import { lpStream } from '@libp2p/utils'
import type { AbortOptions, Stream } from '@libp2p/interface'
import * as v from 'valibot'
import { FrameTooLargeError, InvalidFrameError, StreamEndedError } from './errors.ts'

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

/** Wrap a libp2p stream so it speaks `protocol`'s frames. */
export function framed<S extends v.GenericSchema>(stream: Stream, protocol: ProtocolDefinition<S>): FramedStream<S> {
  const lp = lpStream(stream, { maxDataLength: protocol.maxFrameBytes })
  return {
    stream,
    async read(options) {
      let list: Awaited<ReturnType<typeof lp.read>>
      try {
        list = await lp.read(options)
      } catch (err) {
        const name = (err as Error)?.name
        if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError') {
          throw new FrameTooLargeError(undefined, { cause: err })
        }
        if (name === 'UnexpectedEOFError') throw new StreamEndedError(undefined, { cause: err })
        throw err
      }
      return protocol.decode(list.subarray())
    },
    async write(message, options) {
      await lp.write(protocol.encode(message), options)
    }
  }
}
