/** The mesh layer: the libp2p node, discovery, presence, peer book. */
export { MeshNode, type MeshNodeInit, type RelayStatus } from './node.ts'
export { PeerBook, Transport, connectionTransport, bestTransport, type PeerInfo } from './peer-book.ts'
export { PresenceSchema, decodePresence, encodePresence, defaultRegion, type Presence } from './presence.ts'
export * from './errors.ts'
export * from './constants.ts'
