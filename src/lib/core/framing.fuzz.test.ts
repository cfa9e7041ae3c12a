/**
 * Property-based fuzzing of the framing codec (issue 11, beyond the list): whatever bytes a
 * peer sends, `decode` returns a schema-valid message or throws an InvalidFrameError, and the
 * stream reader fails with a typed error after reading at most the cap's prefix — never
 * another exception, never a hang, never an unbounded buffer.
 */
import { streamPair } from '@libp2p/utils'
import fc from 'fast-check'
import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { FrameTooLargeError, InvalidFrameError, StreamEndedError } from './errors.ts'
import { defineProtocol, framed } from './framing.ts'

const Msg = v.variant('type', [
  v.object({ type: v.literal('hello'), name: v.pipe(v.string(), v.maxLength(40)), n: v.optional(v.pipe(v.number(), v.integer())) }),
  v.object({ type: v.literal('list'), items: v.pipe(v.array(v.string()), v.maxLength(8)) }),
  v.object({ type: v.literal('bye') })
])
const proto = defineProtocol('/zerostate/fuzz/1.0.0', Msg, { maxFrameBytes: 512 })
const enc = new TextEncoder()

/** Run `fn`; it must return or throw an instance of one of `allowed`. */
function onlyTyped(fn: () => unknown, allowed: Array<abstract new (...a: never[]) => Error>): void {
  try {
    fn()
  } catch (err) {
    if (!allowed.some((E) => err instanceof E)) throw new Error(`untyped ${(err as Error)?.name}: ${(err as Error)?.message}`)
  }
}

/** A JSON text that is nearly a message: valid ones, mutated ones, and arbitrary JSON. */
const nearMessage = fc.oneof(
  fc.record({ type: fc.constant('hello'), name: fc.string({ maxLength: 60 }), n: fc.option(fc.oneof(fc.integer(), fc.double()), { nil: undefined }) }),
  fc.record({ type: fc.constant('list'), items: fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 12 }) }),
  fc.record({ type: fc.constantFrom('bye', 'hello', 'list', 'nope', '__proto__', 'constructor') }),
  fc.jsonValue({ maxDepth: 6 })
)

describe('framing codec under fuzzing', () => {
  it('decode: any bytes give a schema-valid message or an InvalidFrameError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1024 }), (bytes) => {
        onlyTyped(() => {
          const m = proto.decode(bytes)
          expect(v.safeParse(Msg, m).success).toBe(true)
        }, [InvalidFrameError])
      }),
      { numRuns: 1000 }
    )
  })

  it('decode: any JSON near a message gives a schema-valid message or an InvalidFrameError; oversized is FrameTooLargeError', () => {
    fc.assert(
      fc.property(nearMessage, (value) => {
        const bytes = enc.encode(JSON.stringify(value))
        try {
          const m = proto.decode(bytes)
          expect(v.safeParse(Msg, m).success).toBe(true)
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidFrameError)
          if (bytes.byteLength > proto.maxFrameBytes) expect(err).toBeInstanceOf(FrameTooLargeError)
        }
      }),
      { numRuns: 1000 }
    )
  })

  it('encode then decode gives back every valid message (as JSON carries it)', () => {
    fc.assert(
      fc.property(nearMessage, (value) => {
        const parsed = v.safeParse(Msg, value)
        fc.pre(parsed.success)
        let bytes: Uint8Array
        try {
          bytes = proto.encode(parsed.output as v.InferInput<typeof Msg>)
        } catch (err) {
          expect(err).toBeInstanceOf(FrameTooLargeError)
          return
        }
        // JSON is the wire: what survives it (no -0, no undefined fields) must come back.
        expect(proto.decode(bytes)).toEqual(JSON.parse(JSON.stringify(parsed.output)))
      }),
      { numRuns: 1000 }
    )
  })

  it('the stream reader: any byte sequence ends in messages then a typed error, within the frame deadline, reading only what it may', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.uint8Array({ minLength: 1, maxLength: 64 }),
            // a valid frame
            nearMessage.map((m) => {
              const body = enc.encode(JSON.stringify(m))
              return Uint8Array.from([...varint(body.byteLength), ...body])
            }),
            // a prefix bomb: continuation bytes that never end
            fc.integer({ min: 1, max: 4096 }).map((n) => new Uint8Array(n).fill(0x80))
          ),
          { maxLength: 6 }
        ),
        async (parts) => {
          const [a, b] = await streamPair()
          const reader = framed(b, proto, { frameTimeoutMs: 200 })
          for (const p of parts) a.send(p)
          await a.close()
          let messages = 0
          for (;;) {
            try {
              expect(v.safeParse(Msg, await reader.read()).success).toBe(true)
              messages++
            } catch (err) {
              expect(err instanceof InvalidFrameError || err instanceof StreamEndedError).toBe(true)
              break
            }
            expect(messages).toBeLessThanOrEqual(parts.length)
          }
          b.abort(new Error('done'))
        }
      ),
      { numRuns: 150 }
    )
  })

  it('a prefix of continuation bytes fails after at most the cap varint, whatever follows', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 3, max: 100_000 }), async (n) => {
        const [a, b] = await streamPair()
        const reader = framed(b, proto, { frameTimeoutMs: 200 })
        a.send(new Uint8Array(n).fill(0x80))
        await expect(reader.read()).rejects.toBeInstanceOf(FrameTooLargeError)
        a.abort(new Error('done'))
        b.abort(new Error('done'))
      }),
      { numRuns: 30 }
    )
  })
})

function varint(n: number): number[] {
  const out: number[] = []
  let x = n
  while (x >= 0x80) {
    out.push((x % 0x80) | 0x80)
    x = Math.floor(x / 0x80)
  }
  out.push(x)
  return out
}
