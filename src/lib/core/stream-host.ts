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
