import { describe, expect, it } from 'vitest'
import { lpStream, pbStream, streamPair } from '@libp2p/utils'

// patches/@libp2p+utils+7.4.1.patch: lpStream (the reader of identify, identify-push,
// the relay's hop and stop protocols, WebRTC signalling, multistream-select) checked its
// length-prefix cap only once a varint decoded, so a run of 0x80 bytes was read one by one
// without end (issue 11 item 2). Unpatched, these reads never settle.
const RUN = new Uint8Array(256 * 1024).fill(0x80)

async function settles<T>(p: Promise<T>, ms = 2000): Promise<T> {
  return await Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still reading after ${ms} ms`)), ms))])
}

describe('@libp2p/utils length-prefix patch', () => {
  it('refuses a prefix past its cap after the cap, not after the whole run', async () => {
    const [a, b] = await streamPair()
    const lp = lpStream(b, { maxDataLength: 4096 })
    a.send(RUN)
    const err = await settles(lp.read().catch((e: unknown) => e as Error))
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).name).toBe('InvalidDataLengthLengthError')
    // It read at most the cap + 1 bytes of the run (4096 needs a 2-byte varint).
    expect(lp.unwrap().readBufferLength).toBeGreaterThanOrEqual(RUN.byteLength - 3)
  })

  it('caps readers that set no limit at all (pbStream as the relay hop uses it) at 10 bytes', async () => {
    const [a, b] = await streamPair()
    const pb = pbStream(b)
    a.send(RUN)
    const err = await settles(pb.read({ decode: () => ({}) } as never).catch((e: unknown) => e as Error))
    expect((err as Error).name).toBe('InvalidDataLengthLengthError')
    expect((err as Error).message).toMatch(/11 > 10/)
  })

  it('still reads honest frames, long prefixes included', async () => {
    const [a, b] = await streamPair()
    const lp = lpStream(b)
    await lpStream(a).write(new Uint8Array(300_000).fill(7))
    expect((await settles(lp.read())).byteLength).toBe(300_000)
  })
})
