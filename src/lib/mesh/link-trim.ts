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

import { DONOR_LINKS } from './constants.ts'

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

/** How long a link admitted but not open yet (its circuit signalling, its WebRTC handshake) holds its slot. */
export const LINK_ADMIT_HOLD_MS = 15_000

/**
 * Slots of the connection budget only this peer's own dials may take: min(8, maxPeers / 4).
 * Links others open are taken up to maxPeers minus these, so that strangers opening links
 * to a peer (a Sybil with many identities) never fill its whole budget and leave it no room
 * to link the peers it chose itself (an eclipse). Bitcoin Core keeps its outbound slots the
 * same way. A budget under 4 reserves nothing.
 */
export function outboundReserve(maxPeers: number): number {
  return Math.min(8, Math.floor(maxPeers / 4))
}

/**
 * Slots of the connection budget kept for donors while a peer links fewer than DONOR_LINKS of
 * them: min(DONOR_LINKS, maxPeers / 8). The router offers steps to linked donors only, and a
 * peer whose budget other links had filled could link none: at 200 simulated peers, 18
 * submitters held 48 links, knew all 40 donors and linked none (their dials skipped for the
 * budget ~960 times each), and their tasks ran where they were submitted.
 */
export function donorReserve(maxPeers: number): number {
  return Math.min(DONOR_LINKS, Math.floor(maxPeers / 8))
}

/** What a LinkBudget reads of the node: its open direct links and the dials under way. */
export interface LinkBudgetView {
  /** Peers (relays aside) this peer holds an open direct link with. */
  direct(): Iterable<string>
  /** Those of them whose link the other side opened. */
  inbound(): Iterable<string>
  /** Peers this peer is dialling (or waiting on to dial it). */
  dialing(): Iterable<string>
  /** A clock in ms. */
  now(): number
}

/**
 * The one count of the connection budget (maxPeers) shared by the gater and the dialer: the
 * peers linked, being dialled, and admitted inbound whose link is not open yet. Counting only
 * open links let a link others opened in while this peer's own dials were under way (or two
 * arriving together) through: a peer whose budget was 2 held 3 links under load. Links others
 * open get at most maxPeers - outboundReserve(maxPeers) slots, but for a link this peer wants
 * (a donor while it links too few): the oldest peers, dialled by every newcomer, held 40 links
 * others opened and refused the donors that joined later, and at 200 simulated peers 16 of 100
 * tasks found no linked donor and ran in their submitter. A stranger claiming to donate gets at
 * most DONOR_LINKS slots that way.
 */
export class LinkBudget {
  readonly #held = new Map<string, number>()

  constructor(
    readonly maxPeers: number,
    readonly view: LinkBudgetView
  ) {}

  /** The peers that hold a slot now. */
  used(): Set<string> {
    const used = new Set<string>(this.view.direct())
    for (const id of this.view.dialing()) used.add(id)
    const now = this.view.now()
    for (const [id, at] of this.#held) {
      if (used.has(id) || now - at >= LINK_ADMIT_HOLD_MS) this.#held.delete(id)
      else used.add(id)
    }
    return used
  }

  /** Whether another link may be taken for `id` (it holds a slot already, or one is free). */
  hasRoom(id: string, wanted = false): boolean {
    const used = this.used()
    return used.has(id) || used.size < this.#cap(wanted)
  }

  /** Slots a new link may fill up to: all of them for a link this peer wants, else all but the donor reserve. */
  #cap(wanted: boolean): number {
    return wanted ? this.maxPeers : this.maxPeers - donorReserve(this.maxPeers)
  }

  /** Slots links others open may take (maxPeers less the outbound reserve). */
  get inboundMax(): number {
    return this.maxPeers - outboundReserve(this.maxPeers)
  }

  /**
   * Take (or refuse) a connection `id` opens to this peer, and hold its slot until its link
   * opens, its connections close, or LINK_ADMIT_HOLD_MS passes.
   */
  admit(o: {
    id: string
    transport: 'webrtc' | 'circuit' | 'websockets'
    relay: boolean
    /**
     * A link this peer wants though others opened it: a donor while it links fewer than
     * DONOR_LINKS (the router offers steps to linked donors). It may take a reserved slot.
     */
    wanted?: boolean
  }): boolean {
    if (o.relay || o.transport === 'websockets') return true
    const used = this.used()
    const linked = used.has(o.id)
    if (!admitsInbound({ ...o, linked, direct: used.size, maxPeers: this.#cap(o.wanted === true) })) return false
    if (linked) return true
    // The slots links others opened hold: open ones and those admitted, not open yet.
    const inbound = new Set(this.view.inbound())
    for (const id of this.#held.keys()) inbound.add(id)
    if (inbound.size >= this.inboundMax && o.wanted !== true) return false
    this.#held.set(o.id, this.view.now())
    return true
  }

  /** `id`'s link opened, or its last connection closed: it holds no admitted slot any more. */
  release(id: string): void {
    this.#held.delete(id)
  }

  /** Peers admitted whose link is not open yet. */
  get held(): number {
    return this.#held.size
  }
}
