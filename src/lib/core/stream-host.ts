import type { Stream } from '@libp2p/interface'

/** The slice of a libp2p node this transport needs (adapt `libp2p.handle` / `dialProtocol`). */
export interface StreamHost {
  /** This node's peer id. */
  readonly peerId: string
  handle(protocol: string, handler: (stream: Stream, remotePeer: string) => void): Promise<void>
  unhandle(protocol: string): Promise<void>
  /** Open a new stream on the existing (or a new) connection to `peer`. */
  openStream(peer: string, protocol: string, opts?: { signal?: AbortSignal }): Promise<Stream>
}

/**
 * Whether a stream open failed because the stream closed under its protocol negotiation: libp2p
 * then rejects with the stream's close event, not an Error (a data channel the other side never
 * took up, as on a link its dialler abandoned after this side had answered it).
 */
export function closedWhileOpening(err: unknown): err is Event & { error?: unknown } {
  return err instanceof Event && err.type === 'close'
}

/** That close event in words (it printed as `{"isTrusted":false,"error":{},"local":true}`): "closed before it opened" and the cause libp2p gave. */
export function closedWhileOpeningReason(ev: Event & { error?: unknown }): string {
  const inner = ev.error
  return `closed before it opened${inner instanceof Error && inner.message !== '' ? `: ${inner.message}` : ''}`
}
