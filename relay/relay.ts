/**
 * The bootstrap relay: a small Node libp2p node that browsers reach over
 * WebSockets. It runs the circuit relay v2 server (so browsers can signal WebRTC
 * through it), identify, ping and gossipsub (so pubsub peer discovery and presence
 * flow through it). It stores no task or user state.
 */
import '../src/lib/core/polyfills.ts'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { Connection, MultiaddrConnection, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p, type Libp2p } from 'libp2p'
import {
  DEPARTED_TOPIC,
  DepartureBatcher,
  GOSSIP_DEGREES,
  GOSSIP_LIMITS,
  RELAY_CONNECTION_MONITOR,
  RELAY_LIMITS,
  PRESENCE_TOPIC,
  RELAY_TOPICS,
  ROSTER_PROTOCOL_ID,
  type RosterSubscriber,
  answerRoster,
  decodePresence,
  gossipFastMsgId,
  gossipMsgIdToString,
  gossipScoring,
  gossipStrikeProtocol,
  installGossipValidators,
  presenceIntervalMs,
  StrikePolicy
} from '../src/lib/mesh/index.ts'
import { repairGossip } from '../src/lib/mesh/gossip-repair.ts'
import { PRESENCE_PULL_PROTOCOL_ID, PullResponder, SignedPresenceStore, signedPresenceOf } from '../src/lib/mesh/presence-pull.ts'
import { Counters } from '../src/lib/core/index.ts'
import { FairSlots, KeyedRate, Probation, addressKey } from './admission.ts'
import { relayLog, type RelayLog } from './log.ts'
import { relayMetrics, type RelayMetrics } from './metrics.ts'
import { keepRelayPeers, type RelayPeer, type RelayPeering } from './peers.ts'

/** Options of a relay. */
export interface RelayOptions {
  /** Interface the libp2p WebSocket listener binds to. Default 127.0.0.1. */
  host?: string
  /** libp2p WebSocket port; 0 picks a free one. Default 0. */
  port?: number
  /** Public multiaddrs to announce instead of the listen addresses (deployment behind NAT/proxy). */
  announce?: string[]
  /** Directory where the relay keeps its key, so its peer id survives restarts. */
  dataDir: string
  /** Structured log (one JSON line per peer join/leave, block). Default: relayLog('info'). */
  log?: RelayLog
  /** Prometheus metrics (libp2p's and the relay's). Default: a fresh registry. */
  metrics?: RelayMetrics
  /** Admission limits (RELAY_LIMITS by default); a deployment behind a proxy sees one address for all. */
  limits?: Partial<RelayLimits>
  /** Other relays to peer with (parseRelayPeers): dialled, kept as gossipsub direct peers, redialled when away. */
  peers?: RelayPeer[]
  /** Gossip departure notices for tabs that joined through this relay (src/lib/mesh/departures.ts). Default true; false is the simulator's A/B baseline. */
  departures?: boolean
  /** Transports and listen addresses beside the WebSocket listener: the simulator's in-process links (src/sim/mesh.ts). */
  extra?: { transports: NonNullable<Parameters<typeof createLibp2p>[0]>['transports']; listen: string[] }
}

/** The relay's admission limits (issue 11 item 7); see RELAY_LIMITS. */
export type RelayLimits = { -readonly [K in keyof typeof RELAY_LIMITS]: number }

/** What the relay's admission did, for tests and the bench. */
export interface RelayAdmissionStats {
  reservations: number
  refused: { perAddress: number; full: number; rate: number; unproven: number }
  evicted: number
  /** Holders blocked for holding a reservation without a presence past the grace (Probation). */
  squatters: number
  released: number
  pendingRefused: number
  /** Peers blocked: a frame over a reader's cap, a reservation held without a presence, gossip the validators refused (gossipStruck). */
  blocked: number
  /** Strikes for gossip the validators refused (a peer is blocked at the fifth, as on tabs). */
  gossipStrikes: number
  /** Roster asks answered, and refused (over 4 per peer per minute, or from a blocked peer). */
  roster: { answered: number; refused: number }
}

/** Presence pulls the relay answers per PRESENCE_PULL.windowS from everyone (a tab: PRESENCE_PULL.total): 10 joins a second. */
export const RELAY_PULLS_PER_WINDOW = 600
/** The circuit relay's hop protocol, read by the library (pbStream, prefix capped by our patch). */
export const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'
/** How long a peer that sent an over-cap frame is refused. */
export const BLOCK_MS = 60_000
/** yamux's initial stream window; the relay does not let it grow. */
export const STREAM_WINDOW = 256 * 1024
/** Unread bytes a relay stream may hold before it is reset. */
export const STREAM_READ_BUFFER = 256 * 1024
const OVERSIZE_ERRORS = new Set(['InvalidDataLengthLengthError', 'InvalidDataLengthError', 'InvalidMessageLengthError', 'StreamBufferError'])

/** The part of libp2p's registrar used to wrap a library handler. */
interface HandlerRegistry {
  getHandler(protocol: string): { handler: (stream: Stream, connection: Connection) => void | Promise<void>; options: object }
  handle(protocol: string, handler: (stream: Stream, connection: Connection) => void | Promise<void>, options?: object): Promise<void>
}

/**
 * Wrap the library's handler of `protocol`: a stream it aborts for a frame over its cap
 * (the library catches the error and aborts the stream) calls `onOversize(peer)`, and so
 * does a stream the relay already reset for holding more than STREAM_READ_BUFFER unread
 * bytes before its handler ran (libp2p awaits a peer-store write between negotiation and
 * the handler; under load a bomb could fill the buffer meanwhile).
 */
async function strikeOversizedFrames(
  node: Libp2p<{ registrarAccess: { registrar: HandlerRegistry } }>,
  protocol: string,
  onOversize: (peer: PeerId) => void
): Promise<void> {
  const registrar = node.services.registrarAccess.registrar
  const original = registrar.getHandler(protocol)
  await node.unhandle(protocol)
  await registrar.handle(
    protocol,
    async (stream, connection) => {
      // Reset before its handler ran for holding over STREAM_READ_BUFFER unread bytes.
      if (overflowed.has(stream)) {
        onOversize(connection.remotePeer)
        return
      }
      stream.addEventListener(
        'close',
        (evt) => {
          const err = (evt as Event & { error?: Error }).error
          if (err != null && OVERSIZE_ERRORS.has(err.name)) onOversize(connection.remotePeer)
        },
        { once: true }
      )
      await original.handler(stream, connection)
    },
    original.options
  )
}

/** Inbound streams the muxer reset for holding more unread bytes than STREAM_READ_BUFFER. */
const overflowed = new WeakSet<Stream>()

/**
 * yamux with the relay's stream limits, marking inbound streams reset for an overfull read
 * buffer (StreamBufferError), so a handler that starts after the reset can still strike.
 */
function relayMuxer(): ReturnType<typeof yamux> {
  const factory = yamux({ streamOptions: { maxStreamWindowSize: STREAM_WINDOW, maxReadBufferLength: STREAM_READ_BUFFER } })
  return () => {
    const muxerFactory = factory()
    const create = muxerFactory.createStreamMuxer.bind(muxerFactory)
    muxerFactory.createStreamMuxer = (maConn) => {
      const muxer = create(maConn) as ReturnType<typeof create> & { onRemoteStream(stream: Stream): void }
      const onRemoteStream = muxer.onRemoteStream.bind(muxer)
      muxer.onRemoteStream = (stream) => {
        stream.addEventListener(
          'close',
          (evt) => {
            if ((evt as Event & { error?: Error }).error?.name === 'StreamBufferError') overflowed.add(stream)
          },
          { once: true }
        )
        onRemoteStream(stream)
      }
      return muxer
    }
    return muxerFactory
  }
}

/** A running relay. */
export interface Relay {
  node: Libp2p
  peerId: string
  /** Multiaddrs browsers should dial (announced ones if given). */
  multiaddrs(): string[]
  admission(): RelayAdmissionStats
  /** The relay's Prometheus registry (served at GET /metrics). */
  metrics: RelayMetrics
  /** Peer ids of the peer relays (RelayOptions.peers) connected now. */
  peerRelays(): string[]
  /** The relay's own counters (`relay.strikes.*`, `relay.gossip.*` of the gossip repairs). */
  counters(): Record<string, number>
  stop(): Promise<void>
}

async function loadOrCreateKey(dataDir: string): Promise<PrivateKey> {
  const file = join(dataDir, 'relay-key.pb')
  try {
    return privateKeyFromProtobuf(new Uint8Array(await readFile(file)))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`the relay key at ${file} is unreadable; delete it to make a new one`, { cause: err })
  }
  const key = await generateKeyPair('Ed25519')
  await mkdir(dataDir, { recursive: true })
  await writeFile(file, privateKeyToProtobuf(key), { mode: 0o600 })
  return key
}

/** Start a relay. */
export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const log = opts.log ?? relayLog('info')
  const metrics = opts.metrics ?? relayMetrics()
  const host = opts.host ?? '127.0.0.1'
  const limits: RelayLimits = { ...RELAY_LIMITS, ...opts.limits }
  const privateKey = await loadOrCreateKey(opts.dataDir)
  const self = peerIdFromPrivateKey(privateKey)
  // A relay listed among its own peers (one list for every relay of a deployment) skips itself.
  const peers = (opts.peers ?? []).filter((p) => !p.id.equals(self))
  // Reservations: one slot per identity, shared fairly between addresses, and held only
  // while the holder is connected (libp2p keeps them 2 h after the holder left).
  const slots = new FairSlots<string, string>(limits.maxReservations, limits.perAddress)
  // One identity asks for its reservation once per connection; a few more are refreshes.
  const reserveRate = new KeyedRate<string>(6, 60_000)
  // Reservations of holders that have not gossiped a presence yet, per address.
  const probation = new Probation<string, string>(limits.unprovenPerAddress, limits.presenceGraceMs, limits.unprovenTolerated)
  // Connected peers that gossiped a valid presence (it may come before their reservation).
  const presented = new Set<string>()
  // Reservations waiting a moment for their holder's presence (its address at the unproven cap).
  const presenceWaiters = new Map<string, Set<(shown: boolean) => void>>()
  const waitForPresence = (id: string, ms: number): Promise<boolean> => {
    if (presented.has(id)) return Promise.resolve(true)
    return new Promise((resolve) => {
      let set = presenceWaiters.get(id)
      if (set == null) {
        set = new Set()
        presenceWaiters.set(id, set)
      }
      const waiters = set
      const done = (shown: boolean): void => {
        clearTimeout(timer)
        waiters.delete(done)
        if (waiters.size === 0 && presenceWaiters.get(id) === waiters) presenceWaiters.delete(id)
        resolve(shown)
      }
      const timer = setTimeout(() => done(false), ms)
      waiters.add(done)
    })
  }
  // Upgrades in progress per address, so one address cannot hold every pending slot.
  const pending = new Map<string, Set<MultiaddrConnection>>()
  const stats: RelayAdmissionStats = {
    reservations: 0,
    refused: { perAddress: 0, full: 0, rate: 0, unproven: 0 },
    evicted: 0,
    squatters: 0,
    gossipStrikes: 0,
    released: 0,
    pendingRefused: 0,
    blocked: 0,
    roster: { answered: 0, refused: 0 }
  }
  let libp2p: Libp2p<{ relay: ReturnType<ReturnType<typeof circuitRelayServer>> }> | undefined
  /**
   * Holders of a reservation that have gossiped a valid presence (the only ones a roster names:
   * a reservation alone is free, and 200 throwaway identities reserving filled rosters with
   * peers that never answer a dial), and the tabs following the roster (src/lib/mesh/roster.ts).
   */
  const present = new Set<string>()
  const rosterFollowers = new Map<string, RosterSubscriber>()
  const dropReservation = (peer: PeerId): void => {
    present.delete(peer.toString())
    probation.release(peer.toString())
    const r = libp2p?.services.relay.reservations.get(peer)
    if (r == null) return // The reservation's expiry timer would delete a later reservation of the same peer.
    ;(r.signal as AbortSignal & { clear?: () => void }).clear?.()
    libp2p?.services.relay.reservations.delete(peer)
  }
  const pendingOf = (address: string): Set<MultiaddrConnection> => {
    let set = pending.get(address)
    if (set == null) {
      set = new Set()
      pending.set(address, set)
    }
    for (const c of set) if (c.status !== 'open') set.delete(c)
    return set
  }
  const perAddressPending = Math.max(8, Math.floor(limits.maxPendingUpgrades / 4))
  // Peers that sent a frame over the cap of a library reader (issue 11 item 3: the hop
  // bomb was capped, never struck): refused for BLOCK_MS, their connections closed.
  const blocked = new Map<string, number>()
  // Gossip the validators refuse is struck as on tabs (one policy, src/lib/mesh/strikes.ts):
  // an honest peer checks what it publishes and forwards with the same validators, so the
  // author of a refused message (or the sender of one refused on its size) is at fault.
  // Peer relays are exempt: blocking one would split the mesh.
  const peerRelayIds = new Set(peers.map((p) => p.id.toString()))
  const counters = new Counters('relay')
  const gossipStrikes = new StrikePolicy(
    {
      counters,
      hangUp: (peer) => libp2p?.hangUp(peerIdFromString(peer)),
      exempt: (peer) => peerRelayIds.has(peer)
    },
    { blockMs: BLOCK_MS }
  )
  gossipStrikes.onEvent((e) => {
    if (e.type === 'strike') stats.gossipStrikes++
    else {
      stats.gossipStrikes++
      stats.blocked++
      log.warn('peer blocked: gossip the validators refused', { peer: e.peer, reason: e.key, seconds: BLOCK_MS / 1000 })
    }
  })
  const isBlocked = (id: string): boolean => {
    if (gossipStrikes.isBlocked(id)) return true
    const until = blocked.get(id)
    if (until == null) return false
    if (until > Date.now()) return true
    blocked.delete(id)
    return false
  }
  const node = await createLibp2p({
    privateKey,
    metrics: (components: { logger: Parameters<RelayMetrics['libp2p']>[0]['logger'] }) => metrics.libp2p(components),
    addresses: {
      listen: [`/ip4/${host}/tcp/${opts.port ?? 0}/ws`, ...(opts.extra?.listen ?? [])],
      announce: opts.announce ?? []
    },
    transports: [webSockets(), ...(opts.extra?.transports ?? [])],
    connectionEncrypters: [noise()],
    // A stream's receive window is granted as bytes arrive, read or not, and grows up to
    // 16 MiB: a peer could push megabytes onto a stream before its handler starts reading
    // (under load, negotiation to handler took 50+ ms and the whole 8 MiB hop bomb was
    // taken). Keep the window at its initial size and reset a stream whose unread bytes
    // pass STREAM_READ_BUFFER: nothing the relay reads (hop, stop, identify, gossip RPCs)
    // comes near it, and relayed circuits are read as they arrive.
    streamMuxers: [relayMuxer()],
    connectionManager: {
      maxConnections: limits.maxConnections,
      // libp2p's defaults (10 pending, 5 per second per IP, 10 s to upgrade) let one
      // address shut everyone out; an honest upgrade takes milliseconds.
      maxIncomingPendingConnections: limits.maxPendingUpgrades,
      inboundConnectionThreshold: limits.perAddressPerSecond,
      inboundUpgradeTimeout: limits.upgradeTimeoutMs
    },
    connectionMonitor: RELAY_CONNECTION_MONITOR,
    connectionGater: {
      // The relay accepts browsers from anywhere it is reachable; it dials only its peer relays.
      denyDialMultiaddr: () => false,
      denyInboundConnection: (maConn) => {
        const set = pendingOf(addressKey(maConn.remoteAddr))
        if (set.size >= perAddressPending) {
          stats.pendingRefused++
          return true
        }
        set.add(maConn)
        return false
      },
      denyInboundUpgradedConnection: (peer, maConn) => {
        pending.get(addressKey(maConn.remoteAddr))?.delete(maConn)
        return isBlocked(peer.toString())
      },
      denyInboundEncryptedConnection: (peer) => isBlocked(peer.toString()),
      denyInboundRelayReservation: async (peer) => {
        const id = peer.toString()
        let conn = libp2p?.getConnections(peer).find((c) => c.status === 'open')
        if (conn == null) return true
        if (!slots.has(id) && !reserveRate.take(id)) {
          stats.refused.rate++
          return true
        }
        const address = addressKey(conn.remoteAddr)
        // A tab gossips its presence as it reaches the relay, so its reservation request and its
        // presence race: at the cap, wait a moment for the presence before refusing (tabs of a
        // classroom joining at once behind one address were refused, then waited for a retry).
        if (!presented.has(id) && !slots.has(id) && !probation.hasRoom(address) && !(await waitForPresence(id, limits.presenceWaitMs))) {
          stats.refused.unproven++
          return true
        }
        conn = libp2p?.getConnections(peer).find((c) => c.status === 'open')
        if (conn == null) return true
        const unproven = !presented.has(id) && !slots.has(id)
        if (unproven && !probation.hasRoom(address)) {
          stats.refused.unproven++
          return true
        }
        const r = slots.admit(id, address)
        if (!r.admitted) {
          stats.refused[r.reason === 'full' ? 'full' : 'perAddress']++
          return true
        }
        if (r.evicted !== undefined) {
          stats.evicted++
          dropReservation(peerIdFromString(r.evicted))
        }
        if (unproven) probation.enter(id, address, Date.now())
        return false
      }
    },
    services: {
      registrarAccess: (components: { registrar: unknown }) => ({ registrar: components.registrar as HandlerRegistry }),
      identify: identify(),
      ping: ping({ maxInboundStreams: 4, maxOutboundStreams: 4 }),
      relay: circuitRelayServer({
        reservations: {
          // FairSlots is the cap; the store's own (which refuses everyone alike) sits above it.
          maxReservations: limits.maxReservations + 1,
          // Signalling a WebRTC connection needs little data; keep the limit but make it roomy.
          defaultDataLimit: BigInt(1 << 24),
          defaultDurationLimit: 10 * 60_000
        }
      }),
      // Browsers wait for the relay's heartbeat to be grafted into the discovery and
      // presence meshes; 250 ms (default 1 s) cuts their join time. The relay checks
      // gossip as tabs do, so what a tab would reject is not forwarded and its author's
      // score falls (issue 11 item 9).
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        canRelayMessage: true,
        heartbeatInterval: 250,
        ...GOSSIP_DEGREES,
        // Other relays get every message on the relay topics (presence, discovery), mesh or not.
        directPeers: peers.map((p) => ({ id: p.id, addrs: [p.addr] })),
        maxInboundDataLength: GOSSIP_LIMITS.maxRpcBytes,
        // Copies of a message seen are dropped before their signature is checked again.
        fastMsgIdFn: gossipFastMsgId,
        msgIdToStrFn: gossipMsgIdToString,
        // Blocked peers fall far below the graylist: nothing they send is even parsed.
        ...gossipScoring((id) => (isBlocked(id) ? -1000 : 0))
      })
    }
  })
  libp2p = node
  for (const topic of RELAY_TOPICS) node.services.pubsub.subscribe(topic)
  // The tabs' gossipsub repairs (an IWANT answer split under the RPC limit; a peer dropped on a
  // read error while its connection stays open taken back): the relay is every tab's first
  // gossip link, and one cut this way carried no gossip either way until it closed.
  repairGossip(node.services.pubsub, {
    splitBytes: GOSSIP_LIMITS.maxRpcBytes / 2,
    counters,
    connection: (peer) => node.getConnections(peer).find((c) => c.status === 'open' && c.limits == null)
  })
  installGossipValidators(node.services.pubsub, {
    isBlocked,
    // Departure notices: its peer relays' (tabs never publish any; its own are not validated).
    isRelay: (id) => peerRelayIds.has(id),
    onIgnore: (_author, topic, reason) => {
      counters.inc(`gossip.ignored.${gossipStrikeProtocol(topic)}.${reason}`)
    },
    onReject: (author, topic, verdict) => {
      if (author !== undefined) gossipStrikes.strike(author, gossipStrikeProtocol(topic), verdict.reason)
    },
    onOverRate: (author, topic) => {
      gossipStrikes.strike(author, gossipStrikeProtocol(topic), 'over-rate')
    }
  })
  // A holder's first presence that passed the validators (gossipsub checked its signature by
  // that peer id): from now on rosters name it, and its followers hear of it at once.
  // Every presence that passed the validators, as its author signed it, answers tabs' pulls
  // (src/lib/mesh/presence-pull.ts): a newcomer's first link is the relay, which hears the
  // whole mesh's presence, so one pull gives it every peer instead of their next re-announcement.
  // A holder connected here is in the mesh whatever its record's age; others' records last 3 intervals.
  const signedPresences: SignedPresenceStore = new SignedPresenceStore({
    staleMs: (): number => presenceIntervalMs(signedPresences.size) * 3,
    alive: (id) => presented.has(id)
  })
  node.services.pubsub.addEventListener('message', (evt) => {
    const msg = evt.detail
    if (msg.topic !== PRESENCE_TOPIC || msg.type !== 'signed') return
    const id = msg.from.toString()
    try {
      signedPresences.put(signedPresenceOf(msg), decodePresence(msg.data, id))
    } catch {
      /* the validators accepted it: it decodes */
    }
    // Shown itself: off probation. Only peers connected here (a presence may come through another relay).
    if (!presented.has(id) && node.getConnections(msg.from).length > 0) {
      presented.add(id)
      probation.release(id)
      for (const shown of [...(presenceWaiters.get(id) ?? [])]) shown(true)
    }
    if (present.has(id) || !node.services.relay.reservations.has(msg.from)) return
    present.add(id)
    for (const f of rosterFollowers.values()) f.reserved(id)
  })

  metrics.bind({
    peers: () => node.getPeers().length,
    reservations: () => node.services.relay.reservations.size,
    guard: () => ({
      blocked: stats.blocked,
      refused: { ...stats.refused, pending: stats.pendingRefused, roster: stats.roster.refused },
      evicted: stats.evicted,
      squatters: stats.squatters,
      gossipStrikes: stats.gossipStrikes
    })
  })
  // A holder that left (its last connection here closed, after it had shown a presence) is named
  // in a departure notice, so tabs without a link to it stop listing it (src/lib/mesh/departures.ts).
  /** Peers that asked this relay's roster while connected: tabs that joined through it. */
  const joinedHere = new Set<string>()
  const departures = new DepartureBatcher(async (data) => {
    counters.inc('departed.notices')
    await node.services.pubsub.publish(DEPARTED_TOPIC, data)
  })
  node.addEventListener('peer:connect', (evt) => {
    departures.returned(evt.detail.toString())
    metrics.joined()
    log.info('peer joined', { peer: evt.detail.toString(), connected: node.getPeers().length })
  })
  node.addEventListener('peer:disconnect', (evt) => {
    // A reservation ends with its holder's last connection.
    const id = evt.detail.toString()
    // Only a peer that joined through this relay (a reservation here, or it asked this relay's
    // roster as a joining tab does) and showed its presence: a tab that only dialled a peer
    // through this relay's circuits and hung up has not left.
    if (opts.departures !== false && (slots.has(id) || joinedHere.has(id)) && presented.has(id)) {
      departures.left(id)
      counters.inc('departed.peers')
    }
    joinedHere.delete(id)
    if (slots.has(id)) stats.released++
    slots.release(id)
    dropReservation(evt.detail)
    presented.delete(id)
    // A tab gone from the relay is most likely gone: a newcomer is not sent its presence.
    signedPresences.delete(id)
    metrics.left()
    log.info('peer left', { peer: id, connected: node.getPeers().length })
  })

  await node.start()
  // The roster (src/lib/mesh/roster.ts): who holds a reservation here, newest first, then each
  // new one, so that tabs dial each other at once instead of waiting for presence gossip. A
  // few asks per peer per minute (a tab asks once per connection), one follower per peer.
  const rosterRate = new KeyedRate<string>(4, 60_000)
  await node.handle(
    ROSTER_PROTOCOL_ID,
    async (stream, connection) => {
      const asker = connection.remotePeer.toString()
      if (isBlocked(asker) || !rosterRate.take(asker)) {
        stats.roster.refused++
        stream.abort(new Error('roster: over budget'))
        return
      }
      stats.roster.answered++
      joinedHere.add(asker)
      const holders = function* (): Generator<string> {
        const ids = [...node.services.relay.reservations.keys()].map((p) => p.toString())
        for (let i = ids.length - 1; i >= 0; i--) {
          const id = ids[i] as string
          if (present.has(id) && !isBlocked(id)) yield id
        }
      }
      try {
        const follower = await answerRoster(stream, connection, holders)
        rosterFollowers.set(asker, follower)
        const forget = (): void => {
          if (rosterFollowers.get(asker) === follower) rosterFollowers.delete(asker)
        }
        stream.addEventListener('close', forget, { once: true })
        if (stream.status !== 'open') forget()
      } catch (err) {
        stream.abort(err as Error)
      }
    },
    { maxInboundStreams: 2 }
  )
  // Presence pulls: PRESENCE_PULL.perPeer per peer per minute (more struck, as on tabs), and
  // RELAY_PULLS_PER_WINDOW in all (every newcomer asks the relay first).
  const pullResponder = new PullResponder({ store: signedPresences, strikes: gossipStrikes, counters, isBlocked }, { total: RELAY_PULLS_PER_WINDOW })
  await node.handle(PRESENCE_PULL_PROTOCOL_ID, (stream, connection) => pullResponder.answer(stream, connection), { maxInboundStreams: 2 })
  await strikeOversizedFrames(node, HOP_PROTOCOL, (peer) => {
    stats.blocked++
    blocked.set(peer.toString(), Date.now() + BLOCK_MS)
    log.warn('peer blocked: a frame over its cap', { peer: peer.toString(), protocol: HOP_PROTOCOL, seconds: BLOCK_MS / 1000 })
    void node.hangUp(peer).catch(() => {})
  })
  // Reservations held without a presence by a crowd from one address lapse after the grace:
  // each holder is blocked for BLOCK_MS and disconnected, which frees its slot.
  const lapseTimer = setInterval(
    () => {
      const now = Date.now()
      for (const [id, until] of blocked) if (until <= now) blocked.delete(id)
      const lapsed = probation.lapse(now)
      if (lapsed.length === 0) return
      const byAddress = new Map<string, number>()
      for (const { holder, address } of lapsed) {
        stats.blocked++
        stats.squatters++
        blocked.set(holder, now + BLOCK_MS)
        slots.release(holder)
        const peer = peerIdFromString(holder)
        dropReservation(peer)
        void node.hangUp(peer).catch(() => {})
        byAddress.set(address, (byAddress.get(address) ?? 0) + 1)
      }
      for (const [address, n] of byAddress)
        log.warn('peers blocked: reservations held without a presence', {
          address,
          peers: n,
          graceSeconds: limits.presenceGraceMs / 1000,
          seconds: BLOCK_MS / 1000
        })
    },
    Math.min(1000, limits.presenceGraceMs)
  )
  lapseTimer.unref?.()
  const own = new Set(node.getMultiaddrs().map((ma) => ma.toString()))
  for (const p of opts.peers ?? [])
    if (p.id.equals(self) && !own.has(p.addr.toString()))
      log.warn("a peer relay has this relay's peer id: two relays share the key in one --data directory; give each its own", {
        peer: p.addr.toString(),
        dataDir: opts.dataDir
      })
  const peering: RelayPeering = keepRelayPeers(node, peers, log)
  const peerId = node.peerId.toString()
  return {
    node,
    peerId,
    multiaddrs() {
      // With `announce` set, libp2p reports only the announced addresses (with /p2p/<id>).
      return node.getMultiaddrs().map((ma) => ma.toString())
    },
    metrics,
    admission() {
      return { ...stats, refused: { ...stats.refused }, roster: { ...stats.roster }, reservations: node.services.relay.reservations.size }
    },
    peerRelays: () => peering.connected(),
    counters: () => counters.toRecord(),
    async stop() {
      clearInterval(lapseTimer)
      departures.stop()
      peering.stop()
      await node.stop()
    }
  }
}
