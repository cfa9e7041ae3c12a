/**
 * The simulator's direct links carry streams the way WebRTC does: each libp2p stream is a
 * channel of its own (RTCDataChannel), each write one message on it, with no muxer framing
 * a byte stream. @libp2p/webrtc gives the upgrader its own muxer for the same reason, so
 * the mesh code above sees the same streams either way.
 *
 * Before this, a direct link ran yamux over one byte stream: every gossip copy paid for
 * yamux's frames, its window updates and the link connection's own send queue and events,
 * which a browser's data channels never do, and the simulated peers share two cores.
 *
 * A frame is (channel id, kind, bytes) and crosses the link as one item, in order with the
 * rest of the link: `open` (a data channel's DCEP open), `data` (a message), `fin`
 * (the writer is done: libp2p's FIN flag), `stop` (the reader is done: STOP_SENDING) and
 * `reset`. The dialler's channels are odd, the listener's even, as with SCTP stream ids.
 * `ping` and `pong` (numbered by the ping, not a channel) stand for the ICE consent checks
 * a browser's network stack answers by itself, from which a tab reads a WebRTC link's round
 * trip: the mesh's RTT sampler times a link by its muxer's ping() (as yamux's PING frame)
 * rather than open a ping stream, which WebRTC links in tabs never need.
 */
import type { CreateStreamOptions, MessageStream, StreamMuxerFactory } from '@libp2p/interface'
import { AbstractStream, type AbstractStreamInit, AbstractStreamMuxer, type SendResult } from '@libp2p/utils'

/** What a stream hands its muxer to send (@libp2p/utils' own Uint8ArrayList). */
type Chunk = Parameters<AbstractStream['sendData']>[0]

/** What a frame does on its channel. */
export const Frame = { Open: 0, Data: 1, Fin: 2, Stop: 3, Reset: 4, Ping: 5, Pong: 6 } as const
export type Frame = (typeof Frame)[keyof typeof Frame]

/** The link end a channel muxer runs on: it sends frames, and hands the ones that arrive to `frames`. */
export interface FrameLink extends MessageStream {
  sendFrame(channel: number, frame: Frame, data?: Uint8Array): void
  frames: ChannelMuxer | undefined
}

/** The largest message a channel carries; longer writes go as several (libp2p's WebRTC streams use 16 KiB). */
const MAX_MESSAGE = 16 * 1024

export const CHANNELS_PROTOCOL = '/zerostate/sim-channels'

class Channel extends AbstractStream {
  readonly #link: FrameLink
  readonly #n: number

  constructor(init: AbstractStreamInit, link: FrameLink, n: number) {
    super(init)
    this.#link = link
    this.#n = n
  }

  sendData(data: Chunk): SendResult {
    this.#link.sendFrame(this.#n, Frame.Data, data.subarray())
    return { sentBytes: data.byteLength, canSendMore: true }
  }

  sendReset(): void {
    this.#link.sendFrame(this.#n, Frame.Reset)
  }

  async sendCloseWrite(): Promise<void> {
    this.#link.sendFrame(this.#n, Frame.Fin)
  }

  async sendCloseRead(): Promise<void> {
    this.#link.sendFrame(this.#n, Frame.Stop)
  }

  // Read backpressure is not simulated (nor by the link under it).
  sendPause(): void {}
  sendResume(): void {}
}

/** One direct link's channels. */
export class ChannelMuxer extends AbstractStreamMuxer<Channel> {
  readonly #link: FrameLink
  readonly #open = new Map<number, Channel>()
  #next: number
  /** Frames for channels this side does not have (closed here, or never opened): dropped, and counted for tests. */
  stray = 0
  /** Pings sent and not answered yet: their start time and how to answer. */
  readonly #pings = new Map<number, { t0: number; done: (ms: number) => void; fail: (err: Error) => void }>()
  #nextPing = 1

  constructor(link: FrameLink) {
    super(link, { protocol: CHANNELS_PROTOCOL, name: 'sim-channels' })
    this.#link = link
    this.#next = link.direction === 'outbound' ? 1 : 2
    link.frames = this
  }

  /** A direct link carries frames only: bytes outside a channel are a broken link. */
  onData(): void {
    throw new Error('a simulated direct link carried bytes outside a channel')
  }

  onCreateStream(options: CreateStreamOptions): Channel {
    const n = this.#next
    this.#next += 2
    const channel = this.#channel(n, 'outbound', options)
    this.#link.sendFrame(n, Frame.Open)
    return channel
  }

  /** One round trip of the link in ms (the mesh's RTT sampler calls it, as it does yamux's). Rejects if the link closes first. */
  ping(): Promise<number> {
    if (this.status !== 'open') return Promise.reject(new Error('the simulated direct link is closed'))
    const n = this.#nextPing++
    const { promise, resolve, reject } = Promise.withResolvers<number>()
    this.#pings.set(n, { t0: performance.now(), done: resolve, fail: reject })
    this.#link.sendFrame(n, Frame.Ping)
    return promise
  }

  override onTransportClosed(err?: Error): void {
    this.#failPings(err ?? new Error('the simulated direct link closed'))
    super.onTransportClosed(err)
  }

  override abort(err: Error): void {
    this.#failPings(err)
    super.abort(err)
  }

  #failPings(err: Error): void {
    for (const ping of this.#pings.values()) ping.fail(err)
    this.#pings.clear()
  }

  /** A frame from the other end, in the link's order. */
  onFrame(n: number, frame: Frame, data: Uint8Array | undefined): void {
    if (this.status !== 'open') return
    if (frame === Frame.Ping) {
      this.#link.sendFrame(n, Frame.Pong)
      return
    }
    if (frame === Frame.Pong) {
      const ping = this.#pings.get(n)
      if (ping == null) this.stray++
      else {
        this.#pings.delete(n)
        ping.done(performance.now() - ping.t0)
      }
      return
    }
    if (frame === Frame.Open) {
      // The other side's channels have the other parity; an id twice is a broken link.
      if ((n % 2 === 1) === (this.#link.direction === 'outbound'))
        throw new Error(`a simulated direct link opened channel ${n} out of turn (this side's number)`)
      if (this.#open.has(n)) throw new Error(`a simulated direct link opened channel ${n} twice`)
      this.onRemoteStream(this.#channel(n, 'inbound', {}))
      return
    }
    const channel = this.#open.get(n)
    if (channel == null) {
      this.stray++
      return
    }
    if (frame === Frame.Data) channel.onData(data as Uint8Array)
    else if (frame === Frame.Fin) channel.onRemoteCloseWrite()
    else if (frame === Frame.Stop) channel.onRemoteCloseRead()
    else channel.onRemoteReset()
  }

  #channel(n: number, direction: 'inbound' | 'outbound', options: CreateStreamOptions): Channel {
    const channel = new Channel(
      {
        ...this.streamOptions,
        ...options,
        // Each channel negotiates its protocol with multistream-select, as on WebRTC (its muxer
        // does not pre-negotiate either); a protocol set here would skip that on this side only.
        protocol: '',
        id: String(n),
        direction,
        maxMessageSize: MAX_MESSAGE,
        log: this.log.newScope(`channel:${direction}:${n}`)
      },
      this.#link,
      n
    )
    this.#open.set(n, channel)
    channel.addEventListener('close', () => this.#open.delete(n), { once: true })
    return channel
  }
}

/** The muxer factory both ends of a direct link hand the upgrader (as @libp2p/webrtc does its own). */
export const channelMuxers: StreamMuxerFactory = {
  protocol: CHANNELS_PROTOCOL,
  createStreamMuxer: (maConn) => new ChannelMuxer(maConn as FrameLink)
}
