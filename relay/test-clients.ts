/**
 * Plain libp2p peers for the relay's tests: WebSockets to the relay, circuit relay v2 (listen on
 * `<relay>/p2p-circuit` to hold a reservation), noise, yamux, identify. Stop them with `stopAll`.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { webSockets } from '@libp2p/websockets'
import type { Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { WebSocket as WsWebSocket } from 'ws'
import { PRESENCE_TOPIC, encodePresence } from '../src/lib/mesh/index.ts'

// Node 20 has no global WebSocket, which @libp2p/websockets dials with.
globalThis.WebSocket ??= WsWebSocket as unknown as typeof globalThis.WebSocket

export function relayTestClients(): {
  client: (listen?: string[], opts?: { gossip?: boolean }) => Promise<Libp2p>
  announce: (node: Libp2p) => Promise<void>
  stopAll: () => Promise<void>
} {
  const peers: Libp2p[] = []
  return {
    async client(listen = [], { gossip = false } = {}) {
      const node = await createLibp2p({
        addresses: { listen },
        transports: [webSockets(), circuitRelayTransport()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        connectionGater: { denyDialMultiaddr: () => false },
        services: {
          identify: identify(),
          // `listener.listen([<relay>/p2p-circuit])` reserves later than creation.
          listener: (components: { transportManager: { listen: (addrs: Multiaddr[]) => Promise<void> } }) => ({
            listen: (addrs: Multiaddr[]) => components.transportManager.listen(addrs)
          }),
          ...(gossip ? { pubsub: gossipsub({ allowPublishToZeroTopicPeers: false, heartbeatInterval: 250 }) } : {})
        }
      })
      peers.push(node)
      return node
    },
    /** Gossip a valid presence from `node` (made with `{ gossip: true }`) once the relay takes the topic from it. */
    async announce(node) {
      const pubsub = (node.services as { pubsub: ReturnType<ReturnType<typeof gossipsub>> }).pubsub
      pubsub.subscribe(PRESENCE_TOPIC)
      const presence = encodePresence({
        v: 1,
        peerId: node.peerId.toString(),
        capabilities: [],
        donating: false,
        freeWorkers: 0,
        region: 'unknown',
        ts: Date.now()
      })
      // The relay's subscription arrives over the new connection: await it (a loaded machine
      // took over 5 s with 25 clients connecting at once), then publish.
      const subscribed = (): boolean => pubsub.getSubscribers(PRESENCE_TOPIC).length > 0
      if (!subscribed()) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            pubsub.removeEventListener('subscription-change', check)
            reject(new Error(`announce: nobody took ${PRESENCE_TOPIC} from ${node.peerId} in 30 s`))
          }, 30_000)
          const check = (): void => {
            if (!subscribed()) return
            clearTimeout(timer)
            pubsub.removeEventListener('subscription-change', check)
            resolve()
          }
          pubsub.addEventListener('subscription-change', check)
          check()
        })
      }
      await pubsub.publish(PRESENCE_TOPIC, presence)
    },
    async stopAll() {
      await Promise.allSettled(peers.map((p) => p.stop()))
    }
  }
}
