/**
 * The network under the sync provider, as an interface (STYLE.md "Parts that plug
 * in"): peers come and go, and either side opens a duplex channel per peer + doc.
 * Implementations: `Libp2pSyncTransport` (real mesh) and `MemorySyncTransport`
 * (tests); both run the one conformance suite in `sync-transport-conformance.ts`.
 */
import type { SyncMessage } from './sync-protocol.ts'

/** A peer joined (an unlimited connection that speaks our protocol) or left. */
export interface PeerEvent {
  type: 'join' | 'leave'
  peer: string
}

/** One duplex, ordered channel of sync messages with one peer about one doc. */
export interface SyncChannel extends AsyncIterable<SyncMessage> {
  readonly peer: string
  readonly doc: string
  /** True once either side closed it or the peer left. */
  readonly closed: boolean
  /** Send one message; rejects if the channel is closed. Messages arrive in order. */
  send(message: SyncMessage): Promise<void>
  /**
   * Close both directions; the other side's iteration ends. Idempotent. `reset`: the peer is
   * refused (an invalid frame, a refused transfer): its stream is reset rather than closed, so
   * it is told at once to stop sending and what it still sends is dropped by the transport,
   * never buffered or read (a graceful close only ends our side: a peer that does not read kept
   * writing the rest of a refused 7 MB transfer into the tab).
   */
  close(options?: { reset?: boolean }): void
}

/** Receives inbound channels for a doc. */
export type ChannelHandler = (channel: SyncChannel) => void
/** Asked about inbound channels for a doc nobody handles; return true once it has taken the channel. */
export type UnknownDocHandler = (channel: SyncChannel) => boolean

/** The network as the sync provider sees it. */
export interface SyncTransport {
  /** This peer's id. */
  readonly localPeer: string
  /** Idempotent. */
  start(): Promise<void>
  /** Idempotent; closes every channel. */
  stop(): Promise<void>
  /** Peers we can sync with now. */
  peers(): string[]
  /** Listen for joins and leaves; returns the unsubscribe function. */
  onPeer(listener: (event: PeerEvent) => void): () => void
  /** Route inbound channels for `doc` to `handler`; returns the unregister function. */
  handle(doc: string, handler: ChannelHandler): () => void
  /** Where inbound channels for unhandled docs go (else they are closed). */
  onUnknownDoc(handler: UnknownDocHandler | undefined): void
  /** Open a channel to `peer` about `doc`. */
  open(peer: string, doc: string, options?: { signal?: AbortSignal }): Promise<SyncChannel>
  /**
   * Disconnect a peer that misbehaves (the mesh's decision is final). `offence` names it for
   * the strike policy (default `RepeatedOffence`).
   */
  hangUp(peer: string, reason: string, offence?: string): Promise<void>
  /** Counters (bytes in/out, invalid frames, …). */
  metrics(): Record<string, number>
}

/**
 * The receiving half of a channel: an unbounded FIFO that async iteration drains,
 * ending when `end()` is called. Shared by both transports.
 */
export class MessageQueue implements AsyncIterable<SyncMessage> {
  readonly #items: SyncMessage[] = []
  #waiter: PromiseWithResolvers<void> | undefined
  #ended = false

  get ended(): boolean {
    return this.#ended
  }

  push(message: SyncMessage): void {
    if (this.#ended) return
    this.#items.push(message)
    this.#waiter?.resolve()
  }

  end(): void {
    this.#ended = true
    this.#waiter?.resolve()
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SyncMessage> {
    while (true) {
      const next = this.#items.shift()
      if (next !== undefined) {
        yield next
        continue
      }
      if (this.#ended) return
      this.#waiter = Promise.withResolvers<void>()
      await this.#waiter.promise
      this.#waiter = undefined
    }
  }
}
