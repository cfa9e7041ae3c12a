/** The mesh layer: the libp2p node, discovery, presence, peer book. */
export { MeshNode, type MeshNodeInit, type RelayStatus } from './node.ts'
export { PeerBook, Transport, connectionTransport, bestTransport, type PeerInfo } from './peer-book.ts'
export { PresenceSchema, decodePresence, encodePresence, defaultRegion, MAX_PRESENCE_FREE_SLOTS, MAX_PRESENCE_WORKERS, type Presence } from './presence.ts'
export { REGIONS, UNKNOWN_REGION, UnknownRegionError, isRegion, regionLabel, regionOfTimeZone, toRegion, type Region } from './regions.ts'
export { StrikePolicy, strikeWeight, type StrikeSink, type StrikePolicyInit, type StrikePolicyComponents, type StrikeEvent } from './strikes.ts'
export { PeerBudget, OverBudgetError, type PeerBudgetInit, type PeerBudgetComponents } from './budgets.ts'
export * from './errors.ts'
export * from './constants.ts'
export { DepartureBatcher, DepartureSchema, decodeDeparture, encodeDeparture, type Departure } from './departures.ts'
export {
  ROSTER_MAX,
  ROSTER_PROTOCOL_ID,
  RosterSchema,
  answerRoster,
  askRoster,
  followRoster,
  rosterProtocol,
  type Roster,
  type RosterSubscriber
} from './roster.ts'
export {
  GOSSIP_CHECKS,
  GOSSIP_SCORE_THRESHOLDS,
  checkDeparture,
  checkDiscovery,
  checkPresence,
  decodeDiscoveryRecord,
  gossipFastMsgId,
  gossipMsgIdToString,
  gossipScoring,
  gossipStrikeProtocol,
  installGossipValidators,
  type GossipRejectReason,
  type GossipValidatorHooks,
  type GossipVerdict
} from './gossip-validators.ts'
