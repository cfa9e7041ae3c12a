/**
 * Real mesh nodes around the real relay over the simulator's in-process links, for the mesh
 * tests that need gossipsub, dials and the relay (`*.mesh.test.ts`).
 */
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { type SimRelay, startSimRelay } from '../../sim/mesh.ts'
import { simLink } from '../../sim/link.ts'
import { MeshNode, type MeshNodeInit } from './node.ts'

export interface SimMeshFixture {
  relay: SimRelay
  /** Starts a node on the relay (`defaults`, then `init`) and resolves once it is ready. */
  start(init?: MeshNodeInit): Promise<MeshNode>
  /** Stops every node started and the relay. */
  stop(): Promise<void>
}

/** Starts the relay (`relay`: its options, as startSimRelay's); nodes are started by the fixture's `start`. */
export async function simMeshFixture(defaults: MeshNodeInit = {}, relayOpts: { departures?: boolean } = {}): Promise<SimMeshFixture> {
  const relay: SimRelay = await startSimRelay(undefined, relayOpts)
  const nodes: MeshNode[] = []
  return {
    relay,
    async start(init = {}) {
      const node = new MeshNode({
        relays: [relay.addr],
        allowPrivateAddresses: true,
        transports: [simLink({ relay: relay.addr }), circuitRelayTransport()],
        ...defaults,
        ...init
      })
      nodes.push(node)
      await node.start()
      await node.ready
      return node
    },
    async stop() {
      await Promise.allSettled(nodes.map((n) => n.stop()))
      await relay.stop()
    }
  }
}
