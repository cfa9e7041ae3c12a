import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { relayLog } from './log.ts'
import { type Relay, startRelay } from './relay.ts'
import { relayTestClients } from './test-clients.ts'

// Issue 11 item 7: 200 throwaway identities from one address reserved on the relay and held
// their slots as long as they stayed connected; the relay refused none and blocked none.
// A reservation is for a mesh peer, and every mesh peer gossips a presence on reaching a
// relay: an address may hold a few reservations without one, a crowd of them is refused
// past a cap and, past the grace, blocked and disconnected down to the few tolerated.
describe('reservations held without a presence (issue 11 item 7)', () => {
  let relay: Relay
  let dir: string
  const limits = { unprovenPerAddress: 6, unprovenTolerated: 2, presenceGraceMs: 6000, presenceWaitMs: 300 }
  const { client, announce, stopAll } = relayTestClients()
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'zs-relay-squat-'))
    relay = await startRelay({ dataDir: dir, log: relayLog('silent'), limits })
  })
  afterAll(async () => {
    await stopAll()
    await relay?.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  const reserve = (n: Libp2p, relayAddr: string): Promise<boolean> =>
    (n.services as unknown as { listener: { listen: (a: unknown[]) => Promise<void> } }).listener.listen([multiaddr(`${relayAddr}/p2p-circuit`)]).then(
      () => true,
      () => false
    )
  const connectedToRelay = (n: Libp2p): boolean => n.getConnections().some((c) => c.remotePeer.toString() === relay.peerId && c.status === 'open')

  it('refuses a crowd past the cap, blocks the squatters after the grace, and keeps every peer that showed itself', async () => {
    const relayAddr = relay.multiaddrs()[0] as string
    // A mesh peer that shows itself first, then reserves.
    const early = await client([], { gossip: true })
    await early.dial(multiaddr(relayAddr))
    await announce(early)
    await expect.poll(() => reserve(early, relayAddr), { timeout: 10_000 }).toBe(true)

    // Ten throwaway identities from the same address reserve and never gossip a presence.
    const flood: Libp2p[] = []
    const reserved: boolean[] = []
    for (let i = 0; i < 10; i++) {
      const n = await client()
      flood.push(n)
      await n.dial(multiaddr(relayAddr))
      reserved.push(await reserve(n, relayAddr))
    }
    expect(reserved.filter(Boolean).length).toBe(limits.unprovenPerAddress)
    expect(relay.admission().refused.unproven).toBe(10 - limits.unprovenPerAddress)

    // While the cap is full, a peer that shows itself still reserves (it is not unproven).
    const late = await client([], { gossip: true })
    await late.dial(multiaddr(relayAddr))
    await announce(late)
    await expect.poll(() => reserve(late, relayAddr), { timeout: 10_000 }).toBe(true)
    // One whose presence comes just after its reservation request (they race as a tab joins) is
    // held a moment (presenceWaitMs) for it, then admitted, not refused.
    const racer = await client([], { gossip: true })
    await racer.dial(multiaddr(relayAddr))
    const racing = reserve(racer, relayAddr)
    await announce(racer)
    expect(await racing).toBe(true)
    expect(relay.admission().refused.unproven).toBe(10 - limits.unprovenPerAddress)

    // Past the grace the squatters beyond the tolerated two are blocked and cut off; the two
    // tolerated ones and both peers keep their slots.
    const lapsing = limits.unprovenPerAddress - limits.unprovenTolerated
    await expect.poll(() => relay.admission().squatters, { timeout: 15_000 }).toBe(lapsing)
    expect(relay.admission().blocked).toBe(lapsing)
    await expect.poll(() => flood.filter(connectedToRelay).length, { timeout: 10_000 }).toBe(10 - lapsing)
    expect(relay.admission().reservations).toBe(3 + limits.unprovenTolerated)
    expect(connectedToRelay(early) && connectedToRelay(late) && connectedToRelay(racer)).toBe(true)

    // A blocked identity cannot come back; the refused ones (never held a slot) were not blocked.
    const squatter = flood.find((n, i) => reserved[i] && !connectedToRelay(n)) as Libp2p
    // (Noise lets the dialler finish its handshake before the relay knows who it is, so the
    // connection opens on its side and is cut at once.)
    await squatter.dial(multiaddr(relayAddr), { signal: AbortSignal.timeout(10_000) }).catch(() => undefined)
    expect(await reserve(squatter, relayAddr)).toBe(false)
    await expect.poll(() => connectedToRelay(squatter), { timeout: 10_000 }).toBe(false)
    // The cap is free again for the address: a newcomer without a presence may reserve.
    const newcomer = await client()
    await newcomer.dial(multiaddr(relayAddr))
    expect(await reserve(newcomer, relayAddr)).toBe(true)
    // The relay's /metrics says so.
    const body = (await relay.metrics.scrape()).body
    expect(body).toMatch(new RegExp(`^zerostate_relay_squatters_blocked_total ${lapsing}$`, 'm'))
    expect(body).toMatch(new RegExp(`^zerostate_relay_refused_total\\{reason="unproven"\\} ${10 - limits.unprovenPerAddress}$`, 'm'))
  }, 60_000)
})
