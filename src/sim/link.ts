/**
 * The simulator's links: an in-process transport in @libp2p/memory's shape that carries
 * both a peer's link to the relay (`/memory/<name>`, like its WebSocket) and its direct
 * links, which pose as WebRTC so the mesh code runs unchanged (its dialer builds
 * `<relay>/p2p-circuit/webrtc/p2p/<peer>`, its peer book ranks `/webrtc` links as direct,
 * presence announces `/webrtc` addresses). A direct dial is not signalled through the relay:
 * it reaches the target's listener in this process at once, and the bytes then cross a link
 * with latency, jitter and loss. Links are reliable and ordered (SCTP's ordered data
 * channels, TCP): a lost chunk is resent after `retransmitMs`, holding back what follows.
 *
 * Not @libp2p/memory itself: its `latency` delays each buffer after the previous one's
 * delay (a burst of k buffers takes k × latency), which is no network: gossip queued behind
 * itself and p99 grew with the load rather than with the links.
 */
import {
  ConnectionFailedError,
  serviceCapabilities,
  transportSymbol,
  type ComponentLogger,
  type CreateListenerOptions,
  type DialTransportOptions,
  type Listener,
  type ListenerEvents,
  type PeerId,
  type StreamMuxerFactory,
  type Transport,
  type Upgrader
} from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { AbstractMultiaddrConnection, type AbstractMultiaddrConnectionInit } from '@libp2p/utils'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { setMaxListeners } from 'node:events'
import type { MessagePort } from 'node:worker_threads'
import { type ChannelMuxer, channelMuxers, type Frame, type FrameLink } from './channels.ts'

/** Bytes handed to a multiaddr connection (@libp2p/utils' own Uint8ArrayList). */
type Chunk = Parameters<AbstractMultiaddrConnection['sendData']>[0]

/** How a simulated link behaves. */
export interface LinkShape {
  /** One-way delay in ms. Default 20. */
  latencyMs?: number
  /** Extra one-way delay, uniform in [0, jitterMs). Default 10. */
  jitterMs?: number
  /** Probability that a chunk is lost once (and resent after `retransmitMs`). Default 0.01. */
  loss?: number
  /** Delay of a resend. Default 200 (SCTP's minimum RTO is 1 s; WebRTC stacks use ~200 ms). */
  retransmitMs?: number
}

/** Options of the simulated transport. */
export interface SimLinkInit extends LinkShape {
  /** The relay this node announces its `/webrtc` address through (`/memory/…/p2p/<relay>`); none for the relay itself. */
  relay?: string
  /** Random source (tests pass a seeded one). Default Math.random. */
  random?: () => number
}

/** Bytes and chunks (a channel's frames among them) that crossed links to this thread, and chunks resent from it. */
export const linkStats = { chunks: 0, bytes: 0, resent: 0 }
/** Count `bytes` (a chunk or a frame) as received over a link of this thread. */
function countReceived(bytes: number): void {
  linkStats.chunks++
  linkStats.bytes += bytes
}
/** linkStats' names among a thread's traffic counters (group.ts). */
export const LINK_COUNTERS = { bytes: 'sim.link.bytes', chunks: 'sim.link.chunks', resent: 'sim.link.resent' } as const

/** This thread's switchboard: peer id (direct links) or `/memory/<name>` (the relay) → its listener. */
const switchboard = new Map<string, SimListener>()

/**
 * What this thread's links need from other threads (the simulator spreads peers over
 * worker threads): a MessagePort to each other thread, the listener keys each one holds,
 * and this thread's ends of links that cross a port, by link id. A lane applies the delay
 * on the sending side, then the bytes cross the port (in order, all a tick's items for one port in one transferred Batch, ~0.1 ms).
 */
type Port = MessagePort
type ExchangeMessage =
  | { t: 'listen'; key: string }
  | { t: 'unlisten'; key: string }
  | { t: 'dial'; id: string; key: string; back: string; direct?: boolean }
  | { t: 'refused'; id: string }
  | Batch

/**
 * What a lane hands to another thread, in order: bytes, or the sender's close or reset, or a
 * channel's frame (channels.ts), numbered from `Kind.Frame` on (`Kind.Frame + frame`).
 */
const Kind = { Data: 0, Close: 1, Reset: 2, Frame: 3 } as const
type Kind = number

/**
 * Everything this thread's lanes hand to one other thread at one tick of the lane clock, in
 * one message: item i is `kinds[i]` of link `ids[i]`, its bytes the next `lens[i]` of `buf`
 * (one transferred buffer). A message per chunk cost each side a structured clone and an
 * event: posting and dispatching them were ~7 % of a simulated peer's thread while probing.
 */
interface Batch {
  t: 'batch'
  ids: string[]
  kinds: Kind[]
  /** A frame's channel (0 for other items). */
  channels: number[]
  lens: number[]
  buf: Uint8Array
}

/** The items bound for one port since the lane clock's last tick. */
class Outbox {
  readonly ids: string[] = []
  readonly kinds: Kind[] = []
  readonly channels: number[] = []
  readonly chunks: Uint8Array[] = []
  bytes = 0
  constructor(readonly port: Port) {}

  add(id: string, kind: Kind, data?: Uint8Array, channel = 0): void {
    this.ids.push(id)
    this.kinds.push(kind)
    this.channels.push(channel)
    const chunk = data ?? EMPTY
    this.chunks.push(chunk)
    this.bytes += chunk.byteLength
  }

  /** Post what was added as one Batch and start over. */
  flush(): void {
    if (this.ids.length === 0) return
    const buf = new Uint8Array(this.bytes)
    const lens = new Array<number>(this.chunks.length)
    let at = 0
    for (let i = 0; i < this.chunks.length; i++) {
      const c = this.chunks[i] as Uint8Array
      buf.set(c, at)
      at += c.byteLength
      lens[i] = c.byteLength
    }
    const msg: Batch = { t: 'batch', ids: this.ids.splice(0), kinds: this.kinds.splice(0), channels: this.channels.splice(0), lens, buf }
    this.chunks.length = 0
    this.bytes = 0
    this.port.postMessage(msg, [buf.buffer])
  }
}

const EMPTY = new Uint8Array(0)
const exchange = {
  thread: 'main',
  ports: [] as Port[],
  remoteKeys: new Map<string, Port>(),
  links: new Map<string, SimLinkConnection>(),
  /** Items for other threads, posted at the end of the lane clock's tick. */
  outboxes: new Map<Port, Outbox>(),
  next: 0
}

function outboxOf(port: Port): Outbox {
  let box = exchange.outboxes.get(port)
  if (box == null) {
    box = new Outbox(port)
    exchange.outboxes.set(port, box)
  }
  return box
}

/**
 * Join this thread to the others: `ports` reach every other thread that runs peers or the
 * relay. Listeners started before or after are announced to them.
 */
export function joinThreads(thread: string, ports: Port[]): void {
  exchange.thread = thread
  exchange.ports = ports
  for (const port of ports) {
    port.on('message', (msg: ExchangeMessage) => onExchange(port, msg))
    for (const key of switchboard.keys()) port.postMessage({ t: 'listen', key })
  }
}

/** Close this thread's ports (the end of a run). */
export function leaveThreads(): void {
  for (const port of exchange.ports) port.close()
  exchange.ports = []
  exchange.remoteKeys.clear()
  exchange.outboxes.clear()
}

function announce(msg: ExchangeMessage): void {
  for (const port of exchange.ports) port.postMessage(msg)
}

function onExchange(port: Port, msg: ExchangeMessage): void {
  switch (msg.t) {
    case 'listen':
      exchange.remoteKeys.set(msg.key, port)
      return
    case 'unlisten':
      if (exchange.remoteKeys.get(msg.key) === port) exchange.remoteKeys.delete(msg.key)
      return
    case 'dial': {
      const listener = switchboard.get(msg.key)
      if (listener == null) {
        port.postMessage({ t: 'refused', id: msg.id })
        return
      }
      const inbound = new SimLinkConnection({ remoteAddr: multiaddr(msg.back), direction: 'inbound', log: listener.log })
      inbound.joinRemote(port, msg.id, listener.shape, listener.random)
      listener.accept(inbound, msg.direct === true ? msg.back : undefined)
      return
    }
    case 'refused':
      exchange.links.get(msg.id)?.abort(new ConnectionFailedError('the simulated peer stopped listening'))
      return
    case 'batch': {
      let at = 0
      for (let i = 0; i < msg.ids.length; i++) {
        const len = msg.lens[i] as number
        const data = msg.buf.subarray(at, at + len)
        at += len
        const conn = exchange.links.get(msg.ids[i] as string)
        if (conn == null || conn.status !== 'open') continue
        const kind = msg.kinds[i] as Kind
        if (kind >= Kind.Frame) {
          countReceived(len)
          conn.onFrame(msg.channels[i] as number, (kind - Kind.Frame) as Frame, data)
        } else if (kind === Kind.Data) {
          countReceived(len)
          conn.onData(data)
        } else if (kind === Kind.Reset) conn.onRemoteReset()
        else conn.onTransportClosed()
      }
    }
  }
}

/** What crosses a lane: bytes, or the sender's close or reset, or a channel's frame (with its bytes, if data). */
export type Item = { at: number; data?: Chunk | Uint8Array; close?: true; reset?: true; channel?: number; frame?: Frame }

/** One contiguous buffer of consecutive chunks. */
function joinChunks(chunks: Array<Chunk | Uint8Array>): Uint8Array {
  let size = 0
  for (const c of chunks) size += c.byteLength
  const out = new Uint8Array(size)
  let at = 0
  for (const c of chunks) {
    out.set(c instanceof Uint8Array ? c : c.subarray(), at)
    at += c.byteLength
  }
  return out
}

/**
 * This thread's clock for all its lanes: one timer, set for the earliest item due on any
 * lane, instead of a timer per lane (a peer with 33 links had 66). At each tick it drains
 * every lane that is due, then posts what they handed to other threads, one Batch per port.
 */
/** A lane on the clock: wake it at `at`. */
type Wake = { at: number; lane: Lane }

class LaneClock {
  /** Lanes by the time their head item is due: a binary min-heap. */
  readonly #heap: Wake[] = []
  #timer: ReturnType<typeof setTimeout> | undefined
  #timerAt = Number.POSITIVE_INFINITY

  /** Wake `lane` at `at` (performance.now() time). */
  schedule(lane: Lane, at: number): void {
    const h = this.#heap
    h.push({ at, lane })
    let i = h.length - 1
    while (i > 0) {
      const up = (i - 1) >> 1
      if ((h[up] as Wake).at <= at) break
      ;[h[up], h[i]] = [h[i] as Wake, h[up] as Wake]
      i = up
    }
    if (at < this.#timerAt) this.#arm(at)
  }

  #pop(): Lane {
    const h = this.#heap
    const top = h[0] as Wake
    const last = h.pop() as Wake
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && (h[l] as Wake).at < (h[m] as Wake).at) m = l
        if (r < h.length && (h[r] as Wake).at < (h[m] as Wake).at) m = r
        if (m === i) break
        ;[h[m], h[i]] = [h[i] as Wake, h[m] as Wake]
        i = m
      }
    }
    return top.lane
  }

  #arm(at: number): void {
    clearTimeout(this.#timer)
    this.#timerAt = at
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, Math.ceil(at - performance.now())))
  }

  #tick(): void {
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
    const now = performance.now()
    while (this.#heap.length > 0 && (this.#heap[0] as Wake).at <= now) this.#pop().drain(now)
    for (const box of exchange.outboxes.values()) box.flush()
    const next = this.#heap[0]
    if (next != null && next.at < this.#timerAt) this.#arm(next.at)
  }
}

const clock = new LaneClock()

/** One direction of a link: a FIFO that delivers each item no earlier than its time, never out of order. */
export class Lane {
  readonly #queue: Item[] = []
  /** The first item not yet delivered (the queue is shifted in bulk, not per item). */
  #head = 0
  /** On the clock for its head item. */
  #scheduled = false
  #last = 0
  constructor(
    readonly shape: Required<LinkShape>,
    readonly random: () => number,
    readonly deliver: (item: Item) => void
  ) {}

  push(item: Omit<Item, 'at'>): void {
    const s = this.shape
    let at = performance.now() + s.latencyMs + this.random() * s.jitterMs
    if ((item.data != null || item.frame != null) && s.loss > 0 && this.random() < s.loss) {
      at += s.retransmitMs
      linkStats.resent++
    }
    at = Math.max(at, this.#last)
    this.#last = at
    this.#queue.push({ data: item.data, close: item.close, reset: item.reset, channel: item.channel, frame: item.frame, at })
    if (!this.#scheduled) {
      this.#scheduled = true
      clock.schedule(this, (this.#queue[this.#head] as Item).at)
    }
  }

  /**
   * Deliver what is due by `now` (the clock calls it). Consecutive chunks due together
   * arrive as one buffer, as a socket's read returns what arrived: a receiver handed
   * thousands of tiny chunks pays for each in its length-prefixed decoders (a
   * Uint8ArrayList read walks its chunks). A channel's frames arrive one by one, as messages.
   */
  drain(now: number): void {
    this.#scheduled = false
    const q = this.#queue
    let end = this.#head
    while (end < q.length && (q[end] as Item).at <= now) end++
    const due = q.slice(this.#head, end)
    this.#head = end
    if (this.#head === q.length) {
      q.length = 0
      this.#head = 0
    } else if (this.#head > 64 && this.#head * 2 > q.length) {
      q.splice(0, this.#head)
      this.#head = 0
    }
    let run: Array<Chunk | Uint8Array> = []
    const flush = (at: number): void => {
      if (run.length === 0) return
      this.deliver({ at, data: run.length === 1 ? run[0] : joinChunks(run) })
      run = []
    }
    for (const item of due) {
      if (item.data != null && item.frame == null) run.push(item.data)
      else {
        flush(item.at)
        this.deliver(item)
      }
    }
    flush(now)
    if (!this.#scheduled && this.#head < q.length) {
      this.#scheduled = true
      clock.schedule(this, (q[this.#head] as Item).at)
    }
  }

  stop(): void {
    this.#queue.length = 0
    this.#head = 0
  }
}

/** One end of a simulated link. A direct link's streams are channels (channels.ts), sent as frames. */
class SimLinkConnection extends AbstractMultiaddrConnection implements FrameLink {
  #lane: Lane | undefined
  #peer: SimLinkConnection | undefined
  /** A direct link's channels, once the upgrader made them. */
  frames: ChannelMuxer | undefined

  constructor(init: AbstractMultiaddrConnectionInit) {
    super(init)
  }

  join(peer: SimLinkConnection, shape: Required<LinkShape>, random: () => number): void {
    this.#peer = peer
    this.#lane = new Lane(shape, random, (item) => {
      if (peer.status !== 'open') return
      if (item.frame != null) {
        countReceived(item.data?.byteLength ?? 0)
        peer.onFrame(item.channel as number, item.frame, item.data as Uint8Array | undefined)
      } else if (item.data != null) {
        countReceived(item.data.byteLength)
        peer.onData(item.data)
      } else if (item.reset) peer.onRemoteReset()
      else if (item.close) peer.onTransportClosed()
    })
    this.addEventListener('close', () => {
      // An abort on this side: the other side learns it after the link's delay.
      if (peer.status === 'open') this.#lane?.push({ reset: true })
    })
  }

  /** The other end is in another thread, behind `port`, as link `id`. */
  joinRemote(port: Port, id: string, shape: Required<LinkShape>, random: () => number): void {
    exchange.links.set(id, this)
    const box = outboxOf(port)
    this.#lane = new Lane(shape, random, (item) => {
      if (item.frame != null) box.add(id, Kind.Frame + item.frame, item.data as Uint8Array | undefined, item.channel)
      else if (item.data != null) box.add(id, Kind.Data, item.data instanceof Uint8Array ? item.data : item.data.subarray())
      else box.add(id, item.reset ? Kind.Reset : Kind.Close)
    })
    this.addEventListener('close', () => {
      this.#lane?.push({ reset: true })
      // The reset goes out after the link's delay; forget the link after it.
      setTimeout(() => exchange.links.delete(id), 2000)
    })
  }

  sendData(data: Chunk) {
    this.#lane?.push({ data })
    return { sentBytes: data.byteLength, canSendMore: true }
  }

  sendReset(): void {
    this.#lane?.push({ reset: true })
  }

  sendFrame(channel: number, frame: Frame, data?: Uint8Array): void {
    this.#lane?.push({ channel, frame, data })
  }

  /** A frame from the other end. A frame the channels cannot take breaks the link, as bytes a muxer cannot parse do. */
  onFrame(channel: number, frame: Frame, data: Uint8Array | undefined): void {
    try {
      if (this.frames == null) throw new Error('a frame reached a simulated link without channels')
      this.frames.onFrame(channel, frame, data)
    } catch (err) {
      this.frames?.abort(err as Error)
      this.abort(err as Error)
    }
  }

  async sendClose(): Promise<void> {
    this.#lane?.push({ close: true })
  }

  sendPause(): void {
    // Read backpressure is not simulated (nor by @libp2p/memory).
  }

  sendResume(): void {}

  /** The other end, for tests. */
  get peer(): SimLinkConnection | undefined {
    return this.#peer
  }
}

interface SimComponents {
  peerId: PeerId
  logger: ComponentLogger
}

class SimListener extends TypedEventEmitter<ListenerEvents> implements Listener {
  readonly #components: SimComponents
  readonly #init: SimLinkInit
  readonly #upgrader: Upgrader
  readonly #shutdown = new AbortController()
  #addr: Multiaddr | undefined
  #key: string | undefined

  readonly shape: Required<LinkShape>
  readonly random: () => number
  readonly log: ReturnType<ComponentLogger['forComponent']>

  constructor(components: SimComponents, init: SimLinkInit, options: CreateListenerOptions) {
    super()
    this.#components = components
    this.#init = init
    this.#upgrader = options.upgrader
    this.shape = shapeOf(init)
    this.random = init.random ?? Math.random
    this.log = components.logger.forComponent('zerostate:sim-link')
    // Every inbound upgrade under way listens on this signal (libp2p's upgrader joins it with its
    // own timeout) and lets go when it ends: the relay's listener upgrades dozens at once as the
    // simulated mesh grows, which is no leak (Node warned past 10: MaxListenersExceededWarning).
    setMaxListeners(Number.POSITIVE_INFINITY, this.#shutdown.signal)
  }

  async listen(ma: Multiaddr): Promise<void> {
    if (ma.toString() === '/webrtc') {
      if (this.#init.relay == null) throw new ConnectionFailedError('a /webrtc listener needs the relay it is announced through')
      this.#key = this.#components.peerId.toString()
      this.#addr = multiaddr(`${this.#init.relay}/p2p-circuit/webrtc`)
    } else {
      this.#key = ma.toString()
      if (switchboard.has(this.#key)) throw new ConnectionFailedError(`${this.#key} is already in use`)
      this.#addr = ma
    }
    switchboard.set(this.#key, this)
    announce({ t: 'listen', key: this.#key })
    queueMicrotask(() => this.safeDispatchEvent('listening'))
  }

  /** Take an inbound link (from this thread or another); `directFrom`: a direct link's `back` address, which names the dialler. */
  accept(maConn: SimLinkConnection, directFrom?: string): void {
    this.#upgrader.upgradeInbound(maConn, { signal: this.#shutdown.signal, ...directUpgrade(directFrom) }).catch((err: Error) => {
      maConn.abort(err)
    })
  }

  getAddrs(): Multiaddr[] {
    return this.#addr == null ? [] : [this.#addr]
  }

  updateAnnounceAddrs(): void {}

  async close(): Promise<void> {
    if (this.#key != null && switchboard.get(this.#key) === this) {
      switchboard.delete(this.#key)
      announce({ t: 'unlisten', key: this.#key })
    }
    this.#addr = undefined
    this.#shutdown.abort()
    queueMicrotask(() => this.safeDispatchEvent('close'))
  }
}

const isSimWebrtc = (ma: Multiaddr): boolean => {
  const names = ma.getComponents().map((c) => c.name)
  return names.includes('webrtc') && names.includes('p2p-circuit')
}
/** `/memory/<name>` or `/memory/<name>/p2p/<id>`: a relay's own address. */
const isMemory = (ma: Multiaddr): boolean => {
  const names = ma.getComponents().map((c) => c.name)
  return names[0] === 'memory' && (names.length === 1 || (names.length === 2 && names[1] === 'p2p'))
}

class SimLinkTransport implements Transport {
  readonly [transportSymbol] = true as const
  readonly [Symbol.toStringTag] = 'zerostate/sim-link'
  readonly [serviceCapabilities] = ['@libp2p/transport']
  readonly #components: SimComponents
  readonly #init: SimLinkInit
  readonly #shape: Required<LinkShape>
  readonly #random: () => number

  constructor(components: SimComponents, init: SimLinkInit) {
    this.#components = components
    this.#init = init
    this.#shape = shapeOf(init)
    this.#random = init.random ?? Math.random
  }

  async dial(ma: Multiaddr, options: DialTransportOptions) {
    options.signal?.throwIfAborted()
    const comps = ma.getComponents()
    const direct = isSimWebrtc(ma)
    const key = direct ? comps.findLast((c) => c.name === 'p2p')?.value : `/memory/${comps[0]?.value}`
    const listener = key == null ? undefined : switchboard.get(key)
    const port = key == null || listener != null ? undefined : exchange.remoteKeys.get(key)
    if (key == null || (listener == null && port == null)) throw new ConnectionFailedError(`no simulated peer listens for ${ma.toString()}`)
    const self = this.#components.peerId.toString()
    const log = this.#components.logger.forComponent('zerostate:sim-link')
    const outbound = new SimLinkConnection({ remoteAddr: ma, direction: 'outbound', log })
    const back = direct ? `${this.#init.relay}/p2p-circuit/webrtc/p2p/${self}` : `${key}-outgoing/p2p/${self}`
    // The handshake costs a round trip before either side sees the link (ICE + DTLS take more).
    await new Promise((resolve) => setTimeout(resolve, this.#shape.latencyMs * 2))
    if (listener != null) {
      const inbound = new SimLinkConnection({ remoteAddr: multiaddr(back), direction: 'inbound', log })
      outbound.join(inbound, this.#shape, this.#random)
      inbound.join(outbound, this.#shape, this.#random)
      listener.accept(inbound, direct ? back : undefined)
    } else if (port != null) {
      const id = `${exchange.thread}:${exchange.next++}`
      outbound.joinRemote(port, id, this.#shape, this.#random)
      port.postMessage({ t: 'dial', id, key, back, direct })
    }
    try {
      return await options.upgrader.upgradeOutbound(outbound, { ...options, ...directUpgrade(direct ? ma.toString() : undefined) })
    } catch (err) {
      outbound.abort(err as Error)
      throw err
    }
  }

  createListener(options: CreateListenerOptions): Listener {
    return new SimListener(this.#components, this.#init, options)
  }

  listenFilter = (addrs: Multiaddr[]): Multiaddr[] => addrs.filter((ma) => ma.toString() === '/webrtc' || (isMemory(ma) && ma.getComponents().length === 1))
  dialFilter = (addrs: Multiaddr[]): Multiaddr[] => addrs.filter((ma) => isSimWebrtc(ma) || isMemory(ma))
}

/**
 * A direct link is not encrypted by a Noise handshake: like @libp2p/webrtc between two
 * browsers (DTLS encrypts the data channels in the browser's network stack, and the peer
 * ids are those the relay's signalling named), the upgrade skips encryption and takes the
 * remote peer id from the address (the target's for the dialler, the dialler's `back`
 * address for the target), and its streams are channels (channels.ts), not yamux over
 * one byte stream. The relay link stays on Noise and yamux, like a tab's WebSocket.
 */
function directUpgrade(addr: string | undefined): { skipEncryption: true; remotePeer: PeerId; muxerFactory: StreamMuxerFactory } | Record<string, never> {
  if (addr == null) return {}
  const id = multiaddr(addr)
    .getComponents()
    .findLast((c) => c.name === 'p2p')?.value
  if (id == null) throw new ConnectionFailedError(`a direct link's address names no peer: ${addr}`)
  return { skipEncryption: true, remotePeer: peerIdFromString(id), muxerFactory: channelMuxers }
}

function shapeOf(init: LinkShape): Required<LinkShape> {
  return { latencyMs: init.latencyMs ?? 20, jitterMs: init.jitterMs ?? 10, loss: init.loss ?? 0.01, retransmitMs: init.retransmitMs ?? 200 }
}

/** The simulated transport, in the js-libp2p factory shape. */
export function simLink(init: SimLinkInit): (components: SimComponents) => Transport {
  return (components) => new SimLinkTransport(components, init)
}
