/**
 * Errors of the mesh layer. One subclass per failure, each with a stable `name`
 * (errors cross workers and the wire by name) and a sentence a user can act on.
 */
import { ZeroStateError } from '../core/index.ts'

// Moved to core (the codec and identity live there); re-exported so old imports keep working.
export { InvalidFrameError, FrameTooLargeError, StreamEndedError, InvalidSignatureError } from '../core/index.ts'

export class MeshError extends ZeroStateError {
  override readonly name: string = 'MeshError'
  static override readonly defaultMessage: string = 'The mesh failed'
}

/** No relay could be reached (all listed relays failed). */
export class RelayUnreachableError extends MeshError {
  override readonly name: string = 'RelayUnreachableError'
  static override readonly defaultMessage: string = 'No relay could be reached; retrying with backoff. Peers already connected keep working.'
}

/** The peer is not connected, so it cannot be pinged or dialled on an open connection. */
export class PeerNotConnectedError extends MeshError {
  override readonly name: string = 'PeerNotConnectedError'
  static override readonly defaultMessage: string = 'That peer is not connected'
}

/** The node has not started, or has stopped. */
export class NotStartedError extends MeshError {
  override readonly name: string = 'NotStartedError'
  static override readonly defaultMessage: string = 'The mesh node is not running'
}

/** A direct dial made no progress for a while (a step of the WebRTC upgrade stalled): abandoned and retried. */
export class DialStalledError extends MeshError {
  override readonly name: string = 'DialStalledError'
  static override readonly defaultMessage: string = 'The direct dial made no progress and was abandoned'
}

/** This side's dial yielded to the other side's, already under way (one handshake per pair): not a failure. */
export class DialYieldedError extends MeshError {
  override readonly name: string = 'DialYieldedError'
  static override readonly defaultMessage: string = 'The direct dial gave way to the peer dialling this tab'
}
