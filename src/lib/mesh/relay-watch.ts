/**
 * A relay link that carries no gossip (issue 16, scale). A tab that reached a loaded relay can
 * end up with an open connection that gossipsub never uses: identify timed out, so the
 * relay's protocols were never learnt and gossipsub's topology never opened its stream; or the
 * relay dropped the tab's gossip stream. The tab then hears no presence and announces none, so
 * nobody dials it and it dials nobody: in simulated meshes of 40 and 100 peers, 1 to 20 tabs
 * stayed alone for minutes, "connected" to the relay. A relay always takes the presence topic,
 * so when a tab has no direct link and its relay link never got the relay's subscription,
 * that link is hung up and dialled again (the node's connection:close reconnects), after a
 * grace that doubles each time the same relay strands us, so an overloaded relay is not
 * hammered. A tab with direct links keeps its relay link: gossip flows over the others.
 */

/** How long a relay link may stay open without the relay's presence subscription. */
export const RELAY_GOSSIP_GRACE_MS = 15_000

/** The longest grace, after repeated strandings by the same relay. */
export const RELAY_GOSSIP_GRACE_MAX_MS = 120_000

/** An open, unlimited connection to a relay. */
export interface RelayLink {
  /** The relay's peer id. */
  id: string
  /** When the connection opened (ms, same clock as `now`). */
  openedAt: number
}

/** Decides which relay links carry no gossip and should be dialled again. */
export class RelayGossipWatch {
  readonly #strandings = new Map<string, number>()

  constructor(
    readonly graceMs = RELAY_GOSSIP_GRACE_MS,
    readonly maxGraceMs = RELAY_GOSSIP_GRACE_MAX_MS
  ) {}

  /** The grace the next link to `id` gets: doubled for each stranding in a row. */
  graceFor(id: string): number {
    return Math.min(this.maxGraceMs, this.graceMs * 2 ** (this.#strandings.get(id) ?? 0))
  }

  /**
   * The relays whose links to hang up now: open for longer than their grace without the
   * relay taking gossip (`gossiping`). A relay that gossips is forgiven its past strandings.
   * Several links to one relay count from the oldest.
   */
  stranded(links: readonly RelayLink[], gossiping: (id: string) => boolean, now = Date.now()): string[] {
    const oldest = new Map<string, number>()
    for (const l of links) oldest.set(l.id, Math.min(oldest.get(l.id) ?? Number.POSITIVE_INFINITY, l.openedAt))
    const out: string[] = []
    for (const [id, openedAt] of oldest) {
      if (gossiping(id)) {
        this.#strandings.delete(id)
        continue
      }
      if (now - openedAt < this.graceFor(id)) continue
      this.#strandings.set(id, (this.#strandings.get(id) ?? 0) + 1)
      out.push(id)
    }
    // Relays no longer linked keep their count: the reconnect is the next link to judge.
    return out
  }
}
