/**
 * What every layer shares and nothing else: the error base, the logger, counters,
 * the protocol codec (framing), signing identity, backoff, the stream host shape.
 * Imports nothing of ours (STYLE.md "The shape of the house").
 */
export { ZeroStateError, CoreError, InvalidFrameError, FrameTooLargeError, StreamEndedError, InvalidSignatureError } from './errors.ts'
export { logger, type Logger } from './logger.ts'
export { Counters } from './metrics.ts'
export { backoffDelay } from './backoff.ts'
export {
  TypedEventEmitter,
  ChangeNotifier,
  listen,
  coalesce,
  type TypedEventTarget,
  type EventMap,
  type ListenOptions,
  type Coalesced,
  type CoalesceInit,
  type ChangeEvents,
  type ChangeNotifierInit
} from './events.ts'
export { defineProtocol, framed, DEFAULT_MAX_FRAME_BYTES, type FramedStream, type ProtocolDefinition } from './framing.ts'
export type { StreamHost } from './stream-host.ts'
export {
  loadIdentity,
  signJson,
  verifyJson,
  canonicalBytes,
  toPublicKeyString,
  MemoryKeyStore,
  IndexedDbKeyStore,
  type Identity,
  type KeyStore,
  type PublicKeyString
} from './identity.ts'
