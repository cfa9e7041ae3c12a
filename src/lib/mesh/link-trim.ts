/**
 * Bounding incoming links (issue 16, scale). A peer dials up to its target (DEFAULT_TARGET_PEERS,
 * then a few donors), but takes every link others open to it: in a growing mesh each newcomer
 * dials 16 older peers, so older peers held ~31 links each at 50 simulated peers (34.5 on
 * average in one run) where 16 + 4 were meant, and every link costs both ends for as long as
 * it is open (gossipsub's heartbeat and control traffic, RTT samples, liveness reads, sync).
 * Past a high-water mark, the links others opened to this peer are closed, newest first among
 * those gossipsub does not use as a mesh link, down to the mark; kept always: links this peer
 * dialled, donors' links (the router offers steps to linked donors), links carrying a task or
 * a sync exchange now, and links younger than LINK_TRIM_MIN_AGE_MS (a newcomer's first links
 * carry its join).
 */

/** Direct links beyond this many above the dial target (target + DONOR_LINKS + slack) are trimmed. */
export const LINK_TRIM_SLACK = 4
/** A link younger than this is never trimmed. */
export const LINK_TRIM_MIN_AGE_MS = 20_000

/** One direct link as the trim policy sees it. */
export interface TrimCandidate {
  peerId: string
  /** The other side opened it. */
  inbound: boolean
  /** Its peer donates (its presence says so). */
  donor: boolean
  /** A task or sync stream is open on it now. */
  busy: boolean
  /** gossipsub uses it as a mesh link on some topic. */
  gossipMesh: boolean
  /** When it opened (ms, the clock of `now`). */
  openedAt: number
}

/** Which links to close so that at most `highWater` remain (fewer closed when too few may go). */
export function linksToTrim(links: readonly TrimCandidate[], highWater: number, now: number): string[] {
  const excess = links.length - highWater
  if (excess <= 0) return []
  const closable = links.filter((l) => l.inbound && !l.donor && !l.busy && now - l.openedAt >= LINK_TRIM_MIN_AGE_MS)
  closable.sort((a, b) => Number(a.gossipMesh) - Number(b.gossipMesh) || b.openedAt - a.openedAt)
  return closable.slice(0, excess).map((l) => l.peerId)
}

/**
 * Whether to take a link another peer opens (issue 16, scale): the connection budget
 * (maxPeers, DEFAULT_MAX_PEERS) held for inbound links too. The dialer stops at its target,
 * but links others opened were capped only by libp2p's maxConnections (maxPeers × 2 + 8,
 * room for a circuit beside each link while it is dialled): in a simulated mesh of 200
 * growing from one relay, the oldest peers held up to 103 direct links, since every newcomer
 * dials the peers it hears of first. Refused past the budget: a WebRTC link from a peer not
 * linked yet, and the circuit its dial is signalled over (the cheap place: no WebRTC work on
 * either side). Always taken: relays, a second connection of a peer already linked (the
 * other half of a pair's dial), anything else (a relay's own link).
 */
export function admitsInbound(o: {
  /** The peer's connection arrives over this transport. */
  transport: 'webrtc' | 'circuit' | 'websockets'
  /** It is one of our relays. */
  relay: boolean
  /** A direct link with it is open already. */
  linked: boolean
  /** Distinct peers (relays aside) this peer holds an open direct link with. */
  direct: number
  maxPeers: number
}): boolean {
  if (o.relay || o.linked || o.transport === 'websockets') return true
  return o.direct < o.maxPeers
}
