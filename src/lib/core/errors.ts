/**
 * The base of every ZeroState error: a stable `name` (errors cross workers and the
 * wire by name) and a default sentence a user can act on, set per class with
 * `static defaultMessage` (STYLE.md "Errors"). Each layer has its own subclass
 * (MeshError, MemoryError, RuntimeError, OrchestratorError).
 *
 * Names are literal: each class declares `override readonly name = 'TheName'`, so the
 * name survives minification without the bundler's `keepNames`.
 */
export class ZeroStateError extends Error {
  static readonly defaultMessage: string = 'ZeroState failed'
  override readonly name: string = 'ZeroStateError'
  /** Type-only brand: keeps `instanceof` narrowing honest (a plain Error is not a ZeroStateError). */
  declare private readonly zeroStateBrand: true
  constructor(message?: string, options?: ErrorOptions) {
    super(message ?? (new.target as typeof ZeroStateError).defaultMessage, options)
  }
}

/** The shared parts' own failures (codec, signatures, workers). */
export class CoreError extends ZeroStateError {
  static override readonly defaultMessage: string = 'A shared part of ZeroState failed'
  override readonly name: string = 'CoreError'
}

/** A frame on one of our protocols was not valid: too large, not JSON, or not matching its schema. */
export class InvalidFrameError extends CoreError {
  static override readonly defaultMessage: string = 'A peer sent a message that is not valid for this protocol'
  override readonly name: string = 'InvalidFrameError'
}

/** A frame was larger than the protocol allows. */
export class FrameTooLargeError extends InvalidFrameError {
  static override readonly defaultMessage: string = 'A peer sent a message larger than this protocol allows'
  override readonly name: string = 'FrameTooLargeError'
}

/** A frame began but did not finish in time (a peer that sends half a frame and stalls). */
export class FrameTimeoutError extends InvalidFrameError {
  static override readonly defaultMessage: string = 'A peer started a message and did not finish it in time'
  override readonly name: string = 'FrameTimeoutError'
}

/** The stream ended before the expected frame arrived. */
export class StreamEndedError extends CoreError {
  static override readonly defaultMessage: string = 'The peer closed the stream before answering'
  override readonly name: string = 'StreamEndedError'
}

/** A signature did not verify, or a key could not be parsed. */
export class InvalidSignatureError extends CoreError {
  static override readonly defaultMessage: string = 'The signature does not match the data and public key'
  override readonly name: string = 'InvalidSignatureError'
}

/** A supervised worker's call failed because of the worker, not because of what it computed. */
export class WorkerError extends CoreError {
  static override readonly defaultMessage: string = 'A worker failed'
  override readonly name: string = 'WorkerError'
}

/** A worker call passed its deadline; the worker was terminated and replaced. */
export class WorkerTimeoutError extends WorkerError {
  static override readonly defaultMessage: string = 'The worker did not answer before the deadline and was stopped'
  override readonly name: string = 'WorkerTimeoutError'
}

/** The caller aborted a worker call; the worker was terminated and replaced. */
export class WorkerAbortedError extends WorkerError {
  static override readonly defaultMessage: string = 'The worker call was cancelled'
  override readonly name: string = 'WorkerAbortedError'
}

/** The worker died (or was terminated for another call) before it answered; it was replaced. */
export class WorkerCrashedError extends WorkerError {
  static override readonly defaultMessage: string = 'The worker crashed; it was replaced, try again'
  override readonly name: string = 'WorkerCrashedError'
}

/** The supervised worker was stopped before (or while) the call ran. */
export class WorkerStoppedError extends WorkerError {
  static override readonly defaultMessage: string = 'The worker is stopped'
  override readonly name: string = 'WorkerStoppedError'
}
