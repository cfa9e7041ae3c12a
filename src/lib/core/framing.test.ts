import { describe, expect, it } from 'vitest'
import * as v from 'valibot'
import { streamPair } from '@libp2p/utils'
import { defineProtocol, framed } from './framing.ts'
import { FrameTimeoutError, FrameTooLargeError, InvalidFrameError, StreamEndedError } from './errors.ts'
import { lpStream } from '@libp2p/utils'

const Hello = v.variant('type', [v.object({ type: v.literal('hello'), name: v.pipe(v.string(), v.maxLength(20)) }), v.object({ type: v.literal('bye') })])
const proto = defineProtocol('/zerostate/test/1.0.0', Hello, { maxFrameBytes: 100 })

describe('framing', () => {
  it('rejects protocol ids without a version', () => {
    expect(() => defineProtocol('/zerostate/test', Hello)).toThrow(/major.minor.patch/)
  })

  it('round-trips valid messages over a real stream pair', async () => {
    const [a, b] = await streamPair()
    const fa = framed(a, proto)
    const fb = framed(b, proto)
    await fa.write({ type: 'hello', name: 'ada' })
    await fa.write({ type: 'bye' })
    expect(await fb.read()).toEqual({ type: 'hello', name: 'ada' })
    expect(await fb.read()).toEqual({ type: 'bye' })
  })

  it('refuses to send a message that breaks its own schema', () => {
    expect(() => proto.encode({ type: 'hello', name: 'x'.repeat(50) })).toThrow(InvalidFrameError)
  })

  it('names the problem in a malformed frame', () => {
    const bytes = new TextEncoder().encode(JSON.stringify({ type: 'hello', name: 42 }))
    expect(() => proto.decode(bytes)).toThrow(/does not match its schema/)
    expect(() => proto.decode(new Uint8Array([0xff, 0xfe]))).toThrow(/not UTF-8 JSON/)
    expect(() => proto.decode(new TextEncoder().encode('{"type":"nope"}'))).toThrow(InvalidFrameError)
  })

  it('rejects an oversized frame before reading its body', async () => {
    const [a, b] = await streamPair()
    const raw = lpStream(a)
    await raw.write(new Uint8Array(500).fill(0x20))
    await expect(framed(b, proto).read()).rejects.toBeInstanceOf(FrameTooLargeError)
  })

  it('keeps the wire format: lpStream frames in, lpStream frames out', async () => {
    const [a, b] = await streamPair()
    await lpStream(a).write(proto.encode({ type: 'hello', name: 'lp' }))
    const fb = framed(b, proto)
    expect(await fb.read()).toEqual({ type: 'hello', name: 'lp' })
    const big = defineProtocol('/zerostate/test/1.0.0', v.object({ type: v.literal('x'), s: v.string() }), { maxFrameBytes: 1 << 20 })
    await framed(b, big).write({ type: 'x', s: 'y'.repeat(300) })
    expect(JSON.parse(new TextDecoder().decode((await lpStream(a).read()).subarray())).s).toHaveLength(300)
  })

  it('caps a length prefix that never ends as its bytes arrive (issue 11: 0x80 bomb)', async () => {
    const [a, b] = await streamPair()
    const seen: Error[] = []
    const fb = framed(b, proto, { onInvalid: (e) => seen.push(e) })
    // 64 KiB of continuation bytes: lpStream read them one by one without limit.
    a.send(new Uint8Array(64 * 1024).fill(0x80))
    const t0 = performance.now()
    const err = await fb.read().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(FrameTooLargeError)
    expect((err as Error).message).toMatch(/length prefix runs past 1 bytes|announces more/)
    expect(performance.now() - t0).toBeLessThan(200)
    expect(seen).toEqual([err])
  })

  it('refuses a prefix that runs past the cap before reading on (big cap: 3-byte prefix)', async () => {
    const big = defineProtocol('/zerostate/test/1.0.0', Hello, { maxFrameBytes: 64 * 1024 })
    const [a, b] = await streamPair()
    a.send(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80]))
    await expect(framed(b, big).read()).rejects.toThrow(/runs past 3 bytes/)
    const [c, d] = await streamPair()
    // 0x80 0x80 0x08 = 131072 > 64 KiB: refused on the third byte, before any body byte.
    c.send(new Uint8Array([0x80, 0x80, 0x08]))
    await expect(framed(d, big).read()).rejects.toThrow(/announces more than the 65536-byte cap/)
  })

  it('times out a frame that begins and stalls, but not an idle stream between frames', async () => {
    const [a, b] = await streamPair()
    const seen: Error[] = []
    const fb = framed(b, proto, { frameTimeoutMs: 40, onInvalid: (e) => seen.push(e) })
    // Idle for longer than the frame deadline, then a whole frame: fine.
    const idle = fb.read()
    await new Promise((r) => setTimeout(r, 100))
    await framed(a, proto).write({ type: 'bye' })
    expect(await idle).toEqual({ type: 'bye' })
    // Half a frame (prefix says 20 bytes, 3 arrive), then nothing.
    a.send(new Uint8Array([20, 0x7b, 0x22, 0x74]))
    const err = await fb.read().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(FrameTimeoutError)
    expect(err).toBeInstanceOf(InvalidFrameError)
    expect(seen).toEqual([err])
  })

  it('tells the hook about schema failures, not about a stream that just ends', async () => {
    const [a, b] = await streamPair()
    const seen: Error[] = []
    const fb = framed(b, proto, { onInvalid: (e) => seen.push(e) })
    await lpStream(a).write(new TextEncoder().encode('{"type":"nope"}'))
    await expect(fb.read()).rejects.toBeInstanceOf(InvalidFrameError)
    expect(seen).toHaveLength(1)
    await a.close()
    await expect(fb.read()).rejects.toBeInstanceOf(StreamEndedError)
    expect(seen).toHaveLength(1)
  })
})
