/**
 * Departure notices between real mesh nodes and the real relay (relay/relay.ts) over the
 * simulator's in-process links (issue 16). The mesh has a large mesh's pace (a presence goes
 * stale after 3 × 10 min) and few links per peer, so most members hold no link to a given peer:
 * before the notices, a peer that left stayed in their books until its presence went stale.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type SimRelay, waitFor } from '../../sim/mesh.ts'
import { DEPARTED_TOPIC } from './constants.ts'
import { encodeDeparture } from './departures.ts'
import type { MeshNode, MeshNodeInit } from './node.ts'
import { type SimMeshFixture, simMeshFixture } from './test-helpers.ts'

const MEMBERS = 4
const LARGE_MESH = { presenceIntervalMs: 600_000, targetPeers: 1, maxPeers: 2 } satisfies MeshNodeInit

const knows = (node: MeshNode, id: string): boolean => node.diagnostics().presence.some((p) => p.peerId === id)
const linked = (node: MeshNode, id: string): boolean => node.peers().some((p) => p.id === id && p.transport === 'webrtc')

describe('departure notices in a mesh with a large mesh pace', () => {
  let mesh: SimMeshFixture
  let relay: SimRelay
  const members: MeshNode[] = []

  beforeAll(async () => {
    mesh = await simMeshFixture(LARGE_MESH)
    relay = mesh.relay
    for (let i = 0; i < MEMBERS; i++) members.push(await mesh.start())
  }, 60_000)

  afterAll(async () => {
    await mesh?.stop()
  }, 60_000)

  it('a peer that leaves is forgotten within seconds by members with no link to it, from its relay word', async () => {
    const leaver = await mesh.start()
    const id = leaver.peerId
    await waitFor(() => members.every((m) => knows(m, id)), 120_000, 'every member to hold the leaver presence', 100)
    const unlinked = members.filter((m) => !linked(m, id))
    // Two links at most for the leaver: at least two of the four hold none.
    expect(unlinked.length).toBeGreaterThanOrEqual(2)
    const t0 = performance.now()
    await leaver.stop()
    await waitFor(() => members.every((m) => !knows(m, id)), 30_000, 'every member to forget the leaver', 50)
    // Stale only after 30 minutes at this pace: the relay's notice is what did it.
    expect(performance.now() - t0).toBeLessThan(30_000)
    expect(relay.relay.counters()['relay.departed.notices']).toBeGreaterThanOrEqual(1)
    for (const m of unlinked) expect(m.metrics()['mesh.departed.forgotten']).toBeGreaterThanOrEqual(1)
    // The members themselves stay listed everywhere.
    for (const m of members) for (const o of members) if (m !== o) expect(knows(m, o.peerId)).toBe(true)
  }, 200_000)

  it('a member posing as a relay is refused and struck by those it sent it to, and the peer it named stays listed', async () => {
    type Pubsub = { publish(t: string, d: Uint8Array): Promise<unknown>; getSubscribers(t: string): unknown[] }
    const pubsubOf = (m: MeshNode): Pubsub => (m.libp2p as unknown as { services: { pubsub: Pubsub } }).services.pubsub
    // The hostile one is a member linked to another, whose subscription it has heard over that link
    // (the notice goes to topic peers); with two links at most, which members those are is the mesh's choice.
    const linkedToMember = (m: MeshNode): boolean => {
      const ids = new Set(members.filter((o) => o !== m).map((o) => o.peerId))
      return pubsubOf(m)
        .getSubscribers(DEPARTED_TOPIC)
        .some((p) => ids.has(String(p)))
    }
    await waitFor(() => members.some(linkedToMember), 60_000, 'a member subscribed over a link to another member', 100)
    const hostile = members.find(linkedToMember) as MeshNode
    const others = members.filter((m) => m !== hostile)
    const victim = others[0] as MeshNode
    const pubsub = pubsubOf(hostile)
    const taken = (): number[] => others.map((m) => m.metrics()['mesh.departed.notices'] ?? 0)
    const before = taken()
    await pubsub.publish(DEPARTED_TOPIC, encodeDeparture({ v: 1, peers: [victim.peerId], ts: Date.now() }))
    const struck = (): number => others.reduce((n, m) => n + (m.metrics()['mesh.strikes.departed.forged'] ?? 0), 0)
    await waitFor(() => struck() >= 1, 30_000, 'a member to refuse the forged notice', 50)
    expect(taken()).toEqual(before)
    for (const m of others) if (m !== victim) expect(knows(m, victim.peerId)).toBe(true)
    // Refused and struck at the relay too, so never forwarded to members the hostile one has no link to.
    await waitFor(() => (relay.relay.counters()['relay.strikes.departed.forged'] ?? 0) >= 1, 30_000, 'the relay to refuse the forged notice', 50)
    for (const m of others) if (m !== victim) expect(knows(m, victim.peerId)).toBe(true)
  }, 120_000)
})

describe('a peer that went quiet without a departure notice', () => {
  let mesh: SimMeshFixture
  const members: MeshNode[] = []

  beforeAll(async () => {
    // A relay that sends no notices (as a relay that died would not), and a quick pace: a presence
    // is stale after 3 × 1 s and dropped from the book after twice that.
    mesh = await simMeshFixture({ presenceIntervalMs: 1000 }, { departures: false })
    for (let i = 0; i < 3; i++) members.push(await mesh.start())
  }, 60_000)

  afterAll(async () => {
    await mesh?.stop()
  }, 60_000)

  it('leaves every book once its presence is twice stale, while the members that still announce stay', async () => {
    const leaver = await mesh.start()
    const id = leaver.peerId
    await waitFor(() => members.every((m) => knows(m, id)), 60_000, 'every member to hold the leaver presence', 100)
    await leaver.stop()
    await waitFor(() => members.every((m) => !knows(m, id)), 30_000, 'every member to drop the quiet peer', 100)
    expect(mesh.relay.relay.counters()['relay.departed.notices'] ?? 0).toBe(0)
    for (const m of members) {
      expect(m.metrics()['mesh.presence.pruned']).toBeGreaterThanOrEqual(1)
      for (const o of members) if (m !== o) expect(knows(m, o.peerId)).toBe(true)
    }
  }, 120_000)
})
