/** The mesh layer: libp2p node, protocols' framing, discovery, peer book, identity. */
export { MeshNode, type MeshNodeInit, type RelayStatus } from './node.ts'
export { PeerBook, Transport, connectionTransport, bestTransport, type PeerInfo } from './peer-book.ts'
export { PresenceSchema, decodePresence, encodePresence, defaultRegion, type Presence } from './presence.ts'
export { defineProtocol, framed, DEFAULT_MAX_FRAME_BYTES, type FramedStream, type ProtocolDefinition } from './framing.ts'
export * from './errors.ts'
export * from './constants.ts'
export { Counters } from './metrics.ts'
export { backoffDelay } from './backoff.ts'
export { logger, type Logger } from './logger.ts'
export {
  loadIdentity, signJson, verifyJson, canonicalBytes, toPublicKeyString,
  MemoryKeyStore, IndexedDbKeyStore, type Identity, type KeyStore, type PublicKeyString
} from './identity.ts'
