/**
 * The connection budget held for links others open (issue 16, scale; link-trim.ts
 * admitsInbound): real mesh nodes, gossipsub and the real relay over the simulator's
 * in-process links. A peer whose budget is 2 is dialled by every other peer (they dial up to
 * 8); it keeps 2 direct links, refuses the rest and counts them, blames nobody, and the
 * others still link among themselves. A peer that dials nobody keeps its outbound reserve.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../../sim/mesh.ts'
import type { MeshNode, MeshNodeInit } from './node.ts'
import { Transport } from './peer-book.ts'
import { type SimMeshFixture, simMeshFixture } from './test-helpers.ts'

const OTHERS = 4

function directPeers(node: MeshNode): string[] {
  return node
    .peers()
    .filter((p) => !p.relay && p.transport === Transport.webrtc)
    .map((p) => p.id)
}

describe('the connection budget of links others open', () => {
  let mesh: SimMeshFixture
  const start = (init: MeshNodeInit) => mesh.start(init)

  beforeAll(async () => {
    mesh = await simMeshFixture()
  }, 60_000)

  afterAll(async () => {
    await mesh?.stop()
  }, 60_000)

  it('keeps a full peer at its budget, refuses the others without a strike, and leaves them linked to each other', async () => {
    const hub = await start({ maxPeers: 2, targetPeers: 2 })
    const others: MeshNode[] = []
    for (let i = 0; i < OTHERS; i++) others.push(await start({ targetPeers: 8 }))
    let most = 0
    const sample = setInterval(() => {
      most = Math.max(most, directPeers(hub).length)
    }, 20)
    try {
      // Every other peer links to every other one but the hub's refusals, and tried the hub.
      await waitFor(() => others.every((o) => others.every((x) => x === o || directPeers(o).includes(x.peerId))), 30_000, 'the others link to each other')
      await waitFor(
        () => (hub.metrics()['mesh.links.refused.webrtc'] ?? 0) + (hub.metrics()['mesh.links.refused.circuit'] ?? 0) >= OTHERS - 2,
        30_000,
        'the hub refuses the dials past its budget'
      )
    } finally {
      clearInterval(sample)
    }
    most = Math.max(most, directPeers(hub).length)
    expect(most).toBeLessThanOrEqual(2)
    expect(directPeers(hub).length).toBe(2)
    // Held at admission (LinkBudget): no link got in to be closed after it opened.
    expect(hub.metrics()['mesh.links.refused.late'] ?? 0).toBe(0)
    // A refusal is a budget, not misbehaviour: nobody is struck or blocked, on either side.
    for (const n of [hub, ...others]) {
      expect(n.diagnostics().blocked).toEqual([])
      expect(Object.keys(n.metrics()).filter((k) => k.startsWith('mesh.strikes.'))).toEqual([])
    }
  }, 90_000)

  it('keeps the outbound reserve from links others open: a peer that dials nobody takes maxPeers less the reserve', async () => {
    // maxPeers 4 keeps 1 slot for its own dials (outboundReserve); targetPeers 0: it dials nobody.
    const hub = await start({ maxPeers: 4, targetPeers: 0 })
    for (let i = 0; i < 3; i++) await start({ targetPeers: 8 })
    let most = 0
    const sample = setInterval(() => {
      most = Math.max(most, directPeers(hub).length)
    }, 20)
    const refused = () => (hub.metrics()['mesh.links.refused.webrtc'] ?? 0) + (hub.metrics()['mesh.links.refused.circuit'] ?? 0)
    try {
      await waitFor(() => directPeers(hub).length === 3 && refused() >= 1, 30_000, 'the hub takes 3 links others open and refuses the next')
    } finally {
      clearInterval(sample)
    }
    most = Math.max(most, directPeers(hub).length)
    expect(most).toBe(3)
    expect(hub.metrics()['mesh.links.refused.late'] ?? 0).toBe(0)
  }, 90_000)
})
