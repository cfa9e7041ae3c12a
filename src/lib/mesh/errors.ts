/**
 * Errors of the mesh layer. One subclass per failure, each with a stable `name`
 * (errors cross workers and the wire by name) and a sentence a user can act on.
 */
import { ZeroStateError } from '../errors.ts'

export class MeshError extends ZeroStateError {
  static override readonly defaultMessage: string = 'The mesh failed'
}

/** A frame on one of our protocols was not valid: too large, not JSON, or not matching its schema. */
export class InvalidFrameError extends MeshError {
  static override readonly defaultMessage: string = 'A peer sent a message that is not valid for this protocol'
}

/** A frame was larger than the protocol allows. */
export class FrameTooLargeError extends InvalidFrameError {
  static override readonly defaultMessage: string = 'A peer sent a message larger than this protocol allows'
}

/** The stream ended before the expected frame arrived. */
export class StreamEndedError extends MeshError {
  static override readonly defaultMessage: string = 'The peer closed the stream before answering'
}

/** No relay could be reached (all listed relays failed). */
export class RelayUnreachableError extends MeshError {
  static override readonly defaultMessage: string = 'No relay could be reached; retrying with backoff. Peers already connected keep working.'
}

/** The peer is not connected, so it cannot be pinged or dialled on an open connection. */
export class PeerNotConnectedError extends MeshError {
  static override readonly defaultMessage: string = 'That peer is not connected'
}

/** The node has not started, or has stopped. */
export class NotStartedError extends MeshError {
  static override readonly defaultMessage: string = 'The mesh node is not running'
}

/** A signature did not verify, or a key could not be parsed. */
export class InvalidSignatureError extends MeshError {
  static override readonly defaultMessage: string = 'The signature does not match the data and public key'
}
