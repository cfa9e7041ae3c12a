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
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p, type Libp2p } from 'libp2p'
import { CONNECTION_MONITOR, GOSSIP_SCORE_PARAMS, RELAY_TOPICS } from '../src/lib/mesh/index.ts'

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
  /** Log one line per peer join/leave. Default: console.log. */
  log?: (line: string) => void
}

/** A running relay. */
export interface Relay {
  node: Libp2p
  peerId: string
  /** Multiaddrs browsers should dial (announced ones if given). */
  multiaddrs(): string[]
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
  const log =
    opts.log ??
    ((line: string) => {
      console.log(line)
    })
  const host = opts.host ?? '127.0.0.1'
  const privateKey = await loadOrCreateKey(opts.dataDir)
  const node = await createLibp2p({
    privateKey,
    addresses: {
      listen: [`/ip4/${host}/tcp/${opts.port ?? 0}/ws`],
      announce: opts.announce ?? []
    },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: 2048 },
    connectionMonitor: CONNECTION_MONITOR,
    // The relay accepts browsers from anywhere it is reachable; it dials nobody.
    connectionGater: { denyDialMultiaddr: () => false },
    services: {
      identify: identify(),
      ping: ping({ maxInboundStreams: 4, maxOutboundStreams: 4 }),
      relay: circuitRelayServer({
        reservations: {
          maxReservations: 1024,
          // Signalling a WebRTC connection needs little data; keep the limit but make it roomy.
          defaultDataLimit: BigInt(1 << 24),
          defaultDurationLimit: 10 * 60_000
        }
      }),
      // Browsers wait for the relay's heartbeat to be grafted into the discovery and
      // presence meshes; 250 ms (default 1 s) cuts their join time.
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, canRelayMessage: true, heartbeatInterval: 250, scoreParams: GOSSIP_SCORE_PARAMS })
    }
  })
  for (const topic of RELAY_TOPICS) node.services.pubsub.subscribe(topic)

  node.addEventListener('peer:connect', (evt) => {
    log(`peer joined ${evt.detail.toString()} (${node.getPeers().length} connected)`)
  })
  node.addEventListener('peer:disconnect', (evt) => {
    log(`peer left ${evt.detail.toString()} (${node.getPeers().length} connected)`)
  })

  await node.start()
  const peerId = node.peerId.toString()
  return {
    node,
    peerId,
    multiaddrs() {
      // With `announce` set, libp2p reports only the announced addresses (with /p2p/<id>).
      return node.getMultiaddrs().map((ma) => ma.toString())
    },
    async stop() {
      await node.stop()
    }
  }
}
