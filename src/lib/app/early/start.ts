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

/**
 * How long the rest of the app's start waits for the join (`EarlyStart.joined`): until
 * `links` direct links (or all the peers the relay's roster named, when fewer), at most
 * `afterRelayMs` after the relay was reached, and `maxMs` after the start whatever happens.
 */
export const JOIN_FIRST = { afterRelayMs: 2_500, maxMs: 6_000, links: 4 } as const

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
  /**
   * Resolves once the join needs this tab's main thread no more: every peer the relay's
   * roster named is linked directly (the first JOIN_FIRST.links in a larger mesh; at once when
   * it named none), the relays are unreachable, the node stopped or failed to start, or the
   * bounds of JOIN_FIRST passed. Never rejects. The UI's boot starts the rest of the app then
   * (issue 11: a new tab joins within 3 s): a newcomer's main thread is saturated while it
   * dials, and the app's own start (its docs, workers, pages: ~1 s of main thread on a cold
   * tab) delayed every round trip of those dials.
   */
  joined(): Promise<void>
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
  const t0 = performance.now()
  let joining: Promise<void> | undefined
  const joined = (): Promise<void> => {
    joining ??= joinSettled(mesh, started, t0)
    return joining
  }
  return { mesh, registry, started, identity, persist, joined }
}

/** What `joinSettled` reads of the node. */
export interface JoinView extends Pick<MeshNode, 'status' | 'timings' | 'counters' | 'addEventListener' | 'removeEventListener'> {}

/**
 * See `EarlyStart.joined`: `t0` is when the node's start was called (performance.now()).
 * Rechecked on every change of the node (a link opened, the relay status) and at the bounds.
 */
export function joinSettled(
  mesh: JoinView,
  started: Promise<void>,
  t0: number,
  bounds: { afterRelayMs: number; maxMs: number; links: number } = JOIN_FIRST
): Promise<void> {
  return new Promise<void>((resolve) => {
    let relayAt: number | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    const done = (): void => {
      clearTimeout(timer)
      mesh.removeEventListener('change', check)
      resolve()
    }
    function check(): void {
      const now = performance.now()
      const { state } = mesh.status
      if (state === 'connected') relayAt ??= now
      const { milestones, peers } = mesh.timings()
      // The roster names the peers holding a reservation on the relay (newest first, then each newcomer).
      const named = Math.min(mesh.counters.get('roster.peers'), bounds.links)
      const linked = peers.filter((p) => p.directAt != null).length
      const deadline = Math.min(t0 + bounds.maxMs, relayAt == null ? Number.POSITIVE_INFINITY : relayAt + bounds.afterRelayMs)
      if (state === 'unreachable' || state === 'stopped' || (milestones.rosterHeard != null && linked >= named) || now >= deadline) {
        done()
        return
      }
      clearTimeout(timer)
      timer = setTimeout(check, deadline - now)
    }
    mesh.addEventListener('change', check)
    // A start that failed has nothing to wait for.
    started.then(check, done)
    check()
  })
}
