/**
 * The browser mesh node: libp2p with WebSockets (to relays), circuit relay
 * (signalling) and WebRTC (direct), gossipsub, pubsub peer discovery, presence
 * and a peer book. Discovered peers are dialled and upgraded to direct WebRTC;
 * the relay only bootstraps, and its loss does not close direct connections.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { identify, identifyPush } from '@libp2p/identify'
import type { Message } from '@libp2p/gossipsub'
import type { Connection, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { pubsubPeerDiscovery } from '@libp2p/pubsub-peer-discovery'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import { TypedEventEmitter, backoffDelay, closedWhileOpening, closedWhileOpeningReason, coalesce, shuffle } from '../core/index.ts'
import { echoRtts, handleEcho } from './diagnostics.ts'
import { DirectDialer, dialAllowed, isPrivateHost, firstHost } from './dialer.ts'
import { gossipFastMsgId, gossipMsgIdToString, gossipScoring, gossipStrikeProtocol, installGossipValidators } from './gossip-validators.ts'
import { repairGossip } from './gossip-repair.ts'
import { LINK_TRIM_SLACK, LinkBudget, linksToTrim, type TrimCandidate } from './link-trim.ts'
import { LivenessMonitor } from './liveness.ts'
import { RttSampler, pingConnection } from './rtt-sampler.ts'
import { Spaced } from './spaced.ts'
import {
  ADDRS_REMERGE_MS,
  DEFAULT_MAX_PEERS,
  PEERS_REPAINT_MS,
  relayDialMs,
  DEFAULT_TARGET_PEERS,
  DONOR_LINKS,
  GOSSIP_DEGREES,
  TAB_HEARTBEAT_MS,
  GOSSIP_LIMITS,
  GOSSIP_IDONTWANT_MIN_BYTES,
  DISCOVERY_TOPIC,
  DISCOVERY_INTERVAL_MS,
  PRESENCE_TOPIC,
  DEPARTED_TOPIC,
  PRESENCE_MIN_SPACING_MS,
  presenceIntervalMs,
  nextPresenceDelay,
  PRESENCE_INTERVAL_MS,
  presencePruneAfterMs,
  NEWCOMER_ANSWER_MS,
  LINK_ANNOUNCE_MS,
  announcesOnLink,
  answersNewcomer,
  RELAYED_CLOSE_DELAY_MS,
  RELAYS_PATH,
  ROSTER_RETRIES
} from './constants.ts'
import { MeshError, NotStartedError, PeerNotConnectedError, RelayUnreachableError } from './errors.ts'
import { logger } from '../core/index.ts'
import { Counters } from '../core/index.ts'
import { gossipsubMetricsRegister, libp2pMetrics, type MetricsRegistry } from '../core/index.ts'
import { StrikePolicy } from './strikes.ts'
import { PeerBook, Transport, connectionTransport, type PeerInfo } from './peer-book.ts'
import { decodePresence, defaultRegion, fitPresence, type Presence } from './presence.ts'
import {
  PRESENCE_PULL_PROTOCOL_ID,
  PRESENCE_PULL_STRIKES,
  PullPlanner,
  PullResponder,
  SignedPresenceStore,
  requestPull,
  signedPresenceOf,
  takePulled
} from './presence-pull.ts'
import { freshPeerKey } from './peer-key.ts'
import { decodeDeparture } from './departures.ts'
import { RelayGossipWatch } from './relay-watch.ts'
import { followRoster } from './roster.ts'
import { webCryptoNoise, type WebCryptoNoise } from './noise-crypto.ts'

const log = logger('mesh:node')

/** A linked peer its relay said left is forgotten if its last link closes within this long (departures.ts). */
const DEPARTED_LINKED_MS = 30_000
/** How often (in 1 s ticks) the peer book drops presences that went quiet (PeerBook.prune). */
const PRUNE_EVERY_TICKS = 5

/** Options of a mesh node; every field has a default suitable for `npm start` on loopback. */
export interface MeshNodeInit {
  /** Relay multiaddrs, in order of preference: the first reachable one is joined, the others are fallbacks. Default: fetched from `relaysUrl`. */
  relays?: string[]
  /** Where to fetch `{ relays: string[] }`. Default RELAYS_PATH on this origin. */
  relaysUrl?: string
  /** ICE servers. Default [] (loopback and LAN need none); set STUN/TURN for real networks. */
  iceServers?: RTCIceServer[]
  /** Direct connection budget (Chromium caps RTCPeerConnections at 500). Default 48. */
  maxPeers?: number
  /** Direct links this peer dials on its own up to; past it only donors while fewer than DONOR_LINKS are linked. Default DEFAULT_TARGET_PEERS (16), at most maxPeers. */
  targetPeers?: number
  /**
   * Close links others opened beyond target + DONOR_LINKS + LINK_TRIM_SLACK (link-trim.ts).
   * Default false: in the 50-peer simulator it closed ~535 links in 4 minutes that their peers,
   * still under their own targets, dialled again, each new link announced (presence received
   * per peer +70 %); it needs a peer that was trimmed not to dial the same peer again first.
   */
  trimLinks?: boolean
  /** What this tab announces about itself. */
  presence?: Partial<Pick<Presence, 'capabilities' | 'donating' | 'freeWorkers' | 'workers' | 'region' | 'publicKey' | 'keyProof'>>
  /** Invalid messages from one peer before it is disconnected and blocked for a minute. Default 5. */
  maxStrikes?: number
  /** How long a struck-out peer stays blocked, in ms. Default 60 s. */
  blockMs?: number
  /**
   * Whether loopback and private addresses may be dialled (issue 11 item 10). Default: what
   * the relay list says (`allowPrivateAddresses` in RELAYS_PATH), else true only when every
   * listed relay is itself on a loopback or private address (a local deployment).
   */
  allowPrivateAddresses?: boolean
  /** Feed libp2p's and gossipsub's metrics into this registry (issue 15). Default: none kept. */
  metrics?: MetricsRegistry
  /**
   * The libp2p transports, replacing WebSockets + WebRTC + circuit relay. Default: those
   * three. The simulator (sim/) passes in-memory ones whose direct links pose as WebRTC.
   */
  transports?: Libp2pOptions['transports']
  /**
   * Noise's X25519 keys and secrets by WebCrypto, off the main thread (noise-crypto.ts).
   * Default: in a browser window; elsewhere (Node, the simulator) noise's own crypto.
   */
  noiseWebCrypto?: boolean
  /**
   * Pull the presences a relay and the first direct links hold when joining
   * (presence-pull.ts), rather than waiting for each member's periodic re-announcement.
   * Default true; false is the simulator's baseline (`--no-presence-pull`). Pulls are answered either way.
   */
  presencePull?: boolean
  /**
   * Answer a newcomer's first presence with ours (all linked members, a sample of the others:
   * answersNewcomer). Default: only when `presencePull` is off. A newcomer that pulls has every
   * presence from its relay within seconds, and the answers were each flooded to the whole
   * mesh: in the simulator at 30 peers (pull on, A/B in one session) the mesh received 11.0-11.3k
   * presences while growing without them against 16.2-17.6k with them, and the newcomer held
   * every presence both ways in 2.8-6.2 s against 2.3-4.1 s.
   */
  newcomerAnswers?: boolean
  /**
   * Broadcast this peer's addresses on the pubsub-peer-discovery topic every DISCOVERY_INTERVAL_MS.
   * Default: only when `presencePull` is off. Presence carries the same addresses (signed, with
   * the rest of the peer), a newcomer pulls every presence from its relay, and libp2p reports a
   * peer learned from either as discovered; the broadcasts were each flooded to the whole mesh,
   * (n - 1) / 60 records a second per peer, twice the periodic presences at 200 peers (3.3 a
   * second against 1.7). Discovery records from older peers are still taken either way.
   */
  discoveryBroadcast?: boolean
  /** A fixed periodic re-announcement interval in ms instead of presenceIntervalMs (tests: a large mesh's pace in a small one). */
  presenceIntervalMs?: number
}

/** What the dial gater knows: the relays of the deployment and whether private hosts are allowed. */
interface DialScope {
  ids: Set<string>
  addrs: Set<string>
  allowPrivate: boolean
}

/** The state of this tab's link to the bootstrap relays. */
export interface RelayStatus {
  state: 'starting' | 'connecting' | 'connected' | 'unreachable' | 'stopped'
  /** Relay multiaddrs known. */
  relays: string[]
  /** Peer ids of relays connected now. */
  connected: string[]
  /** When the next attempt runs (ms since epoch) while unreachable. */
  nextRetryAt?: number
  /** The last failure, as a sentence. */
  error?: string
}

/** Events of a mesh node. */
export interface MeshNodeEvents {
  /** Peers, presence, RTTs or the relay status changed: at most one per microtask turn. */
  change: Event
  status: CustomEvent<RelayStatus>
  discovered: CustomEvent<{ peerId: string; at: number }>
}

/** What the relay-listen service needs from libp2p's components. */
interface RelayListenComponents {
  transportManager: { listen: (addrs: Multiaddr[]) => Promise<void> }
}

/**
 * Listens on one relay's `/p2p-circuit` address: the reservation is made as soon as
 * the relay is connected, without waiting for identify to tell that it is a relay
 * (the generic `/p2p-circuit` search does, ~100 ms later on a joining tab).
 */
function relayListen() {
  return (components: RelayListenComponents) => ({
    listen: (relay: Multiaddr): Promise<void> => components.transportManager.listen([relay.encapsulate('/p2p-circuit')])
  })
}

/** Stream handlers libp2p's own services registered (identify-push, WebRTC signalling). */
interface HandlerRegistry {
  getHandler(protocol: string): { handler: (stream: never, connection: Connection) => void | Promise<void>; options: object }
  handle(protocol: string, handler: (stream: never, connection: Connection) => void | Promise<void>, options?: object): Promise<void>
}

/** Gives the node its registrar, to wrap library handlers (see #strikeLibraryReaders). */
function registrarAccess() {
  return (components: { registrar: unknown }) => ({ registrar: components.registrar as HandlerRegistry })
}

/**
 * Protocols whose reader is the library's (lpStream/pbStream, prefix capped by
 * patches/@libp2p+utils): a peer whose frame breaks the cap is struck like on our own
 * protocols (issue 11 item 3: the identify-push bomb was capped, never struck).
 */
export const LIBRARY_READERS = ['/ipfs/id/push/1.0.0', '/webrtc-signaling/0.0.1'] as const
/** Protocols whose open stream keeps a link from being trimmed: a step offered or running, a remote plan. */
const BUSY_PROTOCOLS = ['/zerostate/task/', '/zerostate/plan/']
const OVERSIZE_ERRORS = new Set(['InvalidDataLengthLengthError', 'InvalidDataLengthError', 'InvalidMessageLengthError', 'MaxLengthError'])

type Services = {
  registrarAccess: ReturnType<ReturnType<typeof registrarAccess>>
  relayListen: ReturnType<ReturnType<typeof relayListen>>
  identify: ReturnType<ReturnType<typeof identify>>
  identifyPush: ReturnType<ReturnType<typeof identifyPush>>
  ping: ReturnType<ReturnType<typeof ping>>
  pubsub: ReturnType<ReturnType<typeof gossipsub>>
}

/**
 * pubsub peer discovery's options for a node: every node listens (older peers still broadcast);
 * it broadcasts only when `discoveryBroadcast` says so, by default only when it does not pull
 * presences (MeshNodeInit.discoveryBroadcast).
 */
export function discoveryOptions(init: Pick<MeshNodeInit, 'discoveryBroadcast' | 'presencePull'>): {
  interval: number
  topics: string[]
  listenOnly: boolean
} {
  return { interval: DISCOVERY_INTERVAL_MS, topics: [DISCOVERY_TOPIC], listenOnly: !(init.discoveryBroadcast ?? init.presencePull === false) }
}

async function buildLibp2p(
  init: Required<Pick<MeshNodeInit, 'iceServers' | 'maxPeers'>> & Pick<MeshNodeInit, 'transports' | 'discoveryBroadcast' | 'presencePull'>,
  gater: ReturnType<StrikePolicy['gater']>,
  scope: DialScope,
  gossipAppScore: (peerId: string) => number,
  metrics?: MetricsRegistry,
  noiseCrypto?: WebCryptoNoise
) {
  // Both made by WebCrypto, not in JavaScript on the main thread (join time): the peer key
  // (libp2p makes one if it cannot) and noise's static X25519 key, at once.
  const [privateKey] = await Promise.all([freshPeerKey(), noiseCrypto?.ready])
  return await createLibp2p<Services>({
    ...(privateKey != null ? { privateKey } : {}),
    // Relay reservations are made per configured relay (#reserveOn), not by a generic '/p2p-circuit' search.
    addresses: { listen: ['/webrtc'] },
    transports: init.transports ?? [webSockets(), webRTC({ rtcConfiguration: { iceServers: init.iceServers } }), circuitRelayTransport()],
    connectionEncrypters: [noise(noiseCrypto != null ? { crypto: noiseCrypto.crypto } : {})],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: init.maxPeers * 2 + 8 },
    // RTTs are sampled within a budget (RttSampler), not by a ping per link per second.
    connectionMonitor: { enabled: false },
    ...(metrics != null ? { metrics: libp2pMetrics(metrics) } : {}),
    connectionGater: {
      // Only our relays and circuits through them (issue 11 item 10); the default gater
      // refused every ws:// and private address, which loopback deployments use.
      denyDialMultiaddr: (ma) => !dialAllowed(ma, scope, scope.allowPrivate),
      // A blocked peer (strikes.ts) is refused both ways, before and after encryption.
      ...gater
    },
    // Listened to (older peers still broadcast), broadcast only by a peer that does not pull presences (discoveryBroadcast).
    peerDiscovery: [pubsubPeerDiscovery(discoveryOptions(init))],
    services: {
      registrarAccess: registrarAccess(),
      relayListen: relayListen(),
      // Not over limited circuits: a circuit to a peer only carries the WebRTC signalling of
      // its dial (our protocols refuse it), and identify on it cost both tabs a signed record,
      // peer-store writes and relay round trips in the middle of every dial (join time).
      identify: identify({ runOnLimitedConnection: false }),
      identifyPush: identifyPush({ runOnLimitedConnection: false }),
      // The connection monitor pings on the same protocol: leave room for ping() beside it.
      ping: ping({ maxInboundStreams: 4, maxOutboundStreams: 4 }),
      // A shorter heartbeat grafts a newcomer into topic meshes sooner (join time).
      // Gossip is checked by topic validators (gossip-validators.ts, the relay's too) and
      // RPCs over GOSSIP_LIMITS.maxRpcBytes are dropped unread (issue 11 item 9).
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        heartbeatInterval: TAB_HEARTBEAT_MS,
        ...GOSSIP_DEGREES,
        maxInboundDataLength: GOSSIP_LIMITS.maxRpcBytes,
        // No IDONTWANT for our small messages (GOSSIP_IDONTWANT_MIN_BYTES).
        idontwantMinDataSize: GOSSIP_IDONTWANT_MIN_BYTES,
        // Copies of a message seen are dropped before their signature is checked again.
        fastMsgIdFn: gossipFastMsgId,
        msgIdToStrFn: gossipMsgIdToString,
        ...(metrics != null ? { metricsRegister: gossipsubMetricsRegister(metrics), metricsTopicStrToLabel: new Map<string, string>() } : {}),
        ...gossipScoring(gossipAppScore)
      })
    }
  })
}

type Libp2pNode = Awaited<ReturnType<typeof buildLibp2p>>

/** A tab's node in the mesh. */
export class MeshNode extends TypedEventEmitter<MeshNodeEvents> {
  readonly counters = new Counters('mesh')
  readonly #init: MeshNodeInit
  /** A presence is ignored after 3 of the mesh's re-announcement intervals (which grow with it). */
  readonly #book: PeerBook = new PeerBook({ staleMs: () => this.#staleMs() })
  /** Each author's latest presence as it signed it, to answer pulls with (presence-pull.ts). */
  readonly #signed = new SignedPresenceStore({ staleMs: () => this.#staleMs() })
  /** Linked peers a relay said left, with when: forgotten if their last link closes within DEPARTED_LINKED_MS. */
  readonly #departedLinked = new Map<string, number>()
  readonly #pulls = new PullPlanner()
  #pullResponder: PullResponder | undefined
  #presenceTimer: ReturnType<typeof setTimeout> | undefined
  /** The re-announcement interval the periodic announcements' phase was last drawn for (nextPresenceDelay). */
  #presencePhasedFor: number = PRESENCE_INTERVAL_MS
  readonly #relayWatch = new RelayGossipWatch()
  /** Announcements go out at most every PRESENCE_MIN_SPACING_MS: peers limit each author's rate (GOSSIP_RATES). */
  readonly #spacedAnnounce = new Spaced(PRESENCE_MIN_SPACING_MS, () => this.#publishPresence())
  /** The strike policy every protocol of ours reports to (issue 11 item 12). */
  readonly strikes: StrikePolicy
  readonly #dialer: DirectDialer
  /** The connection budget (maxPeers) the gater and the dialer share. */
  readonly #budget: LinkBudget
  readonly #milestones: Record<string, number> = {}
  #node: Libp2pNode | undefined
  #presence: Omit<Presence, 'ts' | 'peerId'>
  #status: RelayStatus = { state: 'starting', relays: [], connected: [] }
  #relayAttempt = 0
  #relayTimer: ReturnType<typeof setTimeout> | undefined
  #timers: Array<ReturnType<typeof setInterval>> = []
  #peersCache: PeerInfo[] | undefined
  readonly #reserving = new Set<string>()
  /** Failed reservation attempts per relay since its last success (retry backoff). */
  readonly #reserveAttempt = new Map<string, number>()
  /** The deployment's relays, for the dial gater; filled from the relay list before any dial. */
  readonly #scope: DialScope = { ids: new Set(), addrs: new Set(), allowPrivate: false }
  #liveness: LivenessMonitor | undefined
  #rtt: RttSampler | undefined
  /** The relay list, fetched as start() begins; the first #connectRelays takes it. */
  #relaysPrefetch: Promise<string[]> | undefined
  readonly #change = coalesce(() => {
    this.dispatchEvent(new Event('change'))
  })
  #announceQueued = false
  /** The last announcement for a new link, and the one pending (#announceOnLink). */
  readonly #linkAnnounce: { at: number; timer?: ReturnType<typeof setTimeout> } = { at: 0 }
  /** Addresses last merged into the peer store per peer, and when (#learnAddrs). */
  readonly #learned = new Map<string, { key: string; at: number }>()
  #followUpQueued = false
  #ready = Promise.withResolvers<void>()
  #noiseCrypto: WebCryptoNoise | undefined

  constructor(init: MeshNodeInit = {}) {
    super()
    this.#init = init
    this.#presence = {
      v: 1,
      capabilities: init.presence?.capabilities ?? [],
      donating: init.presence?.donating ?? false,
      freeWorkers: init.presence?.freeWorkers ?? 0,
      region: init.presence?.region ?? defaultRegion(),
      publicKey: init.presence?.publicKey
    }
    this.#ready.promise.catch(() => {})
    this.strikes = new StrikePolicy(
      {
        counters: this.counters,
        exempt: (peer) => this.#book.isRelay(peer),
        hangUp: async (peer) => {
          await this.#node?.hangUp(peerIdFromString(peer))
        }
      },
      { maxStrikes: init.maxStrikes, blockMs: init.blockMs }
    )
    this.#dialer = new DirectDialer({
      node: () => this.#node,
      skip: (id) => this.#book.isRelay(id) || this.strikes.isBlocked(id),
      counters: this.counters,
      maxPeers: init.maxPeers ?? DEFAULT_MAX_PEERS,
      targetPeers: Math.min(init.targetPeers ?? DEFAULT_TARGET_PEERS, init.maxPeers ?? DEFAULT_MAX_PEERS),
      wanted: (id) => this.#wantsLink(id),
      hasRoom: (id) => this.#budget.hasRoom(id, this.#wantsLink(id)),
      isDirect: (id) => this.#isDirect(id),
      directCount: () => this.#directPeers().size,
      // Peers that joined through another relay of the list are reached through it (dialled on demand).
      relayAddrs: () => [...this.#relayAddrs(), ...this.#listedRelayAddrs()]
    })
    this.#budget = new LinkBudget(init.maxPeers ?? DEFAULT_MAX_PEERS, {
      direct: () => this.#directPeers(),
      inbound: () => this.#directPeers('inbound'),
      dialing: () => this.#dialer.dialing(),
      now: () => performance.now()
    })
  }

  /** The periodic re-announcement interval in a mesh of `peers` (default: the presences known). */
  #intervalMs(peers = this.#book.size): number {
    return this.#init.presenceIntervalMs ?? presenceIntervalMs(peers)
  }

  /** How long a presence counts after it was received: 3 re-announcement intervals. */
  #staleMs(peers = this.#book.size): number {
    return this.#intervalMs(peers) * 3
  }

  /**
   * The connection gater: the strike policy's (a blocked peer is refused both ways), and the
   * connection budget held for links others open (LinkBudget.admit), refused and counted as
   * `links.refused.<transport>`. The refused dialer sees a failed dial, not a strike.
   */
  #gater(): ReturnType<StrikePolicy['gater']> {
    const strikes = this.strikes.gater()
    return {
      ...strikes,
      denyInboundEncryptedConnection: (peer, maConn) =>
        strikes.denyInboundEncryptedConnection(peer, maConn) === true || this.#refusesInbound(peer.toString(), maConn.remoteAddr)
    }
  }

  #refusesInbound(id: string, remoteAddr: Multiaddr): boolean {
    if (this.#node == null) return false
    const transport = connectionTransport({ remoteAddr })
    if (this.#budget.admit({ id, transport, relay: this.#book.isRelay(id), wanted: this.#wantsLink(id) })) return false
    this.counters.inc(`links.refused.${transport}`)
    log('refused a %s connection from %s: the budget of %d links is held', transport, id, this.#budget.maxPeers)
    return true
  }

  /**
   * This node's direct (WebRTC) connections by peer, relays aside, built from getConnections()
   * once after each connection opens or closes (or a relay is known) and read through their
   * `status`: the budget, the dialer and every presence asked for them, and each rebuild
   * scanned every connection, parsed its address and printed its peer id (~12 % of an idle
   * simulated peer's thread at 200 peers, issue 16).
   */
  #linkIndex: Map<string, Connection[]> | undefined
  /** #directPeers() of the current #linkIndex (a link closing counts until its close event). */
  #directMemo: { index: Map<string, Connection[]>; direct: Set<string> } | undefined
  /** #listedRelayAddrs() of the current relay list. */
  #listedMemo: { relays: readonly string[]; addrs: Multiaddr[] } | undefined
  /** The relay connections (not limited) of the current #linkIndex, for #relayAddrs(). */
  #relayConnsMemo: { index: Map<string, Connection[]>; conns: Connection[] } | undefined

  /**
   * node.getConnections() as of the last connection that opened or closed: libp2p builds a
   * new array at each call, and the RTT sampler, liveness and the 1 s tick each asked for it
   * (issue 16). Every reader here takes it from this one; each reads a connection's status,
   * which stays live.
   */
  #connectionList: Connection[] | undefined
  #connections(): Connection[] {
    const node = this.#node
    if (node == null) return []
    this.#connectionList ??= node.getConnections()
    return this.#connectionList
  }

  #links(): Map<string, Connection[]> {
    if (this.#linkIndex != null) return this.#linkIndex
    const index = new Map<string, Connection[]>()
    const node = this.#node
    if (node == null) return index
    for (const c of this.#connections()) {
      if (connectionTransport(c) !== Transport.webrtc) continue
      const other = c.remotePeer.toString()
      if (this.#book.isRelay(other)) continue
      const conns = index.get(other)
      if (conns == null) index.set(other, [c])
      else conns.push(c)
    }
    this.#linkIndex = index
    return index
  }

  /** Whether this peer holds an open direct link with `id` (a relay's is not one). */
  #isDirect(id: string): boolean {
    return (
      this.#links()
        .get(id)
        ?.some((c) => c.status === 'open') === true
    )
  }

  /** Peers (relays aside) this peer holds an open direct link with (only those the other side opened, with `direction`). */
  #directPeers(direction?: 'inbound'): ReadonlySet<string> {
    const index = this.#links()
    if (direction == null && this.#directMemo?.index === index) return this.#directMemo.direct
    const direct = new Set<string>()
    for (const [id, conns] of index) {
      if (conns.some((c) => c.status === 'open' && (direction == null || c.direction === direction))) direct.add(id)
    }
    if (direction == null && this.#linkIndex === index) this.#directMemo = { index, direct }
    return direct
  }

  /** A link with this peer is one this peer wants past its budget's reserves: a donor while it links fewer than DONOR_LINKS. */
  #wantsLink(id: string): boolean {
    return this.#book.presenceOf(id)?.donating === true && this.#donorLinks() < DONOR_LINKS
  }

  /** Donors this peer holds a direct link to. */
  #donorLinks(): number {
    let donors = 0
    for (const [id, conns] of this.#links()) {
      if (this.#book.presenceOf(id)?.donating === true && conns.some((c) => c.status === 'open')) donors++
    }
    return donors
  }

  /** Resolves once started and connected to a relay or a peer. */
  get ready(): Promise<void> {
    return this.#ready.promise
  }

  /** The libp2p node, for protocols built on the mesh (sync, tasks). */
  get libp2p(): Libp2pNode {
    if (this.#node == null) throw new NotStartedError()
    return this.#node
  }

  get peerId(): string {
    return this.libp2p.peerId.toString()
  }
  get status(): RelayStatus {
    return { ...this.#status }
  }
  get presence(): Readonly<Omit<Presence, 'ts' | 'peerId'>> {
    return this.#presence
  }

  /** Start the node (idempotent). */
  async start(): Promise<void> {
    if (this.#node != null) return
    this.#milestones.startCalled ??= performance.now()
    // The relay list is fetched while libp2p builds (join time); #connectRelays takes it.
    this.#relaysPrefetch = this.#relayList()
    this.#relaysPrefetch.catch(() => {})
    const maxPeers = this.#init.maxPeers ?? DEFAULT_MAX_PEERS
    if (this.#init.noiseWebCrypto ?? typeof window !== 'undefined') this.#noiseCrypto ??= webCryptoNoise()
    const node = await buildLibp2p(
      {
        iceServers: this.#init.iceServers ?? [],
        maxPeers,
        transports: this.#init.transports,
        discoveryBroadcast: this.#init.discoveryBroadcast,
        presencePull: this.#init.presencePull
      },
      this.#gater(),
      this.#scope,
      // A relay is never graylisted by accident; a blocked peer is ignored by gossipsub itself.
      (peer) => (this.#book.isRelay(peer) ? 100 : this.strikes.isBlocked(peer) ? -1000 : 0),
      this.#init.metrics,
      this.#noiseCrypto
    )
    this.#node = node
    this.#linkIndex = undefined
    // An IWANT answer over the RPC limit lost every message in it and cut the link from gossip (gossip-repair.ts).
    repairGossip(node.services.pubsub, {
      splitBytes: GOSSIP_LIMITS.maxRpcBytes / 2,
      counters: this.counters,
      connection: (peer) => node.getConnections(peer).find((c) => c.status === 'open' && c.limits == null)
    })
    installGossipValidators(node.services.pubsub, {
      isBlocked: (author) => this.strikes.isBlocked(author),
      isRelay: (author) => this.#knownRelay(author),
      onIgnore: (_author, topic, reason) => {
        this.counters.inc(`gossip.ignored.${gossipStrikeProtocol(topic)}.${reason}`)
      },
      onReject: (author, topic, verdict) => {
        this.counters.inc(`gossip.rejected.${verdict.reason}`)
        const protocol = gossipStrikeProtocol(topic)
        if (protocol === 'presence') this.counters.inc('presence.invalid')
        log('rejected %s gossip from %s: %s', protocol, author, verdict.message)
        if (author !== undefined) this.strikes.strike(author, protocol, verdict.reason)
      },
      onOverRate: (author, topic) => {
        const protocol = gossipStrikeProtocol(topic)
        this.counters.inc(`gossip.overRate.${protocol}`)
        this.strikes.strike(author, protocol, 'OverRate')
      }
    })
    // A WebRTC link's RTT comes with the stats liveness reads: the sampler pings only the others.
    this.#liveness = new LivenessMonitor({
      // Direct links only: a relay's WebSocket and circuits have no transport stats to read.
      connections: () => [...this.#links().values()].flat(),
      counters: this.counters,
      onRtt: (conn, ms) => this.#rtt?.measured(conn, ms)
    })
    // A link's first round trip is shown at once; later ones at the repaints (PEERS_REPAINT_MS).
    this.#rtt = new RttSampler({ connections: () => this.#connections(), counters: this.counters, firstRtt: () => this.#changed() })
    node.addEventListener('peer:discovery', (evt) => {
      this.#onDiscovered(evt.detail.id.toString())
    })
    node.addEventListener('peer:update', (evt) => {
      this.#dialer.maybeDial(evt.detail.peer.id.toString())
    })
    node.addEventListener('connection:open', (evt) => {
      this.#linkIndex = undefined
      this.#connectionList = undefined
      this.#onConnectionOpen(evt.detail)
    })
    node.addEventListener('connection:close', (evt) => {
      this.#linkIndex = undefined
      this.#connectionList = undefined
      this.#onConnectionClose(evt.detail)
    })
    node.services.pubsub.subscribe(PRESENCE_TOPIC)
    node.services.pubsub.subscribe(DEPARTED_TOPIC)
    // Announce as soon as a peer (the relay) is known to take presence, before our own
    // reservation exists (join time): members answer with theirs, so a newcomer that is
    // the dialling side of a pair dials without waiting for its reservation; publishing
    // earlier would reach nobody (gossipsub drops a message with no topic peer).
    node.services.pubsub.addEventListener('subscription-change', (evt) => {
      if (!this.#book.isRelay(evt.detail.peerId.toString())) return
      if (evt.detail.subscriptions.some((sub) => sub.topic === PRESENCE_TOPIC && sub.subscribe)) this.#announceSoon()
    })
    node.services.pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic === PRESENCE_TOPIC) this.#onPresence(evt.detail)
      else if (evt.detail.topic === DEPARTED_TOPIC) this.#onDeparture(evt.detail)
    })
    // self:peer:update is debounced by a second in libp2p's address manager; a new
    // listener (our relay reservation) is known at once through transport:listening.
    node.addEventListener('transport:listening', () => {
      this.#checkOwnAddrs()
    })
    node.addEventListener('self:peer:update', () => {
      this.#checkOwnAddrs()
    })
    await node.start()
    this.#milestones.libp2pStarted = performance.now()
    await handleEcho(node)
    this.#pullResponder = new PullResponder({
      store: this.#signed,
      strikes: this.strikes,
      counters: this.counters,
      isBlocked: (peer) => this.strikes.isBlocked(peer)
    })
    const responder = this.#pullResponder
    await node.handle(PRESENCE_PULL_PROTOCOL_ID, (stream, connection) => responder.answer(stream, connection), {
      maxInboundStreams: 2,
      maxOutboundStreams: 2
    })
    await this.#strikeLibraryReaders(node)
    this.#liveness?.start()
    this.#rtt?.start()
    this.#schedulePresence()
    // RTTs are refreshed by the RTT sampler (rtt-sampler.ts): peers() shows them within a
    // second, listeners hear of them every PEERS_REPAINT_MS (a connection or presence that
    // changes is told at once).
    let ticks = 0
    this.#timers.push(
      setInterval(() => {
        ticks++
        this.#reapHalfClosed()
        this.#checkRelayGossip()
        if (this.#init.trimLinks === true && ticks % 5 === 0) this.#trimLinks()
        if (ticks % PRUNE_EVERY_TICKS === 0) this.#pruneBook()
        if (ticks % Math.round(PEERS_REPAINT_MS / 1000) === 0) this.#changed()
        else this.#peersCache = undefined
      }, 1000)
    )
    this.#setStatus({ state: 'connecting' })
    void this.#connectRelays()
  }

  /** Drop the presences of peers that went quiet without a departure notice (PeerBook.prune), counted as `presence.pruned`. */
  #pruneBook(): void {
    const dropped = this.#book.prune(presencePruneAfterMs(this.#init.presenceIntervalMs))
    if (dropped > 0) this.counters.inc('presence.pruned', dropped)
  }

  /** Wrap the library's handlers of LIBRARY_READERS: an over-cap frame strikes its sender (blocked at once). */
  async #strikeLibraryReaders(node: Libp2pNode): Promise<void> {
    const registrar = node.services.registrarAccess.registrar
    for (const protocol of LIBRARY_READERS) {
      let original: ReturnType<HandlerRegistry['getHandler']>
      try {
        original = registrar.getHandler(protocol)
      } catch {
        continue
      }
      await node.unhandle(protocol)
      await registrar.handle(
        protocol,
        async (stream, connection) => {
          // The peer is dialling us: a dial of ours that stepped in gives way (one handshake per pair).
          if (protocol === LIBRARY_READERS[1]) this.#dialer.answering(connection.remotePeer.toString())
          try {
            await original.handler(stream, connection)
          } catch (err) {
            const name = (err as Error)?.name
            if (OVERSIZE_ERRORS.has(name)) {
              this.counters.inc(`libraryReader.oversized.${protocol.split('/')[2] ?? 'other'}`)
              this.strikes.strike(
                connection.remotePeer.toString(),
                protocol === LIBRARY_READERS[0] ? 'identify-push' : 'webrtc-signaling',
                'FrameTooLargeError'
              )
            }
            throw err
          }
        },
        original.options
      )
    }
  }

  /** Stop the node (idempotent). */
  async stop(): Promise<void> {
    const node = this.#node
    if (node == null) return
    for (const t of this.#timers) clearInterval(t)
    this.#timers = []
    clearTimeout(this.#presenceTimer)
    this.#presenceTimer = undefined
    this.#spacedAnnounce.cancel()
    clearTimeout(this.#linkAnnounce.timer)
    this.#linkAnnounce.timer = undefined
    clearTimeout(this.#relayTimer)
    this.#dialer.stop()
    this.#liveness?.stop()
    this.#rtt?.stop()
    this.#setStatus({ state: 'stopped', connected: [] })
    await node.stop()
    this.#node = undefined
    this.#linkIndex = undefined
    this.#peersCache = undefined
  }

  /**
   * Connected peers (relays included, flagged `relay`). Built once per change (a
   * connection, a presence, or the 1 s refresh of RTTs), not per call: the router
   * reads it for every task.
   */
  peers(): PeerInfo[] {
    this.#peersCache ??= this.#buildPeers()
    return [...this.#peersCache]
  }

  #buildPeers(): PeerInfo[] {
    const node = this.#node
    if (node == null) return []
    const byPeer = new Map<string, Connection[]>()
    for (const c of this.#connections()) {
      const id = c.remotePeer.toString()
      const list = byPeer.get(id)
      if (list == null) byPeer.set(id, [c])
      else list.push(c)
    }
    const out: PeerInfo[] = []
    for (const [id, conns] of byPeer) {
      const info = this.#book.info(id, conns)
      if (info != null) out.push(info)
    }
    return out.sort((a, b) => Number(b.relay) - Number(a.relay) || a.id.localeCompare(b.id))
  }

  /**
   * Round trip in ms to a connected peer over its current connection (a direct one before a relayed
   * one), timed with performance.now() on an open stream: fractions of a ms, where libp2p's ping
   * gives whole ms of Date.now() (a 2.4 ms round trip read as 2 or 3).
   */
  async ping(peerId: string, opts: { signal?: AbortSignal } = {}): Promise<number> {
    const node = this.libp2p
    const open = node.getConnections(peerIdFromString(peerId)).filter((c) => c.status === 'open')
    const conn = open.find((c) => c.limits == null) ?? open[0]
    if (conn == null) throw new PeerNotConnectedError(`peer ${peerId} is not connected`)
    const signal = opts.signal ?? AbortSignal.timeout(5000)
    try {
      return await pingConnection(conn, signal)
    } catch (err) {
      const why = err instanceof Error ? err.message : closedWhileOpening(err) ? `the stream ${closedWhileOpeningReason(err)}` : String(err)
      throw new MeshError(`ping to ${peerId} failed: ${why}`, { cause: err })
    }
  }

  /** Change what this tab announces (capabilities, donation, free workers, region). */
  setPresence(p: MeshNodeInit['presence']): void {
    const next = { ...this.#presence, ...p }
    // The app refreshes presence every second (app/presence.ts): an unchanged one is not
    // announced again (each announcement reaches every peer: at 1 s a mesh of n peers made
    // each receive n presences a second, whatever presenceIntervalMs said; the periodic
    // re-announcement carries it). A change still goes out at once.
    if (JSON.stringify(next) === JSON.stringify(this.#presence)) return
    this.#presence = next
    this.#announce('change')
    this.#changed()
  }

  /** Counters and gauges of the mesh layer. */
  metrics(): Record<string, number> {
    const peers = this.peers()
    this.counters.set('peers', peers.filter((p) => !p.relay).length)
    this.counters.set('peers.webrtc', peers.filter((p) => !p.relay && p.transport === Transport.webrtc).length)
    // Noise keys and secrets made by WebCrypto vs JavaScript (the fallback): noise-crypto.ts.
    for (const [k, v] of Object.entries(this.#noiseCrypto?.stats ?? {})) this.counters.set(`noise.${k}`, v)
    return this.counters.toRecord()
  }

  /**
   * Timings in ms on this page's clock (performance.now(), 0 = navigation start):
   * when the first direct connection opened, and per peer when it was discovered, when
   * this side's dial started and when its direct connection opened. Milestones:
   * startCalled, libp2pStarted, relayConnected, webrtcAddress (our reservation),
   * firstAnnounced (first presence with a subscriber to reach), firstPresenceHeard.
   */
  timings(): { firstDirectAt?: number; milestones: Record<string, number>; peers: ReturnType<DirectDialer['timings']>['peers'] } {
    return { ...this.#dialer.timings(), milestones: { ...this.#milestones } }
  }

  /**
   * Why a peer is or is not linked, for failure reports: per peer the dialer's state
   * (pending attempt, attempts, failures, last error), what its presence said and how
   * old it is, and which peers are blocked.
   */
  diagnostics(): {
    self?: string
    dialer: ReturnType<DirectDialer['state']>
    presence: Array<{ peerId: string; ageMs: number; addrs: number; donating: boolean }>
    blocked: string[]
    relays: string[]
    status: RelayStatus
    /** gossipsub's mesh peers on the presence topic. */
    presenceMesh: number
    /** Connected relays that take this tab's gossip (their presence subscription arrived). */
    relayGossip: number
  } {
    const now = Date.now()
    return {
      self: this.#node?.peerId.toString(),
      dialer: this.#dialer.state(),
      presence: this.#book.entries().map((p) => ({ peerId: p.peerId, ageMs: now - p.receivedAt, addrs: p.addrs?.length ?? 0, donating: p.donating })),
      blocked: this.strikes.blocked(),
      relays: this.#relayAddrs().map((a) => a.toString()),
      status: this.status,
      presenceMesh: (this.#node?.services.pubsub as { getMeshPeers?: (topic: string) => string[] } | undefined)?.getMeshPeers?.(PRESENCE_TOPIC).length ?? 0,
      relayGossip: (this.#node?.services.pubsub.getSubscribers(PRESENCE_TOPIC) ?? []).filter((p) => this.#book.isRelay(p.toString())).length
    }
  }

  /** Round-trip times of small echoes to a peer, on one open stream or a new stream each time. */
  async echoRtts(peerId: string, opts: { count: number; newStreamPerRequest?: boolean; signal?: AbortSignal }): Promise<number[]> {
    return await echoRtts(this.libp2p, peerId, opts)
  }

  // ---- relays -------------------------------------------------------------

  async #relayList(): Promise<string[]> {
    if (this.#init.relays != null && this.#init.relays.length > 0) return this.#scoped(this.#init.relays, undefined)
    const url = this.#init.relaysUrl ?? RELAYS_PATH
    const res = await fetch(url, { cache: 'no-store' })
    if (!res.ok) throw new RelayUnreachableError(`the relay list at ${url} answered ${res.status}`)
    const body: unknown = await res.json()
    const relays = (body as { relays?: unknown })?.relays
    if (!Array.isArray(relays) || !relays.every((r) => typeof r === 'string')) {
      throw new RelayUnreachableError(`the relay list at ${url} is not { relays: string[] }`)
    }
    const allow = (body as { allowPrivateAddresses?: unknown }).allowPrivateAddresses
    return this.#scoped(relays, typeof allow === 'boolean' ? allow : undefined)
  }

  /** Let the dial gater know the deployment's relays and whether private hosts are allowed. */
  #scoped(relays: string[], listAllows: boolean | undefined): string[] {
    const hosts: string[] = []
    for (const r of relays) {
      try {
        const ma = multiaddr(r)
        this.#scope.addrs.add(ma.toString())
        const id = ma.getComponents().findLast((c) => c.name === 'p2p')?.value
        if (id != null) this.#scope.ids.add(id)
        hosts.push(firstHost(ma) ?? '')
      } catch {
        /* reported by #connectRelays */
      }
    }
    this.#scope.allowPrivate = this.#init.allowPrivateAddresses ?? listAllows ?? (hosts.length > 0 && hosts.every((h) => isPrivateHost(h)))
    return relays
  }

  /** Our own addresses of the relays we are connected to (the only way a WebRTC dial is signalled). */
  #relayAddrs(): Multiaddr[] {
    const node = this.#node
    if (node == null) return []
    // Asked for every dial (the dialer builds each target's circuit addresses on them): kept
    // with the link index, which is rebuilt whenever a connection opens or closes or a relay
    // is known, instead of scanning every connection per dial (issue 16).
    // Their status is still read per call: a relay link closing drops out before its close event.
    const index = this.#links()
    let conns = this.#relayConnsMemo?.index === index ? this.#relayConnsMemo.conns : undefined
    if (conns == null) {
      conns = this.#connections().filter((c) => c.limits == null && this.#book.isRelay(c.remotePeer.toString()))
      if (this.#linkIndex === index) this.#relayConnsMemo = { index, conns }
    }
    return conns.filter((c) => c.status === 'open').map((c) => c.remoteAddr)
  }

  /** The relay list's addresses that name their peer id (after the connected ones, which dialableAddrs prefers). */
  #listedRelayAddrs(): Multiaddr[] {
    // Parsed once per relay list (asked for every dial).
    if (this.#listedMemo?.relays === this.#status.relays) return this.#listedMemo.addrs
    const out: Multiaddr[] = []
    this.#listedMemo = { relays: this.#status.relays, addrs: out }
    for (const r of this.#status.relays) {
      try {
        const ma = multiaddr(r)
        if (ma.getComponents().some((c) => c.name === 'p2p')) out.push(ma)
      } catch {
        /* reported by #connectRelays */
      }
    }
    return out
  }

  async #connectRelays(): Promise<void> {
    const node = this.#node
    if (node == null) return
    clearTimeout(this.#relayTimer)
    let relays: string[] = this.#status.relays
    const errors: string[] = []
    try {
      const prefetched = this.#relaysPrefetch
      this.#relaysPrefetch = undefined
      relays = await (prefetched ?? this.#relayList())
    } catch (err) {
      errors.push((err as Error).message)
    }
    let connected = false
    for (const addr of relays) {
      let ma: Multiaddr
      try {
        ma = multiaddr(addr)
      } catch {
        errors.push(`"${addr}" is not a multiaddr`)
        continue
      }
      try {
        const conn = await node.dial(ma, { signal: AbortSignal.timeout(relayDialMs(this.#relayAttempt)) })
        const relayId = conn.remotePeer.toString()
        this.#scope.ids.add(relayId)
        this.#scope.addrs.add(conn.remoteAddr.toString())
        this.#book.markRelay(relayId)
        this.#linkIndex = undefined
        connected = true
        this.#reserveOn(node, ma, relayId)
        void this.#rosterFrom(node, conn)
        if (this.#pullsOn() && this.#pulls.relay(relayId)) void this.#pullFrom(node, conn.remotePeer)
        // One relay is enough to join: the others are fallbacks (tried in list order when it
        // dies), and circuits through them stay dialable. Relays peer with each other, so
        // gossip reaches tabs that joined through another one.
        break
      } catch (err) {
        errors.push(`${addr}: ${(err as Error).message}`)
      }
    }
    if (this.#node !== node) return
    if (connected) {
      this.#milestones.relayConnected ??= performance.now()
      this.#relayAttempt = 0
      this.#setStatus({ state: 'connected', relays, connected: this.#connectedRelays(), error: undefined, nextRetryAt: undefined })
      this.#ready.resolve()
      return
    }
    this.counters.inc('relay.failures')
    const delay = backoffDelay(this.#relayAttempt++, { baseMs: 1000, maxMs: 30_000 })
    const error = relays.length === 0 && errors.length === 0 ? 'no relay is configured' : errors.join('; ')
    log('relays unreachable, retry in %d ms: %s', delay, error)
    this.#setStatus({
      state: 'unreachable',
      relays,
      connected: [],
      error: `${new RelayUnreachableError().message} (${error})`,
      nextRetryAt: Date.now() + delay
    })
    this.#relayTimer = setTimeout(() => {
      void this.#connectRelays()
    }, delay)
  }

  /**
   * Follow the roster of the relay we just reached (roster.ts): who holds a reservation
   * there, then each newcomer, dialled at once where we are the side that dials, instead of
   * after presence gossip. A relay that does not answer (an older one) leaves the join to
   * presence, as before.
   */
  async #rosterFrom(node: Libp2pNode, conn: Connection, attempt = 0): Promise<void> {
    const relayId = conn.remotePeer.toString()
    const base = conn.remoteAddr.getComponents().some((c) => c.name === 'p2p') ? conn.remoteAddr.toString() : `${conn.remoteAddr.toString()}/p2p/${relayId}`
    try {
      await followRoster(node, conn.remotePeer, (peers) => {
        if (this.#node !== node) return
        this.#milestones.rosterHeard ??= performance.now()
        this.counters.inc('roster.peers', peers.length)
        // In random order: a relay lists its oldest reservations first, and a newcomer dials
        // the first it hears of up to its target, so every newcomer linked to the same few.
        const order = [...peers]
        shuffle(order)
        for (const id of order) {
          if (this.#book.isRelay(id)) continue
          this.#dialer.rostered(id, multiaddr(`${base}/p2p-circuit/webrtc/p2p/${id}`))
        }
      })
    } catch (err) {
      this.counters.inc('roster.failed')
      log('no roster from %s: %s', relayId, (err as Error).message)
      // A loaded relay answers late while many join: ask again while the link stays, a few
      // times (an older relay that does not speak the protocol costs ROSTER_RETRIES refusals).
      if (attempt >= ROSTER_RETRIES) return
      setTimeout(
        () => {
          if (this.#node === node && conn.status === 'open') void this.#rosterFrom(node, conn, attempt + 1)
        },
        backoffDelay(attempt, { baseMs: 2000, maxMs: 30_000 })
      )
    }
  }

  /**
   * Reserve a slot on a relay as soon as it is connected (and again after it comes
   * back), unless our addresses already go through it. Only configured relays are
   * used: a generic `/p2p-circuit` search would keep libp2p's relay discovery
   * running, and it dials every known peer to ask whether it is a relay (which
   * opened a second WebRTC connection to each peer).
   */
  #reserveOn(node: Libp2pNode, ma: Multiaddr, relayId: string): void {
    if (this.#reserving.has(relayId)) return
    if (node.getMultiaddrs().some((a) => a.toString().includes(`/p2p/${relayId}/p2p-circuit`))) return
    this.#reserving.add(relayId)
    const target = ma.getComponents().some((c) => c.name === 'p2p') ? ma : ma.encapsulate(`/p2p/${relayId}`)
    node.services.relayListen
      .listen(target)
      .then(() => {
        this.#reserveAttempt.delete(relayId)
      })
      .catch((err: Error) => {
        this.counters.inc('relay.reservationFailures')
        const attempt = this.#reserveAttempt.get(relayId) ?? 0
        this.#reserveAttempt.set(relayId, attempt + 1)
        const delay = backoffDelay(attempt, { baseMs: 1000, maxMs: 30_000 })
        log('reservation on %s failed, retry in %d ms: %s', relayId, delay, err.message)
        // Without a reservation nobody can dial this tab: try again while the relay is connected.
        setTimeout(() => {
          if (this.#node !== node) return
          if (node.getConnections(peerIdFromString(relayId)).some((c) => c.status === 'open' && c.limits == null)) this.#reserveOn(node, ma, relayId)
        }, delay)
      })
      .finally(() => {
        this.#reserving.delete(relayId)
      })
  }

  /**
   * Abort connections whose stream muxer closed under them. When the remote hangs up (the
   * relay's keep-alive gives up on a tab whose main thread stalled past its ping timeout,
   * and the relay drops the tab's reservation), yamux closes on the GoAway but libp2p
   * leaves the connection 'open': a relay link in that state carries no gossip, holds no
   * reservation (peers dialling this tab get NO_RESERVATION) and, since our keep-alive no
   * longer aborts on a failed ping, was never redialled: the tab stayed out of reach for
   * good. Aborting it fires connection:close, which reconnects the relay and reserves again.
   */
  #reapHalfClosed(): void {
    const node = this.#node
    if (node == null) return
    for (const c of this.#connections()) {
      if (c.status !== 'open') continue
      const muxer = (c as unknown as { muxer?: { status?: string } }).muxer?.status
      if (muxer == null || muxer === 'open') continue
      const id = c.remotePeer.toString()
      this.counters.inc(`connections.halfClosed.${this.#book.isRelay(id) ? 'relay' : connectionTransport(c)}`)
      log('aborting the connection to %s: its muxer is %s', id, muxer)
      c.abort(new MeshError(`the stream muxer of the connection to ${id} is ${muxer}`))
    }
  }

  /**
   * Hang up the relay link of a tab without direct links when it carries no gossip
   * (relay-watch.ts): its subscription to the presence topic never arrived, so this tab
   * hears no presence and announces none, and nobody dials it. The
   * connection:close handler dials the relay again, with fresh identify and gossip streams.
   */
  #checkRelayGossip(): void {
    const node = this.#node
    if (node == null) return
    const links = this.#connections().filter((c) => c.status === 'open' && c.limits == null && this.#book.isRelay(c.remotePeer.toString()))
    if (links.length === 0) return
    // A tab with direct links hears and spreads gossip over them: its relay link is left alone
    // (hanging it up would drop the reservation others dial it through, for nothing).
    if (this.#connections().some((c) => c.status === 'open' && connectionTransport(c) === Transport.webrtc)) return
    const subscribed = new Set(node.services.pubsub.getSubscribers(PRESENCE_TOPIC).map((p) => p.toString()))
    const stranded = this.#relayWatch.stranded(
      links.map((c) => ({ id: c.remotePeer.toString(), openedAt: c.timeline.open })),
      (id) => subscribed.has(id)
    )
    for (const id of stranded) {
      this.counters.inc('relay.noGossip')
      log('the relay %s took no gossip over its link: dialling it again', id)
      for (const c of links) if (c.remotePeer.toString() === id) c.abort(new MeshError(`the relay ${id} took no gossip over its link`))
    }
  }

  /**
   * Close links others opened to this peer beyond the high-water mark (link-trim.ts): the dial
   * target plus DONOR_LINKS plus LINK_TRIM_SLACK. Meshes smaller than that never reach it.
   */
  #trimLinks(): void {
    const node = this.#node
    if (node == null) return
    const target = Math.min(this.#init.targetPeers ?? DEFAULT_TARGET_PEERS, this.#init.maxPeers ?? DEFAULT_MAX_PEERS)
    const highWater = target + DONOR_LINKS + LINK_TRIM_SLACK
    const direct = new Map<string, Connection>()
    for (const c of this.#connections()) {
      if (c.status !== 'open' || connectionTransport(c) !== Transport.webrtc) continue
      const id = c.remotePeer.toString()
      if (!this.#book.isRelay(id) && !direct.has(id)) direct.set(id, c)
    }
    if (direct.size <= highWater) return
    const meshes = (node.services.pubsub as unknown as { mesh?: Map<string, Set<string>> }).mesh
    const inMesh = (id: string): boolean => [...(meshes?.values() ?? [])].some((peers) => peers.has(id))
    const links: TrimCandidate[] = [...direct].map(([id, c]) => ({
      peerId: id,
      inbound: c.direction === 'inbound' && node.getConnections(c.remotePeer).every((x) => x.direction === 'inbound'),
      donor: this.#book.presenceOf(id)?.donating === true,
      busy: c.streams.some((st) => st.protocol != null && BUSY_PROTOCOLS.some((p) => st.protocol?.startsWith(p) === true)),
      gossipMesh: inMesh(id),
      openedAt: c.timeline.open
    }))
    for (const id of linksToTrim(links, highWater, Date.now())) {
      this.counters.inc('links.trimmed')
      for (const c of node.getConnections(peerIdFromString(id))) {
        c.close().catch((err: Error) => {
          c.abort(err)
        })
      }
    }
  }

  #connectedRelays(): string[] {
    const node = this.#node
    if (node == null) return []
    return node
      .getPeers()
      .map((p) => p.toString())
      .filter((p) => this.#book.isRelay(p))
  }

  #setStatus(patch: Partial<RelayStatus>): void {
    this.#status = { ...this.#status, ...patch }
    this.safeDispatchEvent('status', { detail: this.status })
    this.#changed()
  }

  // ---- peers --------------------------------------------------------------

  #onConnectionOpen(conn: Connection): void {
    const id = conn.remotePeer.toString()
    this.counters.inc(`connections.opened.${connectionTransport(conn)}`)
    if (connectionTransport(conn) === Transport.webrtc) {
      this.#budget.release(id)
      if (this.#overBudget(conn)) return
      this.#dialer.connected(id)
      this.#closeRelayedSoon(conn.remotePeer)
      // A peer counts as reached once a direct connection exists.
      this.#ready.resolve()
      if (announcesOnLink(this.#book.size)) this.#announceOnLink()
      else this.counters.inc('presence.linkNotAnnounced')
      const node = this.#node
      if (node != null && this.#pullsOn() && this.#pulls.link(id, this.#book.size)) void this.#pullFrom(node, conn.remotePeer)
    }
    this.#changed()
  }

  /**
   * The last guard of the connection budget: a link others opened that still lands past
   * maxPeers (its admission held its slot longer than LINK_ADMIT_HOLD_MS) is closed at once,
   * counted as `links.refused.late`.
   */
  #overBudget(conn: Connection): boolean {
    const id = conn.remotePeer.toString()
    if (conn.direction !== 'inbound' || this.#book.isRelay(id)) return false
    if (this.#directPeers().size <= this.#budget.maxPeers) return false
    this.counters.inc('links.refused.late')
    log('closed a link %s opened past the budget of %d links', id, this.#budget.maxPeers)
    conn.close().catch((err: Error) => {
      conn.abort(err)
    })
    return true
  }

  /**
   * Once a peer is reached directly, its relayed connection only costs: the relay
   * carries it (and its keep-alive pings) for nothing. Close it once signalling
   * is surely over; a new one is opened if the direct connection must be redialled.
   */
  #closeRelayedSoon(peer: PeerId): void {
    const node = this.#node
    setTimeout(() => {
      if (this.#node !== node || node == null) return
      if (!this.#dialer.hasDirect(peer.toString())) return
      for (const c of node.getConnections(peer)) {
        if (c.status !== 'open' || connectionTransport(c) !== Transport.circuit) continue
        this.counters.inc('connections.relayedClosed')
        c.close().catch((err: Error) => {
          c.abort(err)
        })
      }
    }, RELAYED_CLOSE_DELAY_MS)
  }

  #onConnectionClose(conn: Connection): void {
    const id = conn.remotePeer.toString()
    const node = this.#node
    if (node == null) return
    const gone = node.getConnections(conn.remotePeer).length === 0
    if (gone) this.#budget.release(id)
    if (this.#book.isRelay(id) && gone) {
      this.#setStatus({ state: 'connecting', connected: this.#connectedRelays() })
      this.#relayTimer = setTimeout(
        () => {
          void this.#connectRelays()
        },
        backoffDelay(0, { baseMs: 1000 })
      )
    }
    // A peer whose last link closed keeps its presence: it is still in the mesh, heard by
    // gossip (a trimmed link, a dial that failed), and its entry goes stale on its own after 3
    // re-announcement intervals if it left. Forgotten here, it stayed unknown until its next
    // periodic presence (~44 s at 50 peers). Unless its relay said it left while the link was
    // still open (a closed tab's link is found dead ~2.5 s after the relay saw it go).
    const named = this.#departedLinked.get(id)
    if (named != null && gone) {
      this.#departedLinked.delete(id)
      if (Date.now() - named < DEPARTED_LINKED_MS && this.#book.depart(id)) {
        this.#signed.delete(id)
        this.counters.inc('departed.forgotten')
      }
    }
    this.#changed()
  }

  #onDiscovered(id: string): void {
    this.#dialer.discovered(id)
    this.safeDispatchEvent('discovered', { detail: { peerId: id, at: Date.now() } })
  }

  // ---- presence -------------------------------------------------------------

  /** Ask for an announcement (spaced), counted by why (`mesh.presence.announce.<why>`): which of them fills a mesh's presence traffic. */
  #announce(why: 'change' | 'periodic' | 'soon' | 'link' | 'followUp'): void {
    this.counters.inc(`presence.announce.${why}`)
    this.#spacedAnnounce.run()
  }

  #publishPresence(): void {
    const node = this.#node
    if (node == null) return
    try {
      const addrs = node
        .getMultiaddrs()
        .filter((ma) => ma.getComponents().some((c) => c.name === 'webrtc'))
        .slice(0, 8)
        .map((ma) => ma.toString())
      const { bytes: data, trimmed } = fitPresence({ ...this.#presence, peerId: this.peerId, addrs, ts: Date.now() })
      if (trimmed > 0) this.counters.inc('presence.trimmed')
      if (node.services.pubsub.getSubscribers(PRESENCE_TOPIC).length > 0) this.#milestones.firstAnnounced ??= performance.now()
      this.counters.inc('presence.published')
      void Promise.resolve(node.services.pubsub.publish(PRESENCE_TOPIC, data)).catch(() => {
        this.counters.inc('presence.publish.failed')
      })
    } catch (err) {
      this.counters.inc('presence.publish.failed')
      log.error('cannot publish presence: %e', err)
    }
  }

  #hasOwnWebrtcAddr(): boolean {
    return this.#node?.getMultiaddrs().some((ma) => ma.getComponents().some((c) => c.name === 'webrtc')) ?? false
  }

  /** Announce as soon as our WebRTC address exists, rather than at the next interval. */
  #checkOwnAddrs(): void {
    if (this.#hasOwnWebrtcAddr()) {
      if (this.#milestones.webrtcAddress == null) this.#milestones.webrtcAddress = performance.now()
      this.#announceSoon()
    }
  }

  /**
   * The periodic re-announcement, every presenceIntervalMs of the peers known (±10%, so peers
   * do not announce in step; anywhere in it once it grew by half: nextPresenceDelay).
   */
  #schedulePresence(): void {
    const { ms, phasedForMs } = nextPresenceDelay(this.#intervalMs(), this.#presencePhasedFor, Math.random())
    this.#presencePhasedFor = phasedForMs
    this.#presenceTimer = setTimeout(() => {
      if (this.#node == null) return
      this.#announce('periodic')
      this.#schedulePresence()
    }, ms)
  }

  /** Announce on the next tick, coalescing bursts (address changes, newcomers). */
  #announceSoon(): void {
    if (this.#announceQueued) return
    this.#announceQueued = true
    setTimeout(() => {
      this.#announceQueued = false
      this.#announce('soon')
    }, 20)
  }

  /**
   * Announce for a new direct link: at once, or if one went out for a link less than
   * LINK_ANNOUNCE_MS ago, once when that time is up (covering every link opened meanwhile).
   * Each announcement is gossiped to the whole mesh, and a newcomer opens a link to each of
   * dozens of peers within seconds: one per link cost every peer of the mesh that many
   * presences per join (the simulator's largest presence traffic after newcomer answers).
   */
  #announceOnLink(): void {
    if (this.#linkAnnounce.timer != null) return
    const wait = this.#linkAnnounce.at + LINK_ANNOUNCE_MS - Date.now()
    const fire = (): void => {
      this.#linkAnnounce.timer = undefined
      this.#linkAnnounce.at = Date.now()
      this.#announce('link')
    }
    if (wait <= 0) fire()
    else this.#linkAnnounce.timer = setTimeout(fire, wait)
  }

  /** One more announcement NEWCOMER_ANSWER_MS from now (one pending at most, whatever the number of newcomers). */
  #announceFollowUp(): void {
    if (this.#followUpQueued) return
    this.#followUpQueued = true
    setTimeout(() => {
      this.#followUpQueued = false
      this.#announce('followUp')
    }, NEWCOMER_ANSWER_MS)
  }

  /** Add a peer's announced WebRTC addresses to the peer store (they must name that peer). */
  async #learnAddrs(p: Presence): Promise<void> {
    const node = this.#node
    if (node == null || p.addrs == null || p.addrs.length === 0) return
    // The same addresses are announced again and again: merged once per ADDRS_REMERGE_MS at
    // most (a peer-store merge takes its write lock, decodes and re-encodes the record).
    const key = p.addrs.join(' ')
    const last = this.#learned.get(p.peerId)
    const now = Date.now()
    if (last != null && last.key === key && now - last.at < ADDRS_REMERGE_MS) return
    const addrs: Multiaddr[] = []
    for (const a of p.addrs) {
      try {
        const ma = multiaddr(a)
        const comps = ma.getComponents()
        if (comps.at(-1)?.name === 'p2p' && comps.at(-1)?.value === p.peerId && comps.some((c) => c.name === 'webrtc')) addrs.push(ma)
      } catch {
        /* an unparsable address is ignored; the rest of the presence is valid */
      }
    }
    if (addrs.length === 0) return
    await node.peerStore.merge(peerIdFromString(p.peerId), { multiaddrs: addrs })
    if (this.#learned.size > 4096) this.#learned.clear()
    this.#learned.set(p.peerId, { key, at: now })
  }

  /** A relay this node knows: one it is connected to as a relay, or one of its relay list. */
  #knownRelay(id: string): boolean {
    return this.#book.isRelay(id) || this.#scope.ids.has(id) || this.#status.relays.some((a) => a.endsWith(`/p2p/${id}`))
  }

  /**
   * A relay's departure notice (departures.ts; the validators took it from a known relay only):
   * each named peer this node holds no direct link to is forgotten, here and in what it answers
   * pulls with. A linked one is left to the link's own liveness (it may be alive, only off that relay).
   */
  #onDeparture(msg: Message): void {
    let peers: string[]
    try {
      peers = decodeDeparture(msg.data).peers
    } catch {
      return // the validators accepted it: it decodes
    }
    this.counters.inc('departed.notices')
    let forgotten = 0
    for (const id of peers) {
      if (id === this.peerId) continue
      if (this.#dialer.hasDirect(id)) {
        // Forgotten when that link closes soon (#onConnectionClose); alive and only off its relay, it stays.
        this.counters.inc('departed.linked')
        this.#departedLinked.set(id, Date.now())
        if (this.#departedLinked.size > 1024) this.#departedLinked.delete(this.#departedLinked.keys().next().value as string)
        continue
      }
      this.#signed.delete(id)
      if (this.#book.depart(id)) forgotten++
    }
    if (forgotten === 0) return
    this.counters.inc('departed.forgotten', forgotten)
    this.#changed()
  }

  #onPresence(msg: Message): void {
    if (msg.type !== 'signed') {
      this.counters.inc('presence.invalid')
      return
    }
    const from = msg.from.toString()
    let p: Presence
    try {
      p = decodePresence(msg.data, from)
    } catch (err) {
      this.counters.inc('presence.invalid')
      log('dropped presence from %s: %s', from, (err as Error).message)
      this.strikes.strike(from, 'presence', (err as Error).name)
      return
    }
    this.counters.inc('presence.received')
    if (this.#acceptPresence(p, 'gossip')) this.#signed.put(signedPresenceOf(msg), p)
  }

  /**
   * What a valid presence does, gossiped or pulled: recorded unless outdated, its peer
   * discovered and dialled if new, its addresses learned. A gossiped newcomer is answered
   * (NEWCOMER_ANSWERERS); a pulled presence is no newcomer's. Returns false if outdated.
   */
  #acceptPresence(p: Presence, via: 'gossip' | 'pull', receivedAt = Date.now()): boolean {
    const from = p.peerId
    if (this.#book.isOutdated(p)) {
      // An older announcement delivered late: what it says was already superseded.
      this.counters.inc('presence.outdated')
      return false
    }
    this.#milestones.firstPresenceHeard ??= performance.now()
    const isNew = this.#book.presenceOf(from) == null
    if (this.#book.updatePresence(p, receivedAt)) this.#changed()
    if (isNew) {
      this.#onDiscovered(from)
      // A newcomer learns our addresses now, not at our next interval; and once more after
      // the relay's gossip mesh took it in (a newcomer hears the relay's forwards only once
      // grafted, one heartbeat or two after it subscribed: the first answer may miss it).
      // In a large mesh only a sample of members answers (NEWCOMER_ANSWERERS).
      if (
        via === 'gossip' &&
        (this.#init.newcomerAnswers ?? !this.#pullsOn()) &&
        answersNewcomer(this.#book.size, { linked: this.#dialer.hasDirect(from), donating: this.#presence.donating })
      ) {
        this.#announceSoon()
        this.#announceFollowUp()
      }
    }
    if (!this.#dialer.hasDirect(from)) {
      this.#learnAddrs(p)
        .then(() => {
          this.#dialer.maybeDial(from)
        })
        .catch(() => {
          this.counters.inc('presence.addrs.failed')
        })
    }
    return true
  }

  #pullsOn(): boolean {
    return this.#init.presencePull !== false
  }

  /**
   * Pull the presences `peer` holds (presence-pull.ts) and take each as a gossiped one, once
   * its author's signature and the presence validator's rules pass. A record that fails
   * strikes `peer` and drops the rest of its reply; one older than the staleness window (by
   * its author's clock, with CLOCK_STEP_MS of leeway) is set aside and counted.
   */
  async #pullFrom(node: Libp2pNode, peer: PeerId): Promise<void> {
    const responder = peer.toString()
    const strike = (err: Error): void => {
      this.counters.inc(`presence.pull.invalid.${err.name}`)
      this.strikes.strike(responder, PRESENCE_PULL_STRIKES, err.name)
    }
    this.counters.inc('presence.pull.asked')
    let reply: Awaited<ReturnType<typeof requestPull>>
    try {
      const self = node.peerId.toString()
      const known = this.#book
        .entries()
        .filter((e) => e.peerId !== self && this.#book.presenceOf(e.peerId) != null)
        .sort((a, b) => b.receivedAt - a.receivedAt)
        .map((e) => e.peerId)
      reply = await requestPull(node, peer, { known, onInvalid: strike })
    } catch (err) {
      this.counters.inc('presence.pull.failed')
      this.counters.inc(`presence.pull.failed.${(err as Error).name}`)
      log('presence pull from %s failed: %s', responder, (err as Error).message)
      return
    }
    if (this.#node !== node) return
    this.#pulls.answered(reply.held)
    // Taken (and dialled) in random order, not the responder's (see #rosterFrom).
    const records = [...reply.records]
    shuffle(records)
    const taken = await takePulled(
      { ...reply, records },
      {
        self: node.peerId.toString(),
        has: (from, seqno) => this.#signed.has(from, seqno),
        isBlocked: (author) => this.strikes.isBlocked(author),
        staleMs: (peers) => this.#staleMs(peers),
        known: this.#book.size,
        accept: (p, record, receivedAt) => {
          if (this.#node !== node || !this.#acceptPresence(p, 'pull', receivedAt)) return false
          this.#signed.put(record, p, receivedAt)
          return true
        },
        onInvalid: (err) => {
          log('a presence pulled from %s was refused: %s', responder, err.message)
          this.strikes.strike(responder, PRESENCE_PULL_STRIKES, err.name)
        },
        counters: this.counters
      }
    )
    this.counters.inc('presence.pulled', taken)
    if (taken > 0) this.#milestones.firstPulled ??= performance.now()
    log('pulled %d presences from %s (it holds %d)', taken, responder, reply.held)
  }

  /**
   * Count one invalid message from a peer (see `strikes`); after `maxStrikes` the peer
   * is disconnected and refused for `blockMs`. Kept for callers that predate the
   * per-protocol policy; new callers use `strikes.strike(peer, protocol, reason)`.
   */
  strike(peerId: string, protocol = 'other', reason = 'invalid'): void {
    this.strikes.strike(peerId, protocol, reason)
  }

  #changed(): void {
    this.#peersCache = undefined
    this.#change()
  }
}
