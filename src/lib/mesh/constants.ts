/**
 * Names and numbers the browser node and the relay must agree on. The relay
 * imports this file, so nothing here may touch browser-only globals.
 */

/** Gossipsub topic for @libp2p/pubsub-peer-discovery. The relay subscribes so it forwards it. */
export const DISCOVERY_TOPIC = 'zerostate._peer-discovery._p2p._pubsub'

/** Gossipsub topic where peers announce capabilities, donation and region. */
export const PRESENCE_TOPIC = 'zerostate/presence/1'

/**
 * Gossipsub topic where a relay tells the mesh which peers that joined through it have left
 * (departures.ts): only relays publish on it, and a tab takes it only from a relay it knows.
 */
export const DEPARTED_TOPIC = 'zerostate/departed/1'

/** Every gossip topic the relay must subscribe to so that it forwards them between browsers. */
export const RELAY_TOPICS = [DISCOVERY_TOPIC, PRESENCE_TOPIC, DEPARTED_TOPIC] as const

/** Where the relay serves its own multiaddrs to the app (no address is hard-coded in the app). */
export const RELAYS_PATH = '/zerostate/relays.json'

/** Max bytes of one presence message; larger ones are dropped and counted. */
export const MAX_PRESENCE_BYTES = 4096

/**
 * Connection budget of a tab: well under Chromium's 500 RTCPeerConnection cap
 * (js-libp2p#2591), leaving room for relays and churn.
 */
export const DEFAULT_MAX_PEERS = 48

/**
 * Direct links a peer dials on its own up to (issue 16, scale): gossip carries the rest of
 * the mesh. Every link costs both ends for as long as it is open (gossipsub's heartbeat and
 * control traffic, a data channel's window updates, RTT samples, liveness): in a mesh of 50
 * simulated peers each held ~25 links, in one of 200 it would hold DEFAULT_MAX_PEERS. Past
 * this many a peer dials only a donor while it has fewer than DONOR_LINKS of them (the
 * router offers steps to linked donors); links other peers open to it are still taken, up
 * to maxPeers. Meshes of 17 peers or fewer stay fully linked as before. Gossipsub wants D=6
 * (4-12) mesh links per topic: 16 leaves room for its choice.
 */
export const DEFAULT_TARGET_PEERS = 16

/** Donors a peer dials past DEFAULT_TARGET_PEERS while it has fewer than this many linked (see there). */
export const DONOR_LINKS = 4

/**
 * libp2p's keep-alive pings as a tab used them until issue 16: they measure RTTs but no
 * longer drop a link when a pong is late (issue 11 item 8: a peer whose main thread stalled
 * ~1.5 s lost every link). A tab's WebRTC links are judged by LIVENESS instead, from the
 * transport's own bytes, and its RTTs are sampled within RTT_SAMPLING (rtt-sampler.ts);
 * kept for peers built on the old settings (test/hostile's raw peer).
 */
export const CONNECTION_MONITOR = {
  pingInterval: 1000,
  pingTimeout: { minTimeout: 1500, maxTimeout: 3000 },
  abortConnectionOnPingFailure: false
} as const

/**
 * RTT sampling of a node's connections (rtt-sampler.ts): at most `perSecond` pings a
 * second over all its links, none more often than every `minIntervalMs`, a ping given
 * `timeoutMs`. With 1 s per link (CONNECTION_MONITOR) a tab's pings grew with its links: 48
 * ping streams a second out and 48 in, each negotiated and written to the peer store.
 */
export const RTT_SAMPLING = { perSecond: 4, minIntervalMs: 1000, timeoutMs: 3000 } as const

/**
 * How often a node tells its listeners (the UI, the trust wiring, the activity log) that its
 * peers' round trips moved, when nothing else changed; a link or a presence that changes is
 * told at once, and peers() shows fresh RTTs within a second either way. Every 1 s, each
 * listener rebuilt and compared the peer list (O(links)) once a second on every idle peer:
 * ~7 % of an idle simulated peer's thread at 40 peers (issue 16, scale).
 */
export const PEERS_REPAINT_MS = 5000

/**
 * The relay's keep-alive: a closed tab's WebSocket closes with its TCP socket, so pings
 * only catch half-open links and can afford to wait out a tab's stalled main thread.
 * At 5 s / 5-10 s it did not: with five tabs loading at load average ~19, the relay
 * dropped three stalled tabs in one round (each lost its reservation and the relay's
 * gossip until it noticed and reconnected). A ping every 10 s, given 20-30 s.
 */
export const RELAY_CONNECTION_MONITOR = {
  pingInterval: 10_000,
  pingTimeout: { minTimeout: 20_000, maxTimeout: 30_000 }
} as const

/**
 * Leave detection of a direct WebRTC link (issue 11 item 8). Chromium answers SCTP and
 * ICE on its network thread, so a peer whose main thread is blocked still acknowledges
 * what is sent to it, and a closed tab acknowledges nothing. A link that received no byte
 * for `silenceMs` (sampled every `sampleMs` from RTCPeerConnection stats) is suspected:
 * it is probed (a stream opened on it, which its peer's transport must acknowledge) and
 * closed if nothing arrived by the next sample `confirmMs` or more later. A closed tab
 * leaves peers() within about 2-2.5 s (its last bytes, up to a sample to notice, silence,
 * a sample to confirm); a stalled or busy one keeps its links when the probe is answered.
 * (Silence alone closed links while five tabs loaded at once: mesh.liveness.closed 1-4.)
 */
export const LIVENESS = { sampleMs: 500, silenceMs: 1000, confirmMs: 450 } as const

/** How often presence is re-announced in a small mesh (and how stale an entry may get before it is ignored: 3 intervals). */
export const PRESENCE_INTERVAL_MS = 2000
/** Up to this many peers known, presence is re-announced every PRESENCE_INTERVAL_MS as in a small mesh. */
export const PRESENCE_SMALL_MESH = 8
/**
 * Beyond PRESENCE_SMALL_MESH peers the re-announcement slows with the mesh: each peer more
 * adds PRESENCE_PER_PEER_MS to the interval, so each peer receives about one periodic
 * presence a second whatever the mesh size (at a fixed 2 s, 200 peers made each receive
 * 100/s, all of them signature-checked). Every presence is flooded to the whole mesh and
 * arrives ~D times: in an idle simulated mesh of 32 peers the periodic presences at
 * 250 ms per peer (4 a second received) cost each peer ~8 ms of CPU a second, a third of
 * its idle cost (issue 16). Changes (donating, free workers, addresses), answers to
 * newcomers and announcements for new links still go out at once; the periodic one only
 * keeps entries from going stale and tells peers that missed a change.
 */
export const PRESENCE_PER_PEER_MS = 1000
/**
 * The slowest re-announcement (a peer is forgotten 3 intervals after its last one: 12 min).
 * Past the cap each peer receives more than one periodic presence a second: at 120 s, 1.7 at
 * 200 peers, ~90 % of an idle simulated peer's unique gossip there (issue 16). At 240 s the
 * pace of one a second holds up to 246 peers; a peer with no link to one that left lists it
 * for at most 3 intervals (~10 min at 200 peers; a linked one leaves at once).
 */
export const PRESENCE_MAX_INTERVAL_MS = 240_000

/** The re-announcement interval in a mesh where this peer knows the presence of `peers` others. */
export function presenceIntervalMs(peers: number): number {
  const beyond = Math.max(0, peers - PRESENCE_SMALL_MESH)
  return Math.min(PRESENCE_MAX_INTERVAL_MS, PRESENCE_INTERVAL_MS + Math.round(beyond * PRESENCE_PER_PEER_MS))
}

/**
 * How long a presence that was not renewed stays in a peer book before it is dropped
 * (PeerBook.prune): 2 stale times (3 intervals each) of the slowest pace a live peer announces
 * at. With a fixed interval (`fixedIntervalMs`, MeshNodeInit.presenceIntervalMs) that is its own;
 * with the interval that grows with the mesh it is the longest one plus its 10 % of jitter
 * (~26 min), not the reader's: a tab that knows fewer peers than the mesh holds has a shorter
 * stale time than those peers take to re-announce, and a bound that shrank with the book would
 * drop live peers, shrinking the book and the bound again.
 */
export function presencePruneAfterMs(fixedIntervalMs?: number): number {
  return (fixedIntervalMs ?? PRESENCE_MAX_INTERVAL_MS * 1.1) * 3 * 2
}

/**
 * How far the re-announcement interval must grow, from the one its phase was last drawn for,
 * for the next re-announcement to be drawn anywhere in the new interval (nextPresenceDelay).
 */
export const PRESENCE_REPHASE = 1.5

/**
 * The wait before the next periodic re-announcement, and the interval its phase now belongs to.
 * Normally one interval ±10 %. But the interval grows with the peers known, and the peers of a
 * joining mesh learn most of the others in the same minute (the presence pulls at the end of
 * the join): ±10 % kept their next announcements in step, so the mesh's presence traffic came
 * in waves. In a simulated mesh of 200 peers the whole mesh announced 2.2 presences a second
 * in one 10 s window and 0.2 in another of the same run (steady would be ~1), and each peer's
 * CPU rose and fell with them, the gossip behind them waiting (issue 16). When the interval
 * grew to PRESENCE_REPHASE times the one the phase was drawn for (or more), the wait is drawn
 * anywhere in the new interval, so the announcements spread evenly over it from the first
 * round. Never later than one interval +10 %: a presence is kept for 3 intervals.
 * `r` is uniform in [0, 1).
 */
export function nextPresenceDelay(intervalMs: number, phasedForMs: number, r: number): { ms: number; phasedForMs: number } {
  if (intervalMs >= phasedForMs * PRESENCE_REPHASE) return { ms: intervalMs * (0.05 + 0.95 * r), phasedForMs: intervalMs }
  return { ms: intervalMs * (0.9 + 0.2 * r), phasedForMs: Math.min(phasedForMs, intervalMs) }
}

/**
 * How often pubsub peer discovery re-broadcasts a peer's addresses (its broadcast at start
 * finds no subscriber yet, so this is also its first). Presence carries the same addresses,
 * is answered at once for a newcomer and is re-announced on a budget that grows with the
 * mesh (presenceIntervalMs); discovery's fixed interval made every peer receive n / interval
 * records a second, each merged twice into the peer store: at 1 s the mesh's largest steady
 * traffic, at 10 s still 20 a second per peer in a mesh of 200 (presence: ~7). At 60 s it
 * is a fallback for peers that missed a presence, 3 a second per peer at 200 (issue 16).
 * Since the presence pull, peers that pull only listen (MeshNodeInit.discoveryBroadcast):
 * this is the pace of older peers and of the simulator's no-pull baseline.
 */
export const DISCOVERY_INTERVAL_MS = 60_000
/**
 * A newcomer's presence is answered at once and again this long after (join time): the
 * newcomer receives what the relay forwards only once the relay's gossip mesh took it in
 * (a heartbeat or two: the relay's is 250 ms, a tab's 500 ms), and the first answer
 * often arrived before, leaving the newcomer to wait for the next 2 s announcement.
 */
export const NEWCOMER_ANSWER_MS = 600

/** At most one presence announcement per this many ms for new direct links (the first at once). */
export const LINK_ANNOUNCE_MS = 2000

/**
 * Up to this many peers known, a new direct link is announced to the mesh (LINK_ANNOUNCE_MS
 * apart); past it, not. Each announcement is flooded to every peer for the sake of one
 * neighbour, which in a larger mesh already holds this peer's presence (it dialled by it, or was
 * dialled after this peer's join announcement) or pulls it (presence-pull.ts). In the simulator
 * at 200 peers, link announcements were 3,189 of the ~5,900 presences that reached anyone, and an
 * idle peer received ~23 presences a second (issue 16). Small meshes (the browser tests' up to 16
 * tabs) announce as before.
 */
export const LINK_ANNOUNCE_MAX_PEERS = 16

/**
 * How often a peer's announced addresses are merged into the peer store again while they stay
 * the same. Each merge takes the store's write lock, decodes and re-encodes the record (~4 % of
 * a simulated peer's CPU at one a minute); the store forgets an address an hour after it was
 * last merged (@libp2p/peer-store's MAX_ADDRESS_AGE). At 60 s every periodic presence of a mesh
 * over 66 peers (re-announced every 60-120 s) was merged again (issue 16).
 */
export const ADDRS_REMERGE_MS = 15 * 60_000

/** Whether a peer that knows the presence of `peers` others announces a new direct link to the mesh. */
export function announcesOnLink(peers: number): boolean {
  return peers <= LINK_ANNOUNCE_MAX_PEERS
}

/**
 * How many members answer a newcomer's first presence, on average, beyond those linked to
 * it directly (which always answer). Every answer is gossiped to the whole mesh, so when
 * every member answered each join cost every peer two presences per member (2n per peer,
 * 2n² in all): in the simulator at 24 peers, ~2,200 presences received per peer while
 * the mesh grew, and at 200 peers more than its CPU could carry. A member answers with
 * probability NEWCOMER_ANSWERERS / peers it knows (all of them up to that size, so small
 * meshes join as before), a donor with four times that (a newcomer's tasks need donors
 * first); the newcomer hears the rest at their next periodic announcement.
 */
export const NEWCOMER_ANSWERERS = 16

/** Whether this member answers a newcomer's first presence (see NEWCOMER_ANSWERERS); `linked`: it has a direct link to the newcomer. */
export function answersNewcomer(peers: number, opts: { linked: boolean; donating: boolean; random?: () => number }): boolean {
  if (opts.linked) return true
  const share = (NEWCOMER_ANSWERERS * (opts.donating ? 4 : 1)) / Math.max(1, peers)
  return share >= 1 || (opts.random ?? Math.random)() < share
}

/** How long after a direct connection opens its relayed twin is closed (signalling must be over). */
export const RELAYED_CLOSE_DELAY_MS = 1000

/**
 * Gossipsub scoring for a mesh of browsers: many peers share one public IP (a NAT, an
 * office, or loopback in tests), and gossipsub's default IP-colocation penalty then
 * grey-lists them — the relay stopped forwarding to every peer after ~9 from one IP.
 * Abuse is handled by our own strikes instead.
 */
export const GOSSIP_SCORE_PARAMS = { IPColocationFactorWeight: 0 } as const

/**
 * Gossip limits (issue 11 item 9), applied by tabs and the relay alike: an RPC larger
 * than `maxRpcBytes` is dropped by gossipsub's length-prefixed reader before it is
 * decoded; a discovery record larger than `maxDiscoveryBytes` (or a presence larger than
 * MAX_PRESENCE_BYTES) is rejected by the topic validator before anything else is read.
 */
export const GOSSIP_LIMITS = { maxRpcBytes: 64 * 1024, maxDiscoveryBytes: 2048, maxDiscoveryAddrs: 16 } as const

/**
 * Gossipsub 1.2 sends IDONTWANT to every other mesh peer of a topic on a message's first
 * arrival when it is at least this large (the library's default is 512 bytes): a presence
 * (~1.1 KB) cost each peer D-1 IDONTWANT sends and about as many receipts, an RPC each,
 * to spare a copy only where the IDONTWANT outran the neighbour's own forward (a link's
 * latency, ~25 ms, against a forward within a few ms). Bandwidth is not what a peer runs
 * short of; RPCs are its CPU (issue 16). Only messages far larger than presence or a
 * discovery record (GOSSIP_LIMITS) are worth it.
 */
export const GOSSIP_IDONTWANT_MIN_BYTES = 16 * 1024

/**
 * gossipsub's degrees on tabs and relays (issue 16, scale), below the library's D=6 (4-12),
 * Dlazy=6 and gossipFactor 0.25. An idle peer's gossip is mostly copies of presences (each
 * forwarded to every mesh peer) and IHAVE lists sent every heartbeat to max(Dlazy,
 * gossipFactor × non-mesh peers) peers; a relay, in every tab's topic, sent IHAVE to a
 * quarter of the mesh four times a second. Own messages still go to every topic peer
 * (floodPublish), so the first hop reaches ~30 peers and a mesh of 200 is covered in ~3 hops.
 * Simulator, 40 peers in one thread, same run alternating: gossip RPCs sent per second and
 * idle CPU per peer drop, gossip p99 with them (README, "Scale"). Dhi 6, not 8: peers graft
 * onto a peer past D, and a degree left to float up to 8 made each presence arrive ~6 times
 * (pre-validation duplicates 5-9 a second per idle peer at 40); pruned back to 4 at 7, it
 * arrives ~4-5 times.
 */
export const GOSSIP_DEGREES = { D: 4, Dlo: 3, Dhi: 6, Dlazy: 3, gossipFactor: 0.1 } as const

/**
 * A tab's gossipsub heartbeat (gossipsub's own default; the relay keeps 250 ms). Each one
 * scores every gossip peer, repairs the topic meshes and sends IHAVE lists to Dlazy peers per
 * topic: at 500 ms about a third of an idle peer's gossip RPCs were IHAVE (issue 16). A
 * newcomer is grafted by the relay within its 250 ms, and a tab's own messages go to every
 * topic peer (floodPublish), so the tab's slower heartbeat costs its join little.
 */
export const TAB_HEARTBEAT_MS = 1000

/**
 * How long a tab's dial of a relay may take (connection, Noise, yamux): RELAY_DIAL_MS, doubled
 * after each failed round up to RELAY_DIAL_MAX_MS, so a tab whose thread lags (the dial's
 * steps wait on its event loop) still gets through instead of timing out every round.
 */
export const RELAY_DIAL_MS = 5000
export const RELAY_DIAL_MAX_MS = 20_000

/** The patience of a tab's relay dial after `failedRounds` failed rounds in a row. */
export function relayDialMs(failedRounds: number): number {
  return Math.min(RELAY_DIAL_MS * 2 ** Math.min(Math.max(0, failedRounds), 8), RELAY_DIAL_MAX_MS)
}

/**
 * Relay admission (issue 11 item 7). A reservation lives as long as its holder's
 * connection; the store holds at most `maxReservations`, of which one address may hold at
 * most `perAddress` while others wait (a full store takes a newcomer's slot from the
 * address holding the most, never from one under its fair share). Connection upgrades:
 * `maxPendingUpgrades` at once, each cut after `upgradeTimeoutMs` (libp2p's own 10 s: at 3 s, a
 * tab whose thread lagged a few seconds as it joined, a phone loading the app or a busy machine,
 * was cut mid-handshake at every attempt; 11 of 200 simulated peers never reached the relay,
 * issue 16); `perAddressPerSecond`
 * new connections per address (browsers behind one proxy share an address).
 * A holder is unproven until it gossips a valid presence (every mesh peer does on reaching
 * a relay): one address may hold `unprovenPerAddress` unproven reservations at once, and
 * past `unprovenTolerated` of them, those unproven for `presenceGraceMs` are dropped and
 * their holders blocked (relay/admission.ts Probation). At the cap, a request waits
 * `presenceWaitMs` for its holder's presence (the two race as a tab joins) before it is refused.
 */
export const RELAY_LIMITS = {
  maxReservations: 1024,
  perAddress: 1024,
  maxConnections: 2048,
  maxPendingUpgrades: 256,
  upgradeTimeoutMs: 10_000,
  perAddressPerSecond: 200,
  unprovenPerAddress: 32,
  unprovenTolerated: 4,
  presenceGraceMs: 10_000,
  presenceWaitMs: 2000
} as const

/**
 * Discovery dials (issue 11 item 10): dials to peers not yet connected, per second with
 * a burst, for all sources together and for one announcing peer (its presence repeats).
 */
export const DIAL_BUDGET = { perSecond: 8, burst: 16, perPeerPerMinute: 12 } as const

/**
 * Gossip per author (issue 11, beyond the list: per-peer rate limits on every gossip topic):
 * messages one author may publish on a topic per window. A valid message over it is not
 * forwarded (gossipsub Ignore: no penalty to the honest peer that relayed it) and strikes its
 * author. An honest tab announces its presence at most every PRESENCE_MIN_SPACING_MS (40 in
 * 10 s at most, so 60 leaves room for messages delayed and delivered together) and its
 * discovery record at start and every DISCOVERY_INTERVAL_MS.
 */
export const GOSSIP_RATES: Readonly<Record<string, { messages: number; windowS: number }>> = {
  [PRESENCE_TOPIC]: { messages: 60, windowS: 10 },
  [DISCOVERY_TOPIC]: { messages: 10, windowS: 60 },
  // A relay flushes once per DEPARTURES.flushMs; its most reservations (1,024) leaving at once are 16 notices.
  [DEPARTED_TOPIC]: { messages: 30, windowS: 10 }
}

/**
 * Departure notices (departures.ts): a relay gathers the peers that left it for `flushMs` and
 * names at most `maxPeers` of them per notice (64 ids of 52 characters are ~3.5 KB; `maxBytes` fits 64 of the longest the schema takes).
 */
export const DEPARTURES = { flushMs: 1000, maxPeers: 64, maxBytes: 10_240 } as const
/** Least time between two presence announcements of one tab; those asked for sooner go out together at its end. */
export const PRESENCE_MIN_SPACING_MS = 250

/**
 * The presence pull (presence-pull.ts, issue 16): a peer asks its relay and its first direct
 * links for the presences they hold, each as its author signed it, instead of waiting for
 * every member's periodic re-announcement (~44 s apart at 50 peers, 120 s at most).
 * `maxRecords` and `maxReplyBytes` cap one reply (a responder sends no more, an asker
 * refuses a reply that passes them and blocks its sender); `timeoutMs` bounds a whole pull,
 * both ends (5 s timed out 13-15 of ~45 pulls per thread while 30 simulated peers joined on a
 * machine at load 7-9). A responder answers `perPeer` pulls per peer per `windowS` (more are refused,
 * counted and struck) and `total` from everyone per window; an asker asks `asksPerWindow`
 * times per window at most: its relay, its first `firstLinks` direct links, and any later
 * link while it knows fewer than half of what a responder said it held.
 */
export const PRESENCE_PULL = {
  maxRecords: 256,
  maxReplyBytes: 512 * 1024,
  frameBytes: 64 * 1024,
  timeoutMs: 10_000,
  perPeer: 4,
  total: 60,
  windowS: 60,
  asksPerWindow: 6,
  firstLinks: 2
} as const

/** Times a tab asks a relay for its roster again after it did not answer (MeshNode's roster pull). */
export const ROSTER_RETRIES = 3
