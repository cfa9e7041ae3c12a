/**
 * `TaskTransport` over libp2p: one long-lived `/zerostate/task/1.0.0` stream per
 * peer, reused for every request (FIELD-NOTES: a round trip on an open stream is
 * ~1 ms, a new stream ~5.5 ms). Requests are told apart by their `rid`.
 */
import type { Stream } from '@libp2p/interface'
import type { StreamHost } from '../../core/index.ts'
import { framed, type FramedStream } from '../../core/index.ts'
import { FrameTimeoutError } from '../../core/index.ts'
import { InvalidFrameError, FrameTooLargeError, type StrikeSink } from '../../mesh/index.ts'
import { logger } from '../../core/index.ts'
import { PeerUnavailableError, toError } from '../errors.ts'
import { TASK_PROTOCOL_ID, taskProtocolDefinition, type TaskMessage, type TaskMessageSchema } from './task-protocol.ts'
import { PeerClosedEvents, type TaskMessageHandler, type TaskTransport } from './task-transport.ts'

const log = logger('orchestrator:libp2p-transport')

export type { StreamHost } from '../../core/index.ts'

/** Components of the libp2p task transport. */
export interface Libp2pTaskTransportComponents {
  host: StreamHost
  /** Where invalid frames are reported (the mesh's strike policy, issue 11). */
  strikes?: StrikeSink
}

/** Options. */
export interface Libp2pTaskTransportInit {
  /** Invalid frames tolerated per stream before it is closed. Default 5. */
  maxInvalidFrames?: number
  /** Deadline to open a stream. Default 5000 ms. */
  openTimeoutMs?: number
  /** Once a frame began, the rest must arrive within this, or it is a strike. Default 10 s (core framing). */
  frameTimeoutMs?: number
}

interface Channel {
  peer: string
  f: FramedStream<typeof TaskMessageSchema>
  writing: Promise<void>
  open: boolean
}

/** `TaskTransport` on long-lived libp2p streams. */
/** The libp2p task transport as a service, `libp2pTaskTransport(init)(components)`. */
export function libp2pTaskTransport(init: Libp2pTaskTransportInit = {}): (components: Libp2pTaskTransportComponents) => Libp2pTaskTransport {
  return (components) => new Libp2pTaskTransport(components, init)
}

export class Libp2pTaskTransport implements TaskTransport {
  readonly #host: StreamHost
  readonly #init: Libp2pTaskTransportInit
  readonly #channels = new Map<string, Channel[]>()
  readonly #opening = new Map<string, Promise<Channel>>()
  readonly #handlers = new Set<TaskMessageHandler>()
  readonly #closed = new PeerClosedEvents()
  #started = false
  /** The strike policy peers are reported to. */
  readonly strikes: StrikeSink | undefined
  /** Frames dropped (invalid, or a handler threw). */
  dropped = 0

  constructor(components: Libp2pTaskTransportComponents, init: Libp2pTaskTransportInit = {}) {
    this.#host = components.host
    this.strikes = components.strikes
    this.#init = init
  }

  get self(): string {
    return this.#host.peerId
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    await this.#host.handle(TASK_PROTOCOL_ID, (stream, peer) => {
      this.#attach(stream, peer)
    })
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    await this.#host.unhandle(TASK_PROTOCOL_ID)
    for (const list of this.#channels.values()) for (const c of list) this.#close(c, false)
    this.#channels.clear()
  }

  async send(peer: string, message: TaskMessage, opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (!this.#started) throw new PeerUnavailableError('the task transport is stopped')
    const ch = await this.#channel(peer, opts.signal)
    const write = ch.writing.then(async () => {
      await ch.f.write(message, { signal: opts.signal })
    })
    ch.writing = write.catch(() => {})
    try {
      await write
    } catch (err) {
      if (err instanceof InvalidFrameError) throw err
      this.#close(ch, true)
      throw new PeerUnavailableError(`sending to ${peer} failed: ${toError(err).message}`, { cause: err })
    }
  }

  async connect(peer: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (!this.#started) throw new PeerUnavailableError('the task transport is stopped')
    await this.#channel(peer, opts.signal)
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

  async #channel(peer: string, signal?: AbortSignal): Promise<Channel> {
    const existing = this.#channels.get(peer)?.find((c) => c.open)
    if (existing != null) return existing
    let pending = this.#opening.get(peer)
    if (pending == null) {
      const timeout = AbortSignal.timeout(this.#init.openTimeoutMs ?? 5000)
      pending = this.#host
        .openStream(peer, TASK_PROTOCOL_ID, { signal: signal != null ? AbortSignal.any([signal, timeout]) : timeout })
        .then((stream) => this.#attach(stream, peer))
        .catch((err: unknown) => {
          throw new PeerUnavailableError(`could not open a task stream to ${peer}: ${toError(err).message}`, { cause: err })
        })
        .finally(() => {
          this.#opening.delete(peer)
        })
      this.#opening.set(peer, pending)
    }
    return await pending
  }

  #attach(stream: Stream, peer: string): Channel {
    const ch: Channel = {
      peer,
      f: framed(stream, taskProtocolDefinition, {
        frameTimeoutMs: this.#init.frameTimeoutMs,
        onInvalid: (err) => this.strikes?.strike(peer, 'task', err.name)
      }),
      writing: Promise.resolve(),
      open: true
    }
    const list = this.#channels.get(peer) ?? []
    list.push(ch)
    this.#channels.set(peer, list)
    void this.#readLoop(ch)
    return ch
  }

  async #readLoop(ch: Channel): Promise<void> {
    let invalid = 0
    const max = this.#init.maxInvalidFrames ?? 5
    while (ch.open) {
      let m: TaskMessage
      try {
        m = await ch.f.read()
      } catch (err) {
        // After a frame that is too large or stalled the stream is out of step: close it.
        if (err instanceof InvalidFrameError && !(err instanceof FrameTooLargeError || err instanceof FrameTimeoutError) && ++invalid <= max) {
          this.dropped++
          log('dropped an invalid frame from %s: %s', ch.peer, err.message)
          continue
        }
        if (err instanceof InvalidFrameError) {
          this.dropped++
          log('closing the stream of %s after bad frames', ch.peer)
        }
        this.#close(ch, true)
        return
      }
      for (const h of this.#handlers) {
        try {
          h(ch.peer, m)
        } catch (err) {
          this.dropped++
          log.error('task handler threw: %s', toError(err).message)
        }
      }
    }
  }

  #close(ch: Channel, notify: boolean): void {
    if (!ch.open) return
    ch.open = false
    try {
      ch.f.stream.abort(new Error('task stream closed'))
    } catch {}
    const list = (this.#channels.get(ch.peer) ?? []).filter((c) => c !== ch)
    if (list.length > 0) this.#channels.set(ch.peer, list)
    else this.#channels.delete(ch.peer)
    if (notify && list.length === 0 && this.#started) {
      this.#closed.emit(ch.peer)
    }
  }
}
