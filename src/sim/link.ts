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
  type Transport,
  type Upgrader
} from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { AbstractMultiaddrConnection, type AbstractMultiaddrConnectionInit } from '@libp2p/utils'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { setMaxListeners } from 'node:events'
import type { MessagePort } from 'node:worker_threads'

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

/** Bytes and chunks that crossed links in this process, and chunks resent. */
export const linkStats = { chunks: 0, bytes: 0, resent: 0 }

/** This thread's switchboard: peer id (direct links) or `/memory/<name>` (the relay) → its listener. */
const switchboard = new Map<string, SimListener>()

/**
 * What this thread's links need from other threads (the simulator spreads peers over
 * worker threads): a MessagePort to each other thread, the listener keys each one holds,
 * and this thread's ends of links that cross a port, by link id. A lane applies the delay
 * on the sending side, then the bytes cross the port (in order, transferred, ~0.1 ms).
 */
type Port = MessagePort
type ExchangeMessage =
  | { t: 'listen'; key: string }
  | { t: 'unlisten'; key: string }
  | { t: 'dial'; id: string; key: string; back: string; direct?: boolean }
  | { t: 'refused'; id: string }
  | { t: 'data'; id: string; data: Uint8Array }
  | { t: 'close'; id: string }
  | { t: 'reset'; id: string }
const exchange = {
  thread: 'main',
  ports: [] as Port[],
  remoteKeys: new Map<string, Port>(),
  links: new Map<string, SimLinkConnection>(),
  next: 0
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
    default: {
      const conn = exchange.links.get(msg.id)
      if (conn == null || conn.status !== 'open') return
      if (msg.t === 'data') {
        linkStats.chunks++
        linkStats.bytes += msg.data.byteLength
        conn.onData(msg.data)
      } else if (msg.t === 'reset') conn.onRemoteReset()
      else conn.onTransportClosed()
    }
  }
}

/** What crosses a lane: bytes, or the sender's close or reset. */
export type Item = { at: number; data?: Chunk | Uint8Array; close?: true; reset?: true }

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

/** One direction of a link: a FIFO that delivers each item no earlier than its time, never out of order. */
export class Lane {
  readonly #queue: Item[] = []
  #timer: ReturnType<typeof setTimeout> | undefined
  #last = 0
  constructor(
    readonly shape: Required<LinkShape>,
    readonly random: () => number,
    readonly deliver: (item: Item) => void
  ) {}

  push(item: Omit<Item, 'at'>): void {
    const s = this.shape
    let at = performance.now() + s.latencyMs + this.random() * s.jitterMs
    if (item.data != null && s.loss > 0 && this.random() < s.loss) {
      at += s.retransmitMs
      linkStats.resent++
    }
    at = Math.max(at, this.#last)
    this.#last = at
    this.#queue.push({ ...item, at })
    this.#arm()
  }

  #arm(): void {
    if (this.#timer != null || this.#queue.length === 0) return
    const head = this.#queue[0] as Item
    this.#timer = setTimeout(() => this.#drain(), Math.max(0, Math.ceil(head.at - performance.now())))
  }

  /**
   * Deliver what is due. Consecutive chunks due together arrive as one buffer, as a
   * socket's read returns what arrived: a receiver handed thousands of tiny chunks pays for
   * each in its length-prefixed decoders (a Uint8ArrayList read walks its chunks).
   */
  #drain(): void {
    this.#timer = undefined
    const now = performance.now()
    const due: Item[] = []
    while (this.#queue.length > 0 && (this.#queue[0] as Item).at <= now) due.push(this.#queue.shift() as Item)
    let run: Array<Chunk | Uint8Array> = []
    const flush = (at: number): void => {
      if (run.length === 0) return
      this.deliver({ at, data: run.length === 1 ? run[0] : joinChunks(run) })
      run = []
    }
    for (const item of due) {
      if (item.data != null) run.push(item.data)
      else {
        flush(item.at)
        this.deliver(item)
      }
    }
    flush(now)
    this.#arm()
  }

  stop(): void {
    clearTimeout(this.#timer)
    this.#queue.length = 0
  }
}

/** One end of a simulated link. */
class SimLinkConnection extends AbstractMultiaddrConnection {
  #lane: Lane | undefined
  #peer: SimLinkConnection | undefined

  constructor(init: AbstractMultiaddrConnectionInit) {
    super(init)
  }

  join(peer: SimLinkConnection, shape: Required<LinkShape>, random: () => number): void {
    this.#peer = peer
    this.#lane = new Lane(shape, random, (item) => {
      if (peer.status !== 'open') return
      if (item.data != null) {
        linkStats.chunks++
        linkStats.bytes += item.data.byteLength
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
    this.#lane = new Lane(shape, random, (item) => {
      if (item.data != null) {
        const data = item.data instanceof Uint8Array ? item.data : item.data.subarray()
        const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer
        const out = own ? data : data.slice()
        port.postMessage({ t: 'data', id, data: out }, [out.buffer as ArrayBuffer])
      } else port.postMessage({ t: item.reset ? 'reset' : 'close', id })
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
 * address for the target). The relay link stays on Noise, like a tab's WebSocket.
 */
function directUpgrade(addr: string | undefined): { skipEncryption: true; remotePeer: PeerId } | Record<string, never> {
  if (addr == null) return {}
  const id = multiaddr(addr)
    .getComponents()
    .findLast((c) => c.name === 'p2p')?.value
  if (id == null) throw new ConnectionFailedError(`a direct link's address names no peer: ${addr}`)
  return { skipEncryption: true, remotePeer: peerIdFromString(id) }
}

function shapeOf(init: LinkShape): Required<LinkShape> {
  return { latencyMs: init.latencyMs ?? 20, jitterMs: init.jitterMs ?? 10, loss: init.loss ?? 0.01, retransmitMs: init.retransmitMs ?? 200 }
}

/** The simulated transport, in the js-libp2p factory shape. */
export function simLink(init: SimLinkInit): (components: SimComponents) => Transport {
  return (components) => new SimLinkTransport(components, init)
}
