/**
 * A simulated direct link's streams are channels, as on WebRTC (channels.ts): two real
 * libp2p nodes over a direct simulated link use them, not yamux; a write arrives whole
 * in messages of at most 16 KiB; a half-closed stream still carries the answer; a reset
 * and a closed connection reach the other side; and frames a link should never carry
 * break the link or are dropped and counted, never a crash.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { CHANNELS_PROTOCOL, ChannelMuxer, Frame, type FrameLink } from './channels.ts'
import { pingingMuxer, pingLink } from '../lib/mesh/rtt-sampler.ts'
import { simLink } from './link.ts'
import { waitFor } from './mesh.ts'

const started: Libp2p[] = []
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()))
})

/** Two nodes joined by a direct (`/webrtc`) simulated link, B the dialler. */
async function directPair() {
  // A direct link is announced through a relay; the dial itself never goes through it.
  const relay = `/memory/zs-test-channels-${process.pid}/p2p/${peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()}`
  const make = async () => {
    const node = await createLibp2p({
      addresses: { listen: ['/webrtc'] },
      transports: [simLink({ relay, latencyMs: 2, jitterMs: 0, loss: 0 })],
      connectionGater: { denyDialMultiaddr: () => false }
    })
    started.push(node)
    return node
  }
  const a = await make()
  const b = await make()
  const conn = await b.dial(multiaddr(`${relay}/p2p-circuit/webrtc/p2p/${a.peerId.toString()}`))
  return { a, b, conn }
}

async function readAll(stream: Stream): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const chunk of stream) parts.push(chunk.subarray())
  return Uint8Array.from(parts.flatMap((p) => [...p]))
}

describe('direct links carry streams as channels', () => {
  it('uses the channels, not yamux; a half-closed stream delivers every byte and still carries the answer back', async () => {
    const { a, b, conn } = await directPair()
    expect(conn.multiplexer).toBe(CHANNELS_PROTOCOL)
    expect(a.getConnections(b.peerId)[0]?.multiplexer).toBe(CHANNELS_PROTOCOL)
    await a.handle('/t/sum/1', async (stream) => {
      // Reads to the end (the dialler's FIN), then answers on the same stream.
      const got = await readAll(stream)
      stream.send(new TextEncoder().encode(`${got.byteLength} ${got.reduce((s, x) => s + x, 0)}`))
      await stream.close()
    })
    const stream = await b.dialProtocol(a.peerId, '/t/sum/1')
    // 40 KiB in one write goes as three messages; the bytes arrive whole and in order.
    const big = Uint8Array.from({ length: 40 * 1024 }, (_, i) => i % 251)
    stream.send(Uint8Array.of(1, 2, 3))
    stream.send(big)
    await stream.close()
    const answer = new TextDecoder().decode(await readAll(stream))
    expect(answer).toBe(`${3 + big.byteLength} ${6 + big.reduce((s, x) => s + x, 0)}`)
  })

  it("times a link's round trip by a ping frame, as a tab reads WebRTC's from the browser, not by a ping stream", async () => {
    const { conn } = await directPair()
    expect(pingingMuxer(conn)).toBeDefined()
    const streams = conn.streams.length
    const rtt = await pingLink(conn, AbortSignal.timeout(5000))
    // Two 2 ms legs at the least.
    expect(rtt).toBeGreaterThanOrEqual(3.5)
    expect(rtt).toBeLessThan(1000)
    expect(conn.streams.length).toBe(streams)
  })

  it('a reset reaches the other side, and a closed connection ends the other side’s channels', async () => {
    const { a, b } = await directPair()
    const held: Stream[] = []
    await a.handle('/t/hold/1', (stream) => {
      held.push(stream)
    })
    const reset = await b.dialProtocol(a.peerId, '/t/hold/1')
    reset.send(Uint8Array.of(7))
    await waitFor(() => held.length === 1, 5000, 'the first stream', 5)
    reset.abort(new Error('given up'))
    await waitFor(() => held[0]?.status === 'reset', 5000, 'the reset on the other side', 5)

    const kept = await b.dialProtocol(a.peerId, '/t/hold/1')
    kept.send(Uint8Array.of(8))
    await waitFor(() => held.length === 2, 5000, 'the second stream', 5)
    await b.hangUp(a.peerId)
    await waitFor(() => held[1]?.status !== 'open', 5000, 'the channel ended with its connection', 5)
    expect(a.getConnections(b.peerId).filter((c) => c.status === 'open')).toHaveLength(0)
  })
})

/** A link end that only records the frames sent on it. */
function recordingLink(direction: 'inbound' | 'outbound') {
  const sent: Array<{ channel: number; frame: Frame; bytes: number }> = []
  const link = {
    direction,
    log: defaultLogger().forComponent('test:channels'),
    frames: undefined,
    addEventListener: () => {},
    sendFrame: (channel: number, frame: Frame, data?: Uint8Array) => sent.push({ channel, frame, bytes: data?.byteLength ?? 0 })
  }
  return { link: link as unknown as FrameLink, sent }
}

describe('a channel muxer', () => {
  it('numbers its own channels by its side, splits long writes into 16 KiB messages, and takes the other side’s opens', async () => {
    const { link, sent } = recordingLink('outbound')
    const muxer = new ChannelMuxer(link)
    expect(link.frames).toBe(muxer)
    const first = await muxer.createStream()
    const second = await muxer.createStream()
    expect([first.id, second.id]).toEqual(['1', '3'])
    first.send(new Uint8Array(40 * 1024))
    await waitFor(() => sent.filter((f) => f.frame === Frame.Data).length === 3, 2000, 'the data frames', 2)
    expect(sent.filter((f) => f.frame === Frame.Open).map((f) => f.channel)).toEqual([1, 3])
    expect(sent.filter((f) => f.frame === Frame.Data).map((f) => [f.channel, f.bytes])).toEqual([
      [1, 16 * 1024],
      [1, 16 * 1024],
      [1, 8 * 1024]
    ])
    const opened: string[] = []
    muxer.addEventListener('stream', (evt) => opened.push(evt.detail.id))
    muxer.onFrame(2, Frame.Open, undefined)
    await waitFor(() => opened.length === 1, 2000, 'the inbound channel', 2)
    expect(opened).toEqual(['2'])
  })

  it('an open out of turn or twice breaks the link; a frame for a channel it does not have is dropped and counted', () => {
    const { link } = recordingLink('inbound')
    const muxer = new ChannelMuxer(link)
    // The dialler's channels are odd: this (listening) side opens even ones itself.
    expect(() => muxer.onFrame(2, Frame.Open, undefined)).toThrow(/out of turn/)
    muxer.onFrame(1, Frame.Open, undefined)
    expect(() => muxer.onFrame(1, Frame.Open, undefined)).toThrow(/twice/)
    muxer.onFrame(9, Frame.Data, Uint8Array.of(1))
    muxer.onFrame(9, Frame.Fin, undefined)
    // A pong for no ping of ours.
    muxer.onFrame(4, Frame.Pong, undefined)
    expect(muxer.stray).toBe(3)
    expect(() => muxer.onData()).toThrow(/outside a channel/)
  })

  it('answers a ping with a pong, resolves its own ping on the pong, and fails a ping still out when the link closes', async () => {
    const { link, sent } = recordingLink('outbound')
    const muxer = new ChannelMuxer(link)
    muxer.onFrame(7, Frame.Ping, undefined)
    expect(sent).toContainEqual({ channel: 7, frame: Frame.Pong, bytes: 0 })
    const answered = muxer.ping()
    const out = sent.find((f) => f.frame === Frame.Ping)
    expect(out).toBeDefined()
    muxer.onFrame(out!.channel, Frame.Pong, undefined)
    expect(await answered).toBeGreaterThanOrEqual(0)
    const lost = muxer.ping()
    muxer.onTransportClosed()
    await expect(lost).rejects.toThrow(/closed/)
    await expect(muxer.ping()).rejects.toThrow(/closed/)
  })
})
