/** One conformance suite every `TaskTransport` implementation runs (automerge-repo style). */
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  FrameTooLargeError,
  InvalidFrameError,
  PAYLOAD_CHUNK_BYTES,
  PayloadAbortedError,
  PayloadIntegrityError,
  PayloadTooLargeError,
  describePayload,
  encodePayload,
  type PayloadProgress
} from '../../core/index.ts'
import { PeerUnavailableError } from '../errors.ts'
import { PAYLOAD_WINDOW_CHUNKS, TaskPayloads } from './payload-transfer.ts'
import { TASK_MAX_FRAME_BYTES, type TaskMessage } from './task-protocol.ts'
import type { TaskTransport } from './task-transport.ts'

/** Two connected transports, and a way to make `b` disappear. */
export interface TransportPair {
  a: TaskTransport
  b: TaskTransport
  killB(): Promise<void> | void
  teardown(): Promise<void>
}

const next = (t: TaskTransport, n = 1, filter: (m: TaskMessage) => boolean = () => true): Promise<Array<[string, TaskMessage]>> =>
  new Promise((resolve) => {
    const got: Array<[string, TaskMessage]> = []
    const off = t.onMessage((from, m) => {
      if (!filter(m)) return
      got.push([from, m])
      if (got.length === n) {
        off()
        resolve(got)
      }
    })
  })

const MB2 = 2 * 1024 * 1024

/** Bytes that are not UTF-8 (every byte value, in a pattern that is not periodic in chunk size). */
function binary(n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 7 + (i >>> 11)) & 0xff
  return out
}

/** Run the suite against `setup`. */
export function runTaskTransportConformance(name: string, setup: () => Promise<TransportPair>): void {
  describe(`TaskTransport conformance: ${name}`, () => {
    let current: TransportPair | undefined
    const cleanups: Array<() => void> = []
    const pair = async (): Promise<TransportPair> => {
      current = await setup()
      return current
    }
    /** Payload endpoints on both transports, stopped after the test. */
    const payloadsOf = (p: TransportPair): { pa: TaskPayloads; pb: TaskPayloads } => {
      const pa = new TaskPayloads(p.a)
      const pb = new TaskPayloads(p.b)
      pa.start()
      pb.start()
      cleanups.push(
        () => pa.stop(),
        () => pb.stop()
      )
      return { pa, pb }
    }
    afterEach(async () => {
      for (const c of cleanups.splice(0)) c()
      await current?.teardown()
      current = undefined
    })

    it('delivers messages both ways, in order, with the sender id', async () => {
      const p = await pair()
      const atB = next(p.b, 3)
      for (let i = 1; i <= 3; i++) await p.a.send(p.b.self, { type: 'lease-renew', rid: `r${i}`, leaseMs: i })
      expect((await atB).map(([from, m]) => [from, m.rid])).toEqual([
        [p.a.self, 'r1'],
        [p.a.self, 'r2'],
        [p.a.self, 'r3']
      ])
      const atA = next(p.a)
      await p.b.send(p.a.self, { type: 'accept', rid: 'r1', leaseMs: 5 })
      expect((await atA)[0]).toEqual([p.b.self, { type: 'accept', rid: 'r1', leaseMs: 5 }])
    })

    it('refuses an invalid message with InvalidFrameError and one over the frame cap with FrameTooLargeError', async () => {
      const p = await pair()
      const invalid = p.a.send(p.b.self, { type: 'accept', rid: 'bad rid with spaces', leaseMs: 1 } as TaskMessage)
      await expect(invalid).rejects.toBeInstanceOf(InvalidFrameError)
      await expect(invalid).rejects.not.toBeInstanceOf(FrameTooLargeError)
      const big = { type: 'result', rid: 'big', output: 'x'.repeat(TASK_MAX_FRAME_BYTES), ms: 1 } as const
      await expect(p.a.send(p.b.self, big)).rejects.toBeInstanceOf(FrameTooLargeError)
      // The stream survives a refused message.
      const atB = next(p.b)
      await p.a.send(p.b.self, { type: 'cancel', rid: 'after' })
      expect((await atB)[0][1].rid).toBe('after')
    })

    it('survives a throwing handler and reports a closed peer; sending to it then is PeerUnavailableError', async () => {
      const p = await pair()
      p.b.onMessage(() => {
        throw new Error('listener bug')
      })
      const ok = next(p.b)
      const closed = new Promise<string>((resolve) => {
        p.a.onPeerClosed(resolve)
      })
      await p.a.send(p.b.self, { type: 'cancel', rid: 'c1' })
      expect((await ok)[0][1].rid).toBe('c1')
      await p.killB()
      expect(await closed).toBe(p.b.self)
      await expect(p.a.send(p.b.self, { type: 'cancel', rid: 'c2' })).rejects.toBeInstanceOf(PeerUnavailableError)
    })

    it('carries a 2 MB JSON input one way and a 2 MB binary output back, in frames under the cap, with progress', async () => {
      const p = await pair()
      const { pa, pb } = payloadsOf(p)
      const frames: number[] = []
      p.b.onMessage((_from, m) => {
        if (m.type === 'chunk') frames.push(JSON.stringify(m).length)
      })
      const input = { text: 'zé '.repeat(MB2 / 3), n: 42 }
      const inEncoded = encodePayload(input)
      expect(inEncoded.bytes.byteLength).toBeGreaterThan(MB2)
      const inDesc = describePayload(inEncoded)
      const progress: PayloadProgress[] = []
      const gotIn = pb.receive(p.a.self, 'task#1', inDesc, { onProgress: (e) => progress.push(e) })
      await pa.send(p.b.self, 'task#1', inEncoded.bytes)
      expect(await gotIn).toEqual(input)
      expect(frames).toHaveLength(Math.ceil(inEncoded.bytes.byteLength / PAYLOAD_CHUNK_BYTES))
      expect(Math.max(...frames)).toBeLessThan(TASK_MAX_FRAME_BYTES)
      expect(progress.at(-1)).toEqual({ bytes: inEncoded.bytes.byteLength, totalBytes: inEncoded.bytes.byteLength })
      expect(progress.every((e, i) => i === 0 || e.bytes > progress[i - 1].bytes)).toBe(true)

      const output = binary(MB2)
      const outDesc = describePayload(encodePayload(output))
      expect(outDesc.kind).toBe('bytes')
      const gotOut = pa.receive(p.b.self, 'task#1', outDesc)
      await pb.send(p.a.self, 'task#1', output)
      const back = await gotOut
      expect(back).toBeInstanceOf(Uint8Array)
      // (vitest's toEqual walks 2 M elements one by one: compare as buffers.)
      expect(Buffer.compare(back as Uint8Array, output)).toBe(0)
      expect(pa.stats.bytesIn).toBe(MB2)
      expect(pb.stats.bytesOut).toBe(MB2)
    })

    it('a small binary payload travels inline in its descriptor and comes back as the same bytes', async () => {
      const p = await pair()
      const { pb } = payloadsOf(p)
      const bytes = new Uint8Array([0, 255, 0xc3, 0x28, 10, 13, 0])
      const d = describePayload(encodePayload(bytes))
      expect(d.inline).toBeDefined()
      const atB = next(p.b)
      await p.a.send(p.b.self, { type: 'result', rid: 'small', payload: d, ms: 1 })
      const [[from, m]] = await atB
      expect(m.type === 'result' && m.payload != null).toBe(true)
      if (m.type !== 'result' || m.payload == null) return
      expect(await pb.receive(from, m.rid, m.payload)).toEqual(bytes)
    })

    it('a corrupted chunk, or a peer lying about size or hash, is a counted PayloadIntegrityError', async () => {
      const p = await pair()
      const { pb } = payloadsOf(p)
      const bytes = binary(200_000)
      const d = describePayload(encodePayload(bytes))
      const chunks: TaskMessage[] = []
      for (let i = 0; i * PAYLOAD_CHUNK_BYTES < bytes.byteLength; i++) {
        const data = Buffer.from(bytes.subarray(i * PAYLOAD_CHUNK_BYTES, (i + 1) * PAYLOAD_CHUNK_BYTES)).toString('base64')
        chunks.push({ type: 'chunk', rid: 'corrupt', index: i, data: i === 2 ? `AAAA${data.slice(4)}` : data })
      }
      const got = pb.receive(p.a.self, 'corrupt', d)
      for (const c of chunks) await p.a.send(p.b.self, c)
      await expect(got).rejects.toBeInstanceOf(PayloadIntegrityError)
      await expect(got).rejects.toThrow(/sha-256/)
      expect(pb.stats.integrityErrors).toBe(1)

      // Announces 3 chunks' worth but sends a short last chunk.
      const short = pb.receive(p.a.self, 'short', { ...d, size: d.size + 1 })
      for (const c of chunks) await p.a.send(p.b.self, { ...c, rid: 'short' })
      await expect(short).rejects.toThrow(/bytes, not/)
      expect(pb.stats.integrityErrors).toBe(2)

      // Announces more than the receiver accepts: refused before any chunk.
      const huge = new TaskPayloads(p.b, { maxBytes: 1000 })
      await expect(huge.receive(p.a.self, 'huge', d)).rejects.toBeInstanceOf(PayloadTooLargeError)
      expect(huge.stats.integrityErrors).toBe(1)
      expect(pb.receiving).toBe(0)
    })

    it('an aborted transfer rejects both ends with PayloadAbortedError and leaves nothing behind', async () => {
      const p = await pair()
      const { pa, pb } = payloadsOf(p)
      const bytes = binary(MB2)
      const d = describePayload(encodePayload(bytes))
      const receiverStop = new AbortController()
      const got = pb.receive(p.a.self, 'abort', d, { signal: receiverStop.signal })
      const senderStop = new AbortController()
      const sent = pa.send(p.b.self, 'abort', bytes, {
        signal: senderStop.signal,
        onProgress: (e) => {
          if (e.bytes >= 4 * PAYLOAD_CHUNK_BYTES) senderStop.abort()
        }
      })
      await expect(sent).rejects.toBeInstanceOf(PayloadAbortedError)
      expect(pa.stats.chunksOut).toBeLessThan(Math.ceil(MB2 / PAYLOAD_CHUNK_BYTES))
      receiverStop.abort()
      await expect(got).rejects.toBeInstanceOf(PayloadAbortedError)
      expect(pb.receiving).toBe(0)
      expect(pb.stats.aborted).toBe(1)
    })

    it('a receiver whose peer closes mid-transfer rejects with PayloadAbortedError', async () => {
      const p = await pair()
      const { pa } = payloadsOf(p)
      const d = describePayload(encodePayload(binary(MB2)))
      // The descriptor came from b, so a stream to it is open.
      const atA = next(p.a)
      await p.b.send(p.a.self, { type: 'result', rid: 'gone', payload: d, ms: 1 })
      await atA
      const got = pa.receive(p.b.self, 'gone', d)
      await p.killB()
      await expect(got).rejects.toBeInstanceOf(PayloadAbortedError)
    })

    it('flow control: a sender keeps at most a window of chunks unacknowledged', async () => {
      const p = await pair()
      const pa = new TaskPayloads(p.a)
      pa.start()
      cleanups.push(() => pa.stop())
      // Nobody on b acknowledges: the sender stops after one window.
      const seen: number[] = []
      p.b.onMessage((_from, m) => {
        if (m.type === 'chunk') seen.push(m.index)
      })
      const stop = new AbortController()
      const sent = pa.send(p.b.self, 'unacked', binary(MB2), { signal: stop.signal })
      await vi.waitFor(() => {
        expect(seen).toHaveLength(PAYLOAD_WINDOW_CHUNKS)
      })
      // Acknowledging 4 chunks lets exactly 4 more go.
      await p.b.send(p.a.self, { type: 'chunk-ack', rid: 'unacked', next: 4 })
      await vi.waitFor(() => {
        expect(seen).toHaveLength(PAYLOAD_WINDOW_CHUNKS + 4)
      })
      stop.abort()
      await expect(sent).rejects.toBeInstanceOf(PayloadAbortedError)
      expect(seen).toEqual([...Array(PAYLOAD_WINDOW_CHUNKS + 4).keys()])
    })

    it('a large payload does not starve other messages on the same stream', async () => {
      const p = await pair()
      const { pa, pb } = payloadsOf(p)
      const bytes = binary(MB2)
      const d = describePayload(encodePayload(bytes))
      const order: string[] = []
      p.b.onMessage((_from, m) => {
        order.push(m.type === 'chunk' ? `chunk${m.index}` : m.type)
      })
      const got = pb.receive(p.a.self, 'big', d)
      let small: Promise<void> | undefined
      await pa.send(p.b.self, 'big', bytes, {
        onProgress: (e) => {
          if (e.bytes === 2 * PAYLOAD_CHUNK_BYTES) small = p.a.send(p.b.self, { type: 'lease-renew', rid: 'small', leaseMs: 1 })
        }
      })
      await small
      await got
      const last = `chunk${Math.ceil(MB2 / PAYLOAD_CHUNK_BYTES) - 1}`
      expect(order.indexOf('lease-renew')).toBeGreaterThan(-1)
      expect(order.indexOf('lease-renew')).toBeLessThan(order.indexOf(last))
      // It went out within a chunk or two of being sent, not after the whole payload.
      expect(order.indexOf('lease-renew')).toBeLessThanOrEqual(4)
    })
  })
}
