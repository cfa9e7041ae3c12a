/**
 * The public API: `createZeroState(options)` returns the one object the UI, the
 * console (`window.zerostate`), the tests and other tools use (shared/design/API.md).
 */
import { IndexedDbKeyStore, MemoryKeyStore, MeshNode, loadIdentity, type Identity, type MeshNodeInit, type PeerInfo, type RelayStatus } from './mesh/index.ts'

export type { PeerInfo, RelayStatus, MeshNodeInit, Identity }

/** Options of `createZeroState`. */
export interface ZeroStateOptions {
  mesh?: MeshNodeInit
  /** Keep the signing identity in IndexedDB (browser) or only in memory. Default: IndexedDB when available. */
  persistIdentity?: boolean
}

/** The automation contract (shared/design/API.md), extended. */
export interface ZeroStateApi {
  /** Resolves once the node has started and has reached the relay or a peer. */
  ready: Promise<void>
  peerId: string
  /** The user's long-lived signing key (`ed25519:…`), the same in every tab of this profile. */
  publicKey: string
  peers(): PeerInfo[]
  ping(peerId: string): Promise<number>
  /** The link to the bootstrap relays. */
  relayStatus(): RelayStatus
  metrics(): Record<string, number>
  /** Subscribe to changes of peers, status and metrics (for the UI). */
  subscribe(listener: () => void): () => void
  /** The mesh node, for protocols built on it. */
  readonly mesh: MeshNode
  stop(): Promise<void>
}

/** Start a mesh peer in this tab (or Node) and return its API. */
export async function createZeroState(options: ZeroStateOptions = {}): Promise<ZeroStateApi> {
  const persist = options.persistIdentity ?? typeof indexedDB !== 'undefined'
  // The node does not need the signing key to join: load both at once (join time).
  const mesh = new MeshNode(options.mesh)
  const [identity] = await Promise.all([
    loadIdentity(persist ? new IndexedDbKeyStore() : new MemoryKeyStore()),
    mesh.start()
  ])
  mesh.setPresence({ publicKey: identity.publicKey })
  const api: ZeroStateApi = {
    ready: mesh.ready,
    peerId: mesh.peerId,
    publicKey: identity.publicKey,
    peers: () => mesh.peers(),
    ping: (peerId) => mesh.ping(peerId),
    relayStatus: () => mesh.status,
    metrics: () => ({ ...mesh.metrics() }),
    subscribe(listener) {
      mesh.addEventListener('change', listener)
      return () => { mesh.removeEventListener('change', listener) }
    },
    mesh,
    stop: () => mesh.stop()
  }
  return api
}
