/**
 * Property-based fuzzing of chunked payloads (issue 11, beyond the list): whatever a peer
 * announces and sends, the assembler yields the announced value or a PayloadError subclass;
 * it never holds more than what arrived (announcing 32 MiB costs nothing until sent), and a
 * transfer announced but never finished is given up after `stallMs` (PayloadStalledError).
 */
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  PAYLOAD_CHUNK_BYTES,
  PAYLOAD_CHUNK_CHARS,
  PayloadAssembler,
  PayloadError,
  PayloadIntegrityError,
  PayloadStalledError,
  PayloadTooLargeError,
  describePayload,
  encodePayload,
  fromBase64,
  payloadChunks
} from './payload.ts'

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/)
const base64 = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64'))

/** A descriptor as the schema lets it through, with any size, hash and inline text. */
const descriptor = fc.record(
  {
    kind: fc.constantFrom('json', 'bytes'),
    size: fc.oneof(fc.nat({ max: 4 * PAYLOAD_CHUNK_BYTES }), fc.nat({ max: 64 * 1024 * 1024 })),
    sha256: hex64,
    inline: base64
  },
  { requiredKeys: ['kind', 'size', 'sha256'] }
) as fc.Arbitrary<{ kind: 'json' | 'bytes'; size: number; sha256: string; inline?: string }>

const chunk = fc.record({
  index: fc.oneof(fc.nat({ max: 5 }), fc.nat()),
  data: fc.oneof(
    base64,
    fc.string({ maxLength: 50 }),
    fc.nat({ max: PAYLOAD_CHUNK_BYTES }).map((n) => Buffer.alloc(n, 7).toString('base64'))
  )
})

function typed(err: unknown): void {
  if (!(err instanceof PayloadError)) throw new Error(`untyped ${(err as Error)?.name}: ${(err as Error)?.message}`)
}

describe('payload assembler under fuzzing', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('any descriptor and chunks: a value or a PayloadError, never more bytes held than received', async () => {
    await fc.assert(
      fc.asyncProperty(descriptor, fc.array(chunk, { maxLength: 8 }), fc.boolean(), async (d, chunks, finishEarly) => {
        let a: PayloadAssembler
        try {
          a = new PayloadAssembler(d, { maxBytes: 32 * 1024 * 1024 })
        } catch (err) {
          expect(err).toBeInstanceOf(PayloadTooLargeError)
          expect(d.size).toBeGreaterThan(32 * 1024 * 1024)
          return
        }
        expect(a.buffered).toBe(0)
        for (const c of chunks) {
          try {
            a.push(c)
          } catch (err) {
            typed(err)
          }
          expect(a.buffered).toBeLessThanOrEqual(a.received)
          expect(a.received).toBeLessThanOrEqual(d.size)
          if (finishEarly) break
        }
        await a.finish().catch(typed)
        a.abort()
        expect(a.buffered).toBe(0)
      }),
      { numRuns: 1500 }
    )
  })

  it('a real payload comes back whole; any one corrupted or dropped chunk is a PayloadIntegrityError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ maxLength: 3 * PAYLOAD_CHUNK_BYTES + 10 }), fc.jsonValue({ maxDepth: 4 })),
        fc.nat(),
        fc.constantFrom('none', 'flip', 'drop', 'swap'),
        async (value, which, how) => {
          const enc = encodePayload(value)
          const d = describePayload(enc)
          const a = new PayloadAssembler(d)
          const chunks = d.inline == null ? [...payloadChunks(enc.bytes)] : []
          if (chunks.length === 0 || how === 'none') {
            for (const c of chunks) a.push(c)
            expect(await a.finish()).toEqual(d.kind === 'bytes' ? enc.bytes : JSON.parse(JSON.stringify(value ?? null)))
            return
          }
          const i = which % chunks.length
          if (how === 'drop') chunks.splice(i, 1)
          else if (how === 'swap' && chunks.length > 1) [chunks[0], chunks[1]] = [chunks[1] as (typeof chunks)[0], chunks[0] as (typeof chunks)[0]]
          else {
            const bytes = fromBase64((chunks[i] as (typeof chunks)[0]).data)
            bytes[which % bytes.byteLength] ^= 1
            chunks[i] = { index: i, data: Buffer.from(bytes).toString('base64') }
          }
          let failed: unknown
          try {
            for (const c of chunks) a.push(c)
            await a.finish()
          } catch (err) {
            failed = err
          }
          if (how === 'swap' && chunks.length <= 1) return
          expect(failed).toBeInstanceOf(PayloadIntegrityError)
        }
      ),
      { numRuns: 300 }
    )
  })

  it('announced and never sent: nothing is held, and after stallMs a PayloadStalledError (told once, then thrown)', async () => {
    vi.useFakeTimers()
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2 * PAYLOAD_CHUNK_BYTES, max: 32 * 1024 * 1024 }), fc.nat({ max: 1 }), async (size, sent) => {
        const stalls: PayloadStalledError[] = []
        const a = new PayloadAssembler(
          { kind: 'bytes', size, sha256: '0'.repeat(64) },
          { maxBytes: 32 * 1024 * 1024, stallMs: 1000, onStall: (e) => stalls.push(e) }
        )
        for (let i = 0; i < sent; i++) a.push({ index: i, data: Buffer.alloc(PAYLOAD_CHUNK_BYTES).toString('base64') })
        expect(a.buffered).toBe(sent * PAYLOAD_CHUNK_BYTES)
        vi.advanceTimersByTime(999)
        expect(stalls).toHaveLength(0)
        vi.advanceTimersByTime(1)
        expect(stalls).toHaveLength(1)
        expect(a.buffered).toBe(0)
        expect(() => a.push({ index: sent, data: Buffer.alloc(PAYLOAD_CHUNK_BYTES).toString('base64') })).toThrow(PayloadStalledError)
        await expect(a.finish()).rejects.toThrow(PayloadStalledError)
        vi.advanceTimersByTime(10_000)
        expect(stalls).toHaveLength(1)
      }),
      { numRuns: 50 }
    )
  })

  it('a transfer that keeps sending never stalls, and a finished one holds no timer', async () => {
    vi.useFakeTimers()
    const bytes = new Uint8Array(3 * PAYLOAD_CHUNK_BYTES).fill(9)
    const d = describePayload({ kind: 'bytes', bytes })
    const stalls: unknown[] = []
    const a = new PayloadAssembler(d, { stallMs: 1000, onStall: (e) => stalls.push(e) })
    for (const c of payloadChunks(bytes)) {
      vi.advanceTimersByTime(900)
      a.push(c)
    }
    expect(await a.finish()).toEqual(bytes)
    vi.advanceTimersByTime(5000)
    expect(stalls).toHaveLength(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('fromBase64: any text gives bytes or a TypeError, and chunk text stays within its cap', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          fromBase64(text)
        } catch (err) {
          expect(err).toBeInstanceOf(TypeError)
        }
      }),
      { numRuns: 2000 }
    )
    expect(Buffer.alloc(PAYLOAD_CHUNK_BYTES).toString('base64').length).toBeLessThanOrEqual(PAYLOAD_CHUNK_CHARS)
  })
})
