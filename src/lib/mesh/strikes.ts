/**
 * One strike policy for every protocol of ours (issue 11 item 12): a peer that sends
 * something invalid — a bad frame, a length-prefix bomb, a stalled frame, malformed
 * presence, a hostile update, a request over its budget — is struck; strikes are
 * counted per protocol and reason (`mesh.strikes.<protocol>.<reason>`), and at
 * `maxStrikes` the peer is blocked for `blockMs`: its connections are closed and the
 * connection gater refuses new ones both ways until the block ends.
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import { type Counters, logger } from '../core/index.ts'

const log = logger('mesh:strikes')

/** Whoever reports misbehaviour: the transports take this, not the whole policy. */
export interface StrikeSink {
  /**
   * Count one offence by `peer` on `protocol` (e.g. 'task', 'sync', 'plan', 'presence',
   * 'agent-fetch'). `reason` is a short name (an error's name works). Returns true when
   * this strike blocked the peer.
   */
  strike(peer: string, protocol: string, reason: string, weight?: number): boolean
  /** True while `peer` is blocked. */
  isBlocked(peer: string): boolean
}

/** Options of {@link StrikePolicy}. */
export interface StrikePolicyInit {
  /** Strikes before a block. Default 5. */
  maxStrikes?: number
  /** How long a block lasts, in ms. Default 60 s. */
  blockMs?: number
  /** Strikes older than this are forgiven, in ms. Default 10 min. */
  forgetMs?: number
}

/** What the policy needs from the node. */
export interface StrikePolicyComponents {
  counters: Counters
  /** Close every connection to the peer. */
  hangUp(peer: string): Promise<void> | void
  /** Peers never blocked (our relays: blocking one would cut signalling for everyone). */
  exempt?(peer: string): boolean
  now?(): number
}

/**
 * Errors that only a hostile peer produces: an honest encoder never sends them, so
 * one of them is enough to block (FrameTooLargeError: an over-cap frame or a prefix
 * that never ends).
 */
const BLOCK_AT_ONCE = new Set(['FrameTooLargeError'])

/** The weight of one offence named `reason`: a full block for unmistakable attacks, else 1. */
export function strikeWeight(reason: string, maxStrikes: number): number {
  return BLOCK_AT_ONCE.has(reason) ? maxStrikes : 1
}

/** A strike or a block, as {@link StrikePolicy.onEvent} reports it (for the audit log). */
export interface StrikeEvent {
  type: 'strike' | 'block'
  peer: string
  /** `<protocol>.<reason>` of the offence (a block: the one that tipped it). */
  key: string
  at: number
  /** A block: until when. */
  until?: number
}

/** Strikes, blocks and the connection gater that enforces them. */
export class StrikePolicy implements StrikeSink {
  readonly #c: StrikePolicyComponents
  readonly #maxStrikes: number
  readonly #blockMs: number
  readonly #forgetMs: number
  readonly #strikes = new Map<string, { n: number; at: number }>()
  readonly #blocked = new Map<string, number>()
  readonly #listeners = new Set<(e: StrikeEvent) => void>()

  constructor(components: StrikePolicyComponents, init: StrikePolicyInit = {}) {
    this.#c = components
    this.#maxStrikes = init.maxStrikes ?? 5
    this.#blockMs = init.blockMs ?? 60_000
    this.#forgetMs = init.forgetMs ?? 10 * 60_000
  }

  #now(): number {
    return this.#c.now?.() ?? Date.now()
  }

  strike(peer: string, protocol: string, reason: string, weight = strikeWeight(reason, this.#maxStrikes)): boolean {
    const key = `${protocol}.${reason}`.replace(/[^A-Za-z0-9_.-]/g, '_')
    this.#c.counters.inc(`strikes.${key}`)
    this.#c.counters.inc('strikes')
    if (this.#c.exempt?.(peer) === true) return false
    if (this.isBlocked(peer)) return false
    const now = this.#now()
    const prev = this.#strikes.get(peer)
    const n = (prev != null && now - prev.at < this.#forgetMs ? prev.n : 0) + weight
    if (n < this.#maxStrikes) {
      this.#strikes.set(peer, { n, at: now })
      this.#emit({ type: 'strike', peer, key, at: now })
      return false
    }
    this.block(peer, `${key} (${n} strikes)`, key)
    return true
  }

  /** Hear of every strike and block (not of offences by peers already blocked or exempt); returns the unsubscribe function. */
  onEvent(listener: (e: StrikeEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }

  #emit(e: StrikeEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e)
      } catch (err) {
        log.error('strike listener threw %e', err)
      }
    }
  }

  /** Block `peer` for the block time now: close its connections, refuse new ones. */
  block(peer: string, why: string, key = why): void {
    if (this.#c.exempt?.(peer) === true) return
    this.#strikes.delete(peer)
    const now = this.#now()
    this.#blocked.set(peer, now + this.#blockMs)
    this.#emit({ type: 'block', peer, key, at: now, until: now + this.#blockMs })
    this.#c.counters.inc('peers.blocked')
    log('blocking %s for %d ms: %s', peer, this.#blockMs, why)
    void Promise.resolve()
      .then(() => this.#c.hangUp(peer))
      .catch(() => {})
  }

  isBlocked(peer: string): boolean {
    const until = this.#blocked.get(peer)
    if (until == null) return false
    if (until > this.#now()) return true
    this.#blocked.delete(peer)
    return false
  }

  /** Peers blocked now. */
  blocked(): string[] {
    return [...this.#blocked.keys()].filter((p) => this.isBlocked(p))
  }

  /** Gater hooks that refuse a blocked peer in every direction, before and after encryption. */
  gater(): Required<
    Pick<ConnectionGater, 'denyDialPeer' | 'denyInboundEncryptedConnection' | 'denyOutboundEncryptedConnection' | 'denyInboundUpgradedConnection'>
  > {
    const deny = (peer: PeerId): boolean => {
      const blocked = this.isBlocked(peer.toString())
      if (blocked) this.#c.counters.inc('peers.refused')
      return blocked
    }
    return { denyDialPeer: deny, denyInboundEncryptedConnection: deny, denyOutboundEncryptedConnection: deny, denyInboundUpgradedConnection: deny }
  }
}
