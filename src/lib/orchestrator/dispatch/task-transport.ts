/**
 * How task messages travel between peers. Implementations: `MemoryTaskTransport`
 * (tests, with injectable faults) and `Libp2pTaskTransport` (one long-lived
 * stream per peer). Both pass `task-transport-conformance.ts`.
 */
import { TypedEventEmitter, listen, logger } from '../../core/index.ts'
import type { StrikeSink } from '../../mesh/index.ts'
import type { TaskMessage } from './task-protocol.ts'

const log = logger('orchestrator:task-transport')

/** A handler of incoming messages. Must not throw (a throw is caught, logged and counted). */
export type TaskMessageHandler = (from: string, message: TaskMessage) => void

/** Sends and receives task-protocol messages. */
export interface TaskTransport {
  /** This peer's id. */
  readonly self: string
  /**
   * Send a message to a peer. Resolves when handed to the connection; rejects
   * with `PeerUnavailableError` when the peer cannot be reached.
   */
  send(peer: string, message: TaskMessage, opts?: { signal?: AbortSignal }): Promise<void>
  /**
   * Open (or reuse) the channel to a peer without sending anything, so a later `send` finds it open:
   * a submitter opens it while the task's plan is being saved. Optional; rejects like `send`.
   */
  connect?(peer: string, opts?: { signal?: AbortSignal }): Promise<void>
  /** Listen for messages; returns the unsubscribe function. */
  onMessage(handler: TaskMessageHandler): () => void
  /** Called when the connection to a peer closes (pending requests to it are lost). */
  onPeerClosed(handler: (peer: string) => void): () => void
  start(): Promise<void>
  stop(): Promise<void>
  /** Where services on this transport report misbehaving peers (issue 11), if anywhere. */
  readonly strikes?: StrikeSink
}

/**
 * "This peer's last channel closed", told through core's typed event target; both
 * transports use it for `onPeerClosed`.
 */
export class PeerClosedEvents {
  readonly #events = new TypedEventEmitter<{ 'peer-closed': CustomEvent<string> }>()

  /** Add a handler; returns the function that removes it. A handler that throws is logged. */
  on(handler: (peer: string) => void): () => void {
    return listen(this.#events, 'peer-closed', (e) => handler(e.detail), {
      onError: (err) => {
        log.error('peer-closed handler threw: %s', (err as Error)?.message)
      }
    })
  }

  emit(peer: string): void {
    this.#events.safeDispatchEvent('peer-closed', { detail: peer })
  }
}
