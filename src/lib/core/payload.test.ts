import { describe, expect, it, vi } from 'vitest'
import {
  PAYLOAD_CHUNK_BYTES,
  PAYLOAD_CHUNK_CHARS,
  PayloadAbortedError,
  PayloadAssembler,
  PayloadIntegrityError,
  PayloadTooLargeError,
  SHA256_SYNC_MAX_BYTES,
  chunkCount,
  describePayload,
  encodePayload,
  fromBase64,
  payloadChunks,
  sendPayloadChunks,
  sha256Hex,
  sha256HexAsync,
  toBase64
} from './payload.ts'

const pattern = (n: number): Uint8Array => new Uint8Array(n).map((_, i) => (i * 13 + (i >> 9)) & 0xff)

function assemble(bytes: Uint8Array): { a: PayloadAssembler; chunks: Array<{ index: number; data: string }> } {
  const d = describePayload(encodePayload(bytes))
  return { a: new PayloadAssembler(d), chunks: [...payloadChunks(bytes)] }
}

describe('core payload', () => {
  it('encodes JSON as UTF-8 and bytes as they are, without a copy', () => {
    const bytes = pattern(10)
    expect(encodePayload(bytes)).toEqual({ kind: 'bytes', bytes })
    expect(encodePayload(bytes).bytes).toBe(bytes)
    const view = new DataView(bytes.buffer, 2, 4)
    expect(encodePayload(view).bytes).toEqual(bytes.subarray(2, 6))
    expect(new TextDecoder().decode(encodePayload({ a: 'é' }).bytes)).toBe('{"a":"é"}')
    expect(new TextDecoder().decode(encodePayload(undefined).bytes)).toBe('null')
  })

  it('inlines a payload of one chunk or less, and chunks a larger one', async () => {
    const small = describePayload(encodePayload(pattern(PAYLOAD_CHUNK_BYTES)))
    expect(small.inline).toHaveLength(PAYLOAD_CHUNK_CHARS)
    expect(chunkCount(small)).toBe(0)
    expect(await new PayloadAssembler(small).finish()).toEqual(pattern(PAYLOAD_CHUNK_BYTES))
    const big = describePayload(encodePayload(pattern(PAYLOAD_CHUNK_BYTES + 1)))
    expect(big.inline).toBeUndefined()
    expect(chunkCount(big)).toBe(2)
    expect(big.sha256).toBe(sha256Hex(pattern(PAYLOAD_CHUNK_BYTES + 1)))
  })

  it('reassembles chunks in order, ignores duplicates and checks the hash of the whole', async () => {
    const bytes = pattern(3 * PAYLOAD_CHUNK_BYTES + 17)
    const { a, chunks } = assemble(bytes)
    expect(chunks).toHaveLength(4)
    expect(chunks.every((c) => c.data.length <= PAYLOAD_CHUNK_CHARS)).toBe(true)
    expect(a.push(chunks[0])).toBe(true)
    expect(a.push(chunks[0])).toBe(false)
    for (const c of chunks.slice(1)) a.push(c)
    expect(a.complete).toBe(true)
    expect(a.received).toBe(bytes.byteLength)
    expect(Buffer.compare((await a.finish()) as Uint8Array, bytes)).toBe(0)
  })

  it("hashes by WebCrypto to the same digest as the JavaScript hash (the sender's), known vectors included", async () => {
    expect(await sha256HexAsync(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
    expect(await sha256HexAsync(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    for (const n of [1, 63, 64, 65, PAYLOAD_CHUNK_BYTES, 3 * PAYLOAD_CHUNK_BYTES + 7]) {
      const bytes = pattern(n)
      expect(await sha256HexAsync(bytes)).toBe(sha256Hex(bytes))
      // A view into a larger buffer hashes only its own bytes.
      const view = new Uint8Array(n + 10)
      view.set(bytes, 5)
      expect(await sha256HexAsync(view.subarray(5, 5 + n))).toBe(sha256Hex(bytes))
    }
  })

  it('hashes small payloads in JavaScript and only larger ones by WebCrypto', async () => {
    const digest = vi.spyOn(globalThis.crypto.subtle, 'digest')
    try {
      const small = pattern(SHA256_SYNC_MAX_BYTES)
      expect(await sha256HexAsync(small)).toBe(sha256Hex(small))
      expect(digest).not.toHaveBeenCalled()
      const large = pattern(SHA256_SYNC_MAX_BYTES + 1)
      expect(await sha256HexAsync(large)).toBe(sha256Hex(large))
      expect(digest).toHaveBeenCalledTimes(1)
    } finally {
      digest.mockRestore()
    }
  })

  it('decodes a JSON payload back to the value', async () => {
    const value = { text: 'x'.repeat(100_000), list: [1, 2, 3] }
    const e = encodePayload(value)
    const a = new PayloadAssembler(describePayload(e))
    for (const c of payloadChunks(e.bytes)) a.push(c)
    expect(await a.finish()).toEqual(value)
  })

  it('throws PayloadIntegrityError on a gap, a wrong-sized chunk, a wrong hash, an early finish or bad base64', async () => {
    const bytes = pattern(2 * PAYLOAD_CHUNK_BYTES + 5)
    let { a, chunks } = assemble(bytes)
    expect(() => a.push(chunks[1])).toThrow(PayloadIntegrityError)
    ;({ a, chunks } = assemble(bytes))
    expect(() => a.push({ index: 0, data: chunks[2].data })).toThrow(/has 5 bytes, not/)
    ;({ a, chunks } = assemble(bytes))
    a.push(chunks[0])
    await expect(a.finish()).rejects.toThrow(/ended after/)
    expect(() => a.push({ index: 1, data: '!!!!' })).toThrow(PayloadIntegrityError)
    const d = describePayload(encodePayload(bytes))
    const lying = new PayloadAssembler({ ...d, sha256: 'f'.repeat(64) })
    for (const c of chunks) lying.push(c)
    await expect(lying.finish()).rejects.toThrow(/sha-256/)
    // A lie is refused to every later caller too.
    await expect(lying.finish()).rejects.toThrow(/sha-256/)
    const inlineLie = describePayload(encodePayload(pattern(10)))
    await expect(new PayloadAssembler({ ...inlineLie, size: 11 }).finish()).rejects.toThrow(PayloadIntegrityError)
    await expect(new PayloadAssembler({ ...inlineLie, kind: 'json' }).finish()).rejects.toThrow(PayloadIntegrityError)
  })

  it('refuses an announced size over the cap before allocating', () => {
    const d = describePayload(encodePayload(pattern(PAYLOAD_CHUNK_BYTES * 2)))
    expect(() => new PayloadAssembler(d, { maxBytes: PAYLOAD_CHUNK_BYTES })).toThrow(PayloadTooLargeError)
  })

  it('sends chunk by chunk with progress and stops when aborted', async () => {
    const bytes = pattern(5 * PAYLOAD_CHUNK_BYTES)
    const seen: number[] = []
    const stop = new AbortController()
    const sent = sendPayloadChunks(
      bytes,
      async (c) => {
        seen.push(c.index)
      },
      {
        signal: stop.signal,
        onProgress: (p) => {
          if (p.bytes === 2 * PAYLOAD_CHUNK_BYTES) stop.abort()
        }
      }
    )
    await expect(sent).rejects.toBeInstanceOf(PayloadAbortedError)
    expect(seen).toEqual([0, 1])
  })

  it('base64 round-trips and refuses text that is not base64', () => {
    const bytes = pattern(1000)
    expect(toBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'))
    expect(fromBase64(toBase64(bytes))).toEqual(bytes)
    expect(() => fromBase64('abc')).toThrow()
    expect(() => fromBase64('ab$=')).toThrow()
  })
})
