/**
 * The presence pull between real mesh nodes (issue 16): real libp2p nodes, gossipsub and the
 * real relay (relay/relay.ts) over the simulator's in-process links. The mesh is given a large
 * mesh's pace (a re-announcement every 10 minutes, as presenceIntervalMs gives ~120 s at 200
 * peers), few links each and no newcomer answers (in a large mesh few members answer): a
 * newcomer that pulls holds every presence within seconds, while one that does not, started
 * earlier, still lacks some when it does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type SimRelay, waitFor } from '../../sim/mesh.ts'
import { PRESENCE_TOPIC } from './constants.ts'
import type { MeshNode, MeshNodeInit } from './node.ts'
import { type SimMeshFixture, simMeshFixture } from './test-helpers.ts'

const MEMBERS = 6
/** A large mesh's pace: nobody re-announces during the test. */
const LARGE_MESH = { presenceIntervalMs: 600_000, newcomerAnswers: false, targetPeers: 2 } satisfies MeshNodeInit

function known(node: MeshNode): Set<string> {
  return new Set(node.diagnostics().presence.map((p) => p.peerId))
}

/** Whether gossipsub's message cache of `node` (what it offers its gossip peers) holds a presence. */
function cachesPresence(node: unknown): boolean {
  const mcache = (node as { services: { pubsub: { mcache: { msgs: Map<string, { message: { topic: string } }> } } } }).services.pubsub.mcache
  return [...mcache.msgs.values()].some((e) => e.message.topic === PRESENCE_TOPIC)
}

function lacking(node: MeshNode, ids: string[]): string[] {
  const k = known(node)
  return ids.filter((id) => id !== node.peerId && !k.has(id))
}

describe('presence pull in a mesh with a large mesh pace', () => {
  let mesh: SimMeshFixture
  let relay: SimRelay
  const start = (init: MeshNodeInit = {}) => mesh.start(init)

  beforeAll(async () => {
    mesh = await simMeshFixture(LARGE_MESH)
    relay = mesh.relay
  }, 60_000)

  afterAll(async () => {
    await mesh?.stop()
  }, 60_000)

  it('a newcomer that pulls holds every presence within seconds; one that does not, started before it, still lacks some', async () => {
    const members: MeshNode[] = []
    for (let i = 0; i < MEMBERS; i++) members.push(await start())
    const ids = members.map((m) => m.peerId)
    // Members hear those who joined after them by gossip and those before them by their pull.
    await waitFor(() => members.every((m) => lacking(m, ids).length === 0), 120_000, 'members to hold each other presence', 100)

    // Gossipsub offers a newcomer what its message cache holds (IHAVE, the last few
    // heartbeats): in a large mesh a handful of presences, here the members' whole join.
    // The newcomers join once no cache holds a presence, as in a mesh whose last announcements are seconds old.
    await waitFor(
      () => [relay.node, ...members.map((m) => m.libp2p)].every((n) => !cachesPresence(n)),
      60_000,
      'gossip caches to drop the members presences',
      100
    )

    // The baseline: no pull. It hears the members it links to (their announcement for the new
    // link) and nobody else until their next re-announcement, 10 minutes away; nor does it learn
    // their addresses to dial them (with no roster dial of its own it links at the next discovery
    // broadcast, 60 s on).
    const without = await start({ presencePull: false })

    const t0 = performance.now()
    const puller = await start()
    const everyone = [...ids, without.peerId]
    await waitFor(() => lacking(puller, everyone).length === 0, 30_000, 'the pulling newcomer to hold every presence', 50)
    const tookMs = performance.now() - t0
    // From the relay's store: its first link, as it joined (within seconds even on a loaded machine).
    expect(tookMs).toBeLessThan(15_000)
    const c = puller.metrics()
    expect(c['mesh.presence.pull.asked']).toBeGreaterThanOrEqual(1)
    expect(c['mesh.presence.pulled']).toBeGreaterThanOrEqual(MEMBERS)
    expect(c['mesh.presence.pull.invalid.InvalidSignatureError'] ?? 0).toBe(0)
    // The baseline joined earlier and has had longer, yet lacks members it is not linked to.
    expect(lacking(without, ids).length).toBeGreaterThan(0)
    expect(without.metrics()['mesh.presence.pull.asked'] ?? 0).toBe(0)
    // The relay answered it (and the members' pulls).
    expect(relay.relay.counters()['relay.presence.pull.answered']).toBeGreaterThanOrEqual(MEMBERS)
  }, 300_000)
})
