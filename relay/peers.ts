/**
 * Relays peer with each other (issue 16, several relays): each relay named by `--peer`
 * (or `--relay`, which the app is also told about) is dialled, kept as a gossipsub direct
 * peer (every message on the relay topics is forwarded to it, whatever the mesh), and
 * redialled while it is away, so presence and peer discovery cross relays and tabs that
 * joined through different relays find each other.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'
// @ts-ignore ws ships no types: an error where noImplicitAny is on (tsconfig.json, which reaches this file through src/sim), none under tsconfig.node.json
import { WebSocket as WsWebSocket } from 'ws'
import { ZeroStateError } from '../src/lib/core/index.ts'
import type { RelayLog } from './log.ts'

/** How often a peer relay that is away is dialled again. */
export const PEER_REDIAL_MS = 2000

/** A relay's peer is not a multiaddr ending in /p2p/<peer id>. */
export class RelayPeerError extends ZeroStateError {
  static override readonly defaultMessage: string = 'A relay to peer with must be a multiaddr ending in /p2p/<peer id>'
  override readonly name: string = 'RelayPeerError'
}

/** Another relay: its peer id and the address to dial it at. */
export interface RelayPeer {
  id: PeerId
  addr: Multiaddr
}

/**
 * The relays to peer with: each entry must be a multiaddr ending in /p2p/<peer id> (the id
 * is what makes it a gossipsub direct peer). Duplicates (by peer id) and `self` are dropped.
 * Throws RelayPeerError naming the bad entry.
 */
export function parseRelayPeers(list: readonly string[], self?: string): RelayPeer[] {
  const out = new Map<string, RelayPeer>()
  for (const entry of list) {
    let addr: Multiaddr
    try {
      addr = multiaddr(entry.trim())
    } catch (err) {
      throw new RelayPeerError(`"${entry}" is not a multiaddr (${(err as Error).message})`)
    }
    const id = addr.getComponents().findLast((c) => c.name === 'p2p')?.value
    if (id == null) throw new RelayPeerError(`"${entry}" names no peer id: a relay to peer with is /…/ws/p2p/<peer id> (its startup line prints it)`)
    let peerId: PeerId
    try {
      peerId = peerIdFromString(id)
    } catch {
      throw new RelayPeerError(`"${entry}" has an invalid peer id "${id}"`)
    }
    if (id === self || out.has(id)) continue
    out.set(id, { id: peerId, addr })
  }
  return [...out.values()]
}

/**
 * The peers of `npm run relay -- --peer MA… --relay MA…`: every --peer must parse; a --relay
 * (also handed to the app) is peered with when it names its peer id, and listed for the
 * app only otherwise (a DNS address behind a proxy may name none).
 */
export function peersFromArgs(peer: readonly string[], relay: readonly string[]): RelayPeer[] {
  const named = relay.filter((r) => {
    try {
      return multiaddr(r.trim())
        .getComponents()
        .some((c) => c.name === 'p2p')
    } catch {
      return false
    }
  })
  return parseRelayPeers([...peer, ...named])
}

/** The running peering. */
export interface RelayPeering {
  /** Peer ids of the peer relays connected now. */
  connected(): string[]
  stop(): void
}

/**
 * Keep a connection to every peer relay: dial at once, and again every PEER_REDIAL_MS while
 * one is not connected (a relay that died and came back is found again within that time).
 */
export function keepRelayPeers(node: Libp2p, peers: readonly RelayPeer[], log: RelayLog): RelayPeering {
  // Dialling needs a WebSocket client; Node has one only from 22 (the relay runs on 20).
  if (typeof globalThis.WebSocket !== 'function') (globalThis as { WebSocket?: unknown }).WebSocket = WsWebSocket
  const dialing = new Set<string>()
  const up = new Set<string>()
  const connected = (p: RelayPeer): boolean => node.getConnections(p.id).some((c) => c.status === 'open')
  const check = (): void => {
    for (const p of peers) {
      const id = p.id.toString()
      if (connected(p)) {
        if (!up.has(id)) log.info('peer relay connected', { peer: id })
        up.add(id)
        continue
      }
      if (up.delete(id)) log.warn('peer relay lost, redialling', { peer: id, every: PEER_REDIAL_MS })
      if (dialing.has(id)) continue
      dialing.add(id)
      node
        .dial(p.addr, { signal: AbortSignal.timeout(PEER_REDIAL_MS * 2) })
        .then(() => {
          if (!up.has(id)) log.info('peer relay connected', { peer: id })
          up.add(id)
        })
        .catch((err: Error) => {
          log.debug('peer relay unreachable', { peer: id, error: err.message })
        })
        .finally(() => {
          dialing.delete(id)
        })
    }
  }
  check()
  const timer = setInterval(check, PEER_REDIAL_MS)
  timer.unref?.()
  return {
    connected: () => peers.filter(connected).map((p) => p.id.toString()),
    stop: () => {
      clearInterval(timer)
    }
  }
}
