import { describe, expect, it } from 'vitest'
import * as v from 'valibot'
import { streamPair } from '@libp2p/utils'
import { defineProtocol, framed } from './framing.ts'
import { FrameTooLargeError, InvalidFrameError } from './errors.ts'
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
})
