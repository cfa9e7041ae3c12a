/**
 * Plain libp2p peers for the relay's tests: WebSockets to the relay, circuit relay v2 (listen on
 * `<relay>/p2p-circuit` to hold a reservation), noise, yamux, identify. Stop them with `stopAll`.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p, type Libp2p } from 'libp2p'
import { WebSocket as WsWebSocket } from 'ws'

// Node 20 has no global WebSocket, which @libp2p/websockets dials with.
globalThis.WebSocket ??= WsWebSocket as unknown as typeof globalThis.WebSocket

export function relayTestClients(): { client: (listen?: string[]) => Promise<Libp2p>; stopAll: () => Promise<void> } {
  const peers: Libp2p[] = []
  return {
    async client(listen = []) {
      const node = await createLibp2p({
        addresses: { listen },
        transports: [webSockets(), circuitRelayTransport()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        connectionGater: { denyDialMultiaddr: () => false },
        services: { identify: identify() }
      })
      peers.push(node)
      return node
    },
    async stopAll() {
      await Promise.allSettled(peers.map((p) => p.stop()))
    }
  }
}
