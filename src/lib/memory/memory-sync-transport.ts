/**
 * An in-process {@link SyncTransport} for tests: transports attached to one
 * {@link MemoryNetwork} see each other as peers. With `chaos`, messages after the
 * `open` are delivered late, out of order and sometimes twice, to prove that the
 * provider converges whatever the network does. With `latencyMs`, every message takes that
 * long, in order (a line of peers a few hops long, as in a bench). The network counts the
 * payload messages and bytes each directed link carried (`traffic`), for tests of forwarding.
 */
import { MessageQueue, type ChannelHandler, type PeerEvent, type SyncChannel, type SyncTransport, type UnknownDocHandler } from './sync-transport.ts'
import { syncProtocol, type SyncMessage } from './sync-protocol.ts'
import { Counters, StreamEndedError, TypedEventEmitter, listen } from '../core/index.ts'

/** Network misbehaviour for tests. */
export interface ChaosOptions {
  /** Probability that a message is delivered a second time. */
  duplicate?: number
  /** Deliver each message after a random delay up to this many ms (so out of order). */
  maxDelayMs?: number
  /** Seed of the deterministic random generator. */
  seed?: number
}

/** The shared medium of a set of {@link MemorySyncTransport}s. */
export class MemoryNetwork {
  readonly members = new Map<string, MemorySyncTransport>()
  /**
   * Per directed link `from>to`: the `step2` and `update` messages sent on it (a chunked
   * payload counts once) and the bytes of every message (JSON, as `bytesOut` counts them).
   */
  readonly traffic = new Map<string, { payloads: number; bytes: number }>()
  readonly #links = new Set<string>()
  readonly #autoLink: boolean
  constructor(opts: { autoLink?: boolean } = {}) {
    this.#autoLink = opts.autoLink ?? true
  }

  static #key(a: string, b: string): string {
    return a < b ? `${a}|${b}` : `${b}|${a}`
  }
  linked(a: string, b: string): boolean {
    return this.#links.has(MemoryNetwork.#key(a, b))
  }

  /** Connect two started transports. */
  link(a: string, b: string): void {
    const ta = this.members.get(a)
    const tb = this.members.get(b)
    if (ta == null || tb == null || a === b || this.linked(a, b)) return
    this.#links.add(MemoryNetwork.#key(a, b))
    ta._peerEvent({ type: 'join', peer: b })
    tb._peerEvent({ type: 'join', peer: a })
  }

  /** Link each consecutive pair of `ids` (a line; `ring` closes it), the transports started already. */
  chain(ids: readonly string[], ring = false): void {
    for (let i = 1; i < ids.length; i++) this.link(ids[i - 1]!, ids[i]!)
    if (ring && ids.length > 2) this.link(ids[ids.length - 1]!, ids[0]!)
  }

  /** @internal Count one message on the directed link `from>to`. */
  _count(from: string, to: string, msg: SyncMessage, bytes: number): void {
    const key = `${from}>${to}`
    const t = this.traffic.get(key) ?? { payloads: 0, bytes: 0 }
    if (msg.type === 'step2' || msg.type === 'update') t.payloads++
    t.bytes += bytes
    this.traffic.set(key, t)
  }

  /** Disconnect two transports; their channels close. */
  unlink(a: string, b: string): void {
    if (!this.#links.delete(MemoryNetwork.#key(a, b))) return
    this.members.get(a)?._peerEvent({ type: 'leave', peer: b })
    this.members.get(b)?._peerEvent({ type: 'leave', peer: a })
  }

  /** @internal */
  _attach(t: MemorySyncTransport): void {
    this.members.set(t.localPeer, t)
    if (this.#autoLink) for (const other of this.members.keys()) this.link(t.localPeer, other)
  }

  /** @internal */
  _detach(t: MemorySyncTransport): void {
    for (const other of [...this.members.keys()]) this.unlink(t.localPeer, other)
    this.members.delete(t.localPeer)
  }
}

class MemoryChannel implements SyncChannel {
  readonly queue = new MessageQueue()
  remote: MemoryChannel | undefined
  constructor(
    readonly peer: string,
    readonly doc: string,
    readonly owner: MemorySyncTransport
  ) {}
  get closed(): boolean {
    return this.queue.ended
  }
  [Symbol.asyncIterator](): AsyncIterator<SyncMessage> {
    return this.queue[Symbol.asyncIterator]()
  }
  async send(message: SyncMessage): Promise<void> {
    if (this.closed || this.remote == null) throw new StreamEndedError('sync channel closed')
    // Check like the wire would (same errors as Libp2pSyncTransport): only schema-valid messages travel.
    const checked = syncProtocol.decode(syncProtocol.encode(message))
    const remote = this.remote
    const bytes = JSON.stringify(checked).length
    this.owner._counters.inc('bytesOut', bytes)
    this.owner._network._count(this.owner.localPeer, this.peer, checked, bytes)
    this.owner._deliver(() => {
      if (!remote.closed) {
        remote.owner._counters.inc('bytesIn', bytes)
        remote.queue.push(checked)
      }
    })
  }
  close(): void {
    if (this.closed) return
    this.queue.end()
    this.owner._channels.delete(this)
    const remote = this.remote
    if (remote != null) this.owner._deliver(() => remote.close(), true)
  }
}

/** An in-memory {@link SyncTransport}. */
export class MemorySyncTransport implements SyncTransport {
  readonly localPeer: string
  /** @internal */ readonly _network: MemoryNetwork
  readonly #chaos: ChaosOptions
  readonly #latencyMs: number
  #rand: number
  #started = false
  readonly #peers = new Set<string>()
  /** Peers joining and leaving, on the one typed event target of core. */
  readonly #events = new TypedEventEmitter<{ peer: CustomEvent<PeerEvent> }>()
  readonly #handlers = new Map<string, ChannelHandler>()
  #unknown: UnknownDocHandler | undefined
  /** @internal */ readonly _channels = new Set<MemoryChannel>()
  /** @internal */ readonly _counters = new Counters('sync')
  /** Peers this transport hung up on, with the reason (for tests). */
  readonly hungUp: Array<{ peer: string; reason: string; offence?: string }> = []

  /** `latencyMs`: every delivery (messages and closes, in order) takes this long; ignored with `chaos.maxDelayMs`. */
  constructor(network: MemoryNetwork, peerId: string, opts: { chaos?: ChaosOptions; latencyMs?: number } = {}) {
    this._network = network
    this.localPeer = peerId
    this.#chaos = opts.chaos ?? {}
    this.#latencyMs = opts.latencyMs ?? 0
    this.#rand = (this.#chaos.seed ?? 1) >>> 0 || 1
  }

  #random(): number {
    // xorshift32: deterministic chaos per seed.
    let x = this.#rand
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.#rand = x >>> 0
    return this.#rand / 0x1_0000_0000
  }

  /** @internal Schedule a delivery, with chaos unless `ordered`. */
  _deliver(fn: () => void, ordered = false): void {
    const { maxDelayMs = 0, duplicate = 0 } = this.#chaos
    if (this.#latencyMs > 0 && maxDelayMs <= 0) {
      // Timers of one delay fire in the order they were set: the link stays ordered.
      setTimeout(fn, this.#latencyMs)
      if (!ordered && this.#random() < duplicate) setTimeout(fn, this.#latencyMs)
      return
    }
    if (ordered || maxDelayMs <= 0) {
      queueMicrotask(fn)
      if (!ordered && this.#random() < duplicate) queueMicrotask(fn)
      return
    }
    setTimeout(fn, this.#random() * maxDelayMs)
    if (this.#random() < duplicate) setTimeout(fn, this.#random() * maxDelayMs)
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    this._network._attach(this)
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    this._network._detach(this)
    for (const ch of [...this._channels]) ch.close()
  }

  peers(): string[] {
    return [...this.#peers]
  }

  onPeer(listener: (event: PeerEvent) => void): () => void {
    return listen(this.#events, 'peer', (e) => listener(e.detail), { onError: (err) => this.#listenerError(err) })
  }

  handle(doc: string, handler: ChannelHandler): () => void {
    this.#handlers.set(doc, handler)
    return () => {
      if (this.#handlers.get(doc) === handler) this.#handlers.delete(doc)
    }
  }

  onUnknownDoc(handler: UnknownDocHandler | undefined): void {
    this.#unknown = handler
  }

  async open(peer: string, doc: string): Promise<SyncChannel> {
    const remote = this._network.members.get(peer)
    if (!this.#started || remote == null || !this._network.linked(this.localPeer, peer)) throw new StreamEndedError(`not connected to ${peer}`)
    const local = new MemoryChannel(peer, doc, this)
    const far = new MemoryChannel(this.localPeer, doc, remote)
    local.remote = far
    far.remote = local
    this._channels.add(local)
    remote._channels.add(far)
    queueMicrotask(() => remote._accept(far))
    return local
  }

  /** @internal */
  _accept(channel: MemoryChannel): void {
    if (channel.closed) return
    const handler = this.#handlers.get(channel.doc)
    if (handler != null) {
      handler(channel)
      return
    }
    if (this.#unknown?.(channel) === true) return
    channel.close()
  }

  /** @internal */
  _peerEvent(event: PeerEvent): void {
    if (event.type === 'join') this.#peers.add(event.peer)
    else {
      this.#peers.delete(event.peer)
      for (const ch of [...this._channels]) if (ch.peer === event.peer) ch.close()
    }
    this.#events.safeDispatchEvent('peer', { detail: event })
  }

  #listenerError(_err: unknown): void {
    this._counters.inc('listenerErrors')
  }

  async hangUp(peer: string, reason: string, offence?: string): Promise<void> {
    this.hungUp.push({ peer, reason, offence })
    this._network.unlink(this.localPeer, peer)
  }

  metrics(): Record<string, number> {
    return this._counters.toRecord()
  }
}
