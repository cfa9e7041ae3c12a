/**
 * Names and numbers the browser node and the relay must agree on. The relay
 * imports this file, so nothing here may touch browser-only globals.
 */

/** Gossipsub topic for @libp2p/pubsub-peer-discovery. The relay subscribes so it forwards it. */
export const DISCOVERY_TOPIC = 'zerostate._peer-discovery._p2p._pubsub'

/** Gossipsub topic where peers announce capabilities, donation and region. */
export const PRESENCE_TOPIC = 'zerostate/presence/1'

/** Every gossip topic the relay must subscribe to so that it forwards them between browsers. */
export const RELAY_TOPICS = [DISCOVERY_TOPIC, PRESENCE_TOPIC] as const

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
 * FIELD-NOTES: with libp2p's defaults a closed tab is noticed after 6–12 s; these
 * values brought it to 1.5–2.4 s.
 */
export const CONNECTION_MONITOR = {
  pingInterval: 1000,
  pingTimeout: { minTimeout: 1500, maxTimeout: 3000 }
} as const

/** How often presence is re-announced (and how stale an entry may get before it is ignored). */
export const PRESENCE_INTERVAL_MS = 2000
/** How long after a direct connection opens its relayed twin is closed (signalling must be over). */
export const RELAYED_CLOSE_DELAY_MS = 1000

/**
 * Gossipsub scoring for a mesh of browsers: many peers share one public IP (a NAT, an
 * office, or loopback in tests), and gossipsub's default IP-colocation penalty then
 * grey-lists them — the relay stopped forwarding to every peer after ~9 from one IP.
 * Abuse is handled by our own strikes instead.
 */
export const GOSSIP_SCORE_PARAMS = { IPColocationFactorWeight: 0 } as const
