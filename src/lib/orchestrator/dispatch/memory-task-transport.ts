/**
 * An in-memory `TaskTransport` for tests: peers on one `MemoryTaskNetwork`,
 * messages JSON-copied and validated like on the wire, with injectable faults
 * (drop, delay, duplicate) and peer death.
 */
import { PeerUnavailableError } from '../errors.ts'
import { logger } from '../../core/index.ts'
import { parseTaskMessage, taskProtocolDefinition, type TaskMessage } from './task-protocol.ts'
import { PeerClosedEvents, type TaskMessageHandler, type TaskTransport } from './task-transport.ts'

const log = logger('orchestrator:memory-transport')

/** Faults applied to each message in flight (from, to, message). */
export interface MemoryFaults {
  /** Return true to lose the message. */
  drop?: (from: string, to: string, m: TaskMessage) => boolean
  /** Delay in ms before delivery. */
  delayMs?: (from: string, to: string, m: TaskMessage) => number
  /** Return true to deliver the message twice. */
  duplicate?: (from: string, to: string, m: TaskMessage) => boolean
}

/** Peers that can reach each other in memory. */
export class MemoryTaskNetwork {
  readonly #peers = new Map<string, MemoryTaskTransport>()
  /** Faults, changeable while a test runs. */
  faults: MemoryFaults = {}
  /** Messages delivered, by type (for assertions). */
  readonly delivered = new Map<string, number>()
  /** Every message sent, in order (from, to, message). */
  readonly log: Array<{ from: string; to: string; message: TaskMessage }> = []

  /** The transport of peer `id` (created on first call). */
  transport(id: string): MemoryTaskTransport {
    let t = this.#peers.get(id)
    if (t == null) {
      t = new MemoryTaskTransport(this, id)
      this.#peers.set(id, t)
    }
    return t
  }

  /** Peer `id` dies: it stops sending and receiving, and every other peer sees it close. */
  kill(id: string): void {
    const t = this.#peers.get(id)
    if (t == null) return
    t.dead = true
    this.#peers.delete(id)
    for (const other of this.#peers.values()) other.peerClosed(id)
  }

  /** @internal */
  deliver(from: string, to: string, message: TaskMessage): void {
    const target = this.#peers.get(to)
    if (target == null || target.dead || !target.started) throw new PeerUnavailableError(`peer ${to} is not reachable`)
    this.log.push({ from, to, message })
    if (this.faults.drop?.(from, to, message) === true) return
    const copies = this.faults.duplicate?.(from, to, message) === true ? 2 : 1
    const delay = this.faults.delayMs?.(from, to, message) ?? 0
    const wire = JSON.stringify(message)
    for (let i = 0; i < copies; i++) {
      setTimeout(() => {
        const t = this.#peers.get(to)
        const source = this.#peers.get(from)
        // A message in flight from a peer that died is lost with it.
        if (t == null || t.dead || source == null || source.dead) return
        this.delivered.set(message.type, (this.delivered.get(message.type) ?? 0) + 1)
        t.receive(from, JSON.parse(wire))
      }, delay)
    }
  }
}

/** One peer's end of a `MemoryTaskNetwork`. */
export class MemoryTaskTransport implements TaskTransport {
  readonly self: string
  readonly #net: MemoryTaskNetwork
  readonly #handlers = new Set<TaskMessageHandler>()
  readonly #closed = new PeerClosedEvents()
  /** @internal */ dead = false
  /** @internal */ started = false
  /** Messages dropped because they were invalid or a handler threw. */
  dropped = 0

  constructor(net: MemoryTaskNetwork, self: string) {
    this.#net = net
    this.self = self
  }

  async start(): Promise<void> {
    this.started = true
  }
  async stop(): Promise<void> {
    this.started = false
  }

  async send(peer: string, message: TaskMessage, opts: { signal?: AbortSignal } = {}): Promise<void> {
    opts.signal?.throwIfAborted()
    if (this.dead || !this.started) throw new PeerUnavailableError('this transport is stopped')
    // Same checks as the wire: schema and frame cap (throws InvalidFrameError / FrameTooLargeError).
    taskProtocolDefinition.encode(message)
    this.#net.deliver(this.self, peer, message)
  }

  onMessage(handler: TaskMessageHandler): () => void {
    this.#handlers.add(handler)
    return () => {
      this.#handlers.delete(handler)
    }
  }

  onPeerClosed(handler: (peer: string) => void): () => void {
    return this.#closed.on(handler)
  }

  /** @internal */
  receive(from: string, raw: unknown): void {
    if (!this.started) return
    const m = parseTaskMessage(raw)
    if (m == null) {
      this.dropped++
      return
    }
    for (const h of this.#handlers) {
      try {
        h(from, m)
      } catch (err) {
        this.dropped++
        log.error('handler threw: %s', (err as Error)?.message)
      }
    }
  }

  /** @internal */
  peerClosed(peer: string): void {
    this.#closed.emit(peer)
  }
}
