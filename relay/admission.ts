/**
 * Admission on the relay (issue 11 item 7): who may hold a reservation slot and who may
 * start a connection upgrade, shared fairly between addresses so that a flood from one
 * address (or one identity) cannot take the slots of others.
 *
 * The slot logic is pure (FairSlots) so it is tested without a network; `relayAdmission`
 * joins it to libp2p's connection gater and the circuit relay server's reservations.
 */

/** A slot holder: an identity (peer id) seen from an address (IP, or the whole multiaddr). */
interface Slot<A> {
  address: A
  at: number
}

/** What `FairSlots.admit` decided. */
export type Admission<H> = { admitted: true; evicted?: H } | { admitted: false; reason: 'per-address' | 'full' }

/**
 * A bounded set of slots, one per holder, at most `perAddress` per address. When full, a
 * newcomer takes the newest slot of the address holding the most, provided that address
 * holds at least two more than the newcomer's: max-min fairness, so an address under its
 * fair share is never refused while another is over it, and long-standing holders of the
 * flooding address keep theirs.
 */
export class FairSlots<H, A> {
  readonly #slots = new Map<H, Slot<A>>()
  readonly #perAddress = new Map<A, Set<H>>()
  #clock = 0

  constructor(
    readonly max: number,
    readonly perAddress: number
  ) {}

  get size(): number {
    return this.#slots.size
  }

  has(holder: H): boolean {
    return this.#slots.has(holder)
  }

  countOf(address: A): number {
    return this.#perAddress.get(address)?.size ?? 0
  }

  /** Try to give `holder` a slot; a holder that has one keeps it. */
  admit(holder: H, address: A): Admission<H> {
    if (this.#slots.has(holder)) return { admitted: true }
    const mine = this.countOf(address)
    if (mine >= this.perAddress) return { admitted: false, reason: 'per-address' }
    let evicted: H | undefined
    if (this.#slots.size >= this.max) {
      let top: A | undefined
      let topCount = -1
      for (const [a, set] of this.#perAddress) {
        if (set.size > topCount) {
          top = a
          topCount = set.size
        }
      }
      if (top === undefined || topCount < mine + 2) return { admitted: false, reason: 'full' }
      evicted = this.#newestOf(top)
      if (evicted === undefined) return { admitted: false, reason: 'full' }
      this.release(evicted)
    }
    this.#slots.set(holder, { address, at: this.#clock++ })
    let set = this.#perAddress.get(address)
    if (set == null) {
      set = new Set()
      this.#perAddress.set(address, set)
    }
    set.add(holder)
    return evicted === undefined ? { admitted: true } : { admitted: true, evicted }
  }

  /** Give a slot back (its connection closed, or it was evicted). */
  release(holder: H): void {
    const slot = this.#slots.get(holder)
    if (slot == null) return
    this.#slots.delete(holder)
    const set = this.#perAddress.get(slot.address)
    set?.delete(holder)
    if (set?.size === 0) this.#perAddress.delete(slot.address)
  }

  #newestOf(address: A): H | undefined {
    let newest: H | undefined
    let at = -1
    for (const h of this.#perAddress.get(address) ?? []) {
      const s = this.#slots.get(h)
      if (s != null && s.at > at) {
        newest = h
        at = s.at
      }
    }
    return newest
  }
}

/**
 * A token bucket per key (requests per window), with the keys it tracks bounded so a
 * flood of fresh keys cannot grow it without limit.
 */
export class KeyedRate<K> {
  readonly #buckets = new Map<K, { tokens: number; at: number }>()

  constructor(
    readonly perWindow: number,
    readonly windowMs: number,
    readonly maxKeys = 65_536,
    readonly now: () => number = Date.now
  ) {}

  /** Take one token for `key`; false when its budget is spent. */
  take(key: K): boolean {
    const t = this.now()
    let b = this.#buckets.get(key)
    if (b == null) {
      if (this.#buckets.size >= this.maxKeys) {
        const oldest = this.#buckets.keys().next().value
        if (oldest !== undefined) this.#buckets.delete(oldest)
      }
      b = { tokens: this.perWindow, at: t }
      this.#buckets.set(key, b)
    } else {
      b.tokens = Math.min(this.perWindow, b.tokens + ((t - b.at) * this.perWindow) / this.windowMs)
      b.at = t
    }
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}

/** The host part of a multiaddr string (`/ip4/1.2.3.4/tcp/…` → `1.2.3.4`), or the whole string. */
export function addressKey(ma: { toString(): string }): string {
  const m = /^\/(?:ip4|ip6|dns4|dns6|dns)\/([^/]+)/.exec(ma.toString())
  return m?.[1] ?? ma.toString()
}

/**
 * Reservations whose holders have not yet shown themselves as mesh peers (issue 11 item 7).
 * Every peer of the mesh gossips a signed presence as soon as it reaches a relay, so a
 * reservation held without one is free to make and does nothing for the mesh: 200
 * throwaway identities from one address held their slots for as long as they stayed
 * connected. Here each address may hold at most `perAddress` unproven reservations at
 * once, and while it holds more than `tolerated`, those unproven for over `graceMs` lapse,
 * oldest first (the relay drops them and blocks their holders). A few idle holders per address (a peer
 * whose presence is slow, a test client) are left alone; a crowd of them is a flood.
 */
export class Probation<H, A> {
  readonly #held = new Map<H, { address: A; since: number }>()
  readonly #perAddress = new Map<A, number>()

  constructor(
    readonly perAddress: number,
    readonly graceMs: number,
    readonly tolerated: number
  ) {}

  get size(): number {
    return this.#held.size
  }

  has(holder: H): boolean {
    return this.#held.has(holder)
  }

  countOf(address: A): number {
    return this.#perAddress.get(address) ?? 0
  }

  /** Whether `address` may take one more unproven reservation. */
  hasRoom(address: A): boolean {
    return this.countOf(address) < this.perAddress
  }

  /** `holder` now holds a reservation without having shown itself; false when its address is at its cap. */
  enter(holder: H, address: A, now: number): boolean {
    if (this.#held.has(holder)) return true
    if (!this.hasRoom(address)) return false
    this.#held.set(holder, { address, since: now })
    this.#perAddress.set(address, this.countOf(address) + 1)
    return true
  }

  /** `holder` showed itself (or left): it is no longer on probation. */
  release(holder: H): void {
    const h = this.#held.get(holder)
    if (h == null) return
    this.#held.delete(holder)
    const n = this.countOf(h.address) - 1
    if (n <= 0) this.#perAddress.delete(h.address)
    else this.#perAddress.set(h.address, n)
  }

  /**
   * Holders past their grace, oldest first, while their address holds more than `tolerated`
   * (the newest `tolerated` stay), removed from probation.
   */
  lapse(now: number): Array<{ holder: H; address: A }> {
    const out: Array<{ holder: H; address: A }> = []
    // Insertion order is the order of entry: oldest first.
    for (const [holder, h] of this.#held) {
      if (now - h.since < this.graceMs || this.countOf(h.address) <= this.tolerated) continue
      out.push({ holder, address: h.address })
      this.release(holder)
    }
    return out
  }
}
