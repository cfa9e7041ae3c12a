/**
 * The tab's early start (issue 11: a new tab joins within 3 s). Joining the mesh needs
 * only the mesh node, the metrics registry libp2p reports into and the profile's signing
 * key; the rest of the app (memory, runtime, orchestrator, LLM engines, workflows) is
 * wiring that can load while the node dials. The UI's boot starts this from its own
 * small chunk, then loads the app and hands the started parts to `createZeroState({ early })`.
 *
 * This room imports the mesh and core only (scripts/check-layers.mjs); a test reads the
 * built app's manifest to check that the chunks loaded before it runs hold nothing else
 * (test/early-start.test.mjs).
 */
import { IndexedDbKeyStore, type Identity, type KeyStore, MemoryKeyStore, MetricsRegistry, loadIdentity } from '../../core/index.ts'
import { MeshNode, type MeshNodeInit } from '../../mesh/index.ts'
import { savedRegion } from './region.ts'

/** Options of `startEarly`: the parts of `createZeroState`'s options that the join needs. */
export interface EarlyStartOptions {
  mesh?: MeshNodeInit
  /** Keep the signing key in IndexedDB. Default: when IndexedDB exists. */
  persist?: boolean
  /** Where the profile's signing key is kept. Default: IndexedDB when persisting, else memory. */
  keyStore?: KeyStore
}

/** A mesh node already starting and an identity already loading, for `createZeroState` to take over. */
export interface EarlyStart {
  /** The node; its `start()` was called by `startEarly`. */
  readonly mesh: MeshNode
  /** The registry libp2p's and gossipsub's metrics report into (the app adds its own). */
  readonly registry: MetricsRegistry
  /** Resolves once the node is started (not yet connected: that is `mesh.ready`). */
  readonly started: Promise<void>
  /** The profile's signing identity. */
  readonly identity: Promise<Identity>
  /** Whether the app should persist (IndexedDB), as decided here. */
  readonly persist: boolean
}

/** Start the mesh node and load the identity at once, before the rest of the app has loaded. */
export function startEarly(options: EarlyStartOptions = {}): EarlyStart {
  const persist = options.persist ?? typeof indexedDB !== 'undefined'
  // The region this profile chose is in the very first presence, not a second later.
  const region = options.mesh?.presence?.region ?? savedRegion()
  // One metrics registry per peer (issue 15): libp2p's and gossipsub's metrics land in it too.
  const registry = new MetricsRegistry()
  const meshInit = region == null ? options.mesh : { ...options.mesh, presence: { ...options.mesh?.presence, region } }
  const mesh = new MeshNode({ ...meshInit, metrics: registry })
  // The node does not need the signing key to join: both at once (join time).
  const started = mesh.start()
  const identity = loadIdentity(options.keyStore ?? (persist ? new IndexedDbKeyStore() : new MemoryKeyStore()))
  // Whoever takes this over awaits both; a failure before then is not an unhandled rejection.
  started.catch(() => {})
  identity.catch(() => {})
  return { mesh, registry, started, identity, persist }
}
