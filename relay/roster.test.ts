import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROSTER_MAX, ROSTER_PROTOCOL_ID, askRoster, followRoster } from '../src/lib/mesh/index.ts'
import { relayLog } from './log.ts'
import { relayTestClients } from './test-clients.ts'
import { startRelay, type Relay } from './relay.ts'

describe("the relay's roster (issue 11: a newcomer dials the mesh at once)", () => {
  let relay: Relay
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'zs-relay-roster-'))
    relay = await startRelay({ dataDir: dir, log: relayLog('silent') })
  })
  afterAll(async () => {
    await stopAll()
    await relay?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const { client, announce, stopAll } = relayTestClients()
  /** A newcomer (a fresh identity each time: the relay answers a few asks per peer a minute) asks the relay. */
  const ask = async (): Promise<string[]> => {
    const newcomer = await client()
    try {
      const conn = await newcomer.dial(multiaddr(relay.multiaddrs()[0] as string))
      return await askRoster(newcomer, conn.remotePeer)
    } finally {
      await newcomer.stop()
    }
  }
  const reserved = (n: Libp2p): boolean => n.getMultiaddrs().some((ma) => ma.toString().includes('/p2p-circuit'))

  it('names the holders of a reservation that gossiped a presence, newest first, never the asker; then each new one; and forgets a peer that leaves', async () => {
    const relayAddr = relay.multiaddrs()[0] as string
    const a = await client([`${relayAddr}/p2p-circuit`], { gossip: true })
    await expect.poll(() => reserved(a), { timeout: 10_000 }).toBe(true)
    const b = await client([`${relayAddr}/p2p-circuit`], { gossip: true })
    await expect.poll(() => reserved(b), { timeout: 10_000 }).toBe(true)
    // A reservation alone is free to make: nobody is named before its presence.
    expect(await ask()).toEqual([])
    await announce(a)
    await announce(b)

    // A newcomer with no reservation of its own asks as soon as it is connected.
    await expect.poll(ask, { timeout: 10_000, interval: 200 }).toEqual([b.peerId.toString(), a.peerId.toString()])
    // A member asking is not named to itself.
    const relayPeer = a.getConnections().find((c) => c.limits == null)?.remotePeer
    if (relayPeer == null) throw new Error('A has no connection to the relay')
    expect(await askRoster(a, relayPeer)).toEqual([b.peerId.toString()])

    // A follows the roster: it hears of C once C reserved and gossiped its presence, and never of itself.
    const heard: string[][] = []
    const stop = new AbortController()
    const following = followRoster(a, relayPeer, (peers) => heard.push(peers), { signal: stop.signal })
    await expect.poll(() => heard.length, { timeout: 10_000 }).toBe(1)
    const c = await client([`${relayAddr}/p2p-circuit`], { gossip: true })
    await expect.poll(() => reserved(c), { timeout: 10_000 }).toBe(true)
    await announce(c)
    await expect.poll(() => heard.at(-1), { timeout: 10_000 }).toEqual([c.peerId.toString()])
    expect(heard.flat()).not.toContain(a.peerId.toString())
    stop.abort()
    await following

    // B leaves: its reservation ends with its connection, and the roster forgets it.
    await b.stop()
    await expect.poll(ask, { timeout: 20_000, interval: 500 }).toEqual([c.peerId.toString(), a.peerId.toString()])
  }, 90_000)

  it('is bounded: at most ROSTER_MAX peers, and a few asks per peer', async () => {
    const relayAddr = relay.multiaddrs()[0] as string
    const members: Libp2p[] = []
    for (let i = 0; i < ROSTER_MAX + 1; i++) members.push(await client([`${relayAddr}/p2p-circuit`], { gossip: true }))
    await expect.poll(() => members.every(reserved), { timeout: 60_000 }).toBe(true)
    await Promise.all(members.map(announce))
    await expect.poll(async () => (await ask()).length, { timeout: 20_000, interval: 500 }).toBe(ROSTER_MAX)
    const asker = await client()
    const conn = await asker.dial(multiaddr(relayAddr))
    const roster = await askRoster(asker, conn.remotePeer)
    expect(roster).toHaveLength(ROSTER_MAX)
    expect(new Set(roster).size).toBe(ROSTER_MAX)
    const ids = new Set(members.map((m) => m.peerId.toString()))
    expect(roster.every((id) => ids.has(id))).toBe(true)
    // Asking again and again: the relay stops answering (4 a minute), the asker gets an error, not a hang.
    await expect
      .poll(
        async () =>
          askRoster(asker, conn.remotePeer).then(
            () => 'answered',
            () => 'refused'
          ),
        { timeout: 10_000, interval: 10 }
      )
      .toBe('refused')
    // Counted: the first ask of this peer plus the ones the poll got answered, then the refusal.
    const { answered, refused } = relay.admission().roster
    expect(refused).toBeGreaterThanOrEqual(1)
    expect(answered).toBeGreaterThanOrEqual(4)
    // The protocol is registered under its versioned id.
    expect(relay.node.getProtocols()).toContain(ROSTER_PROTOCOL_ID)
  }, 120_000)
})
