import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { gossipsub } from '@libp2p/gossipsub'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PRESENCE_TOPIC } from '../src/lib/mesh/index.ts'
import { relayLog } from './log.ts'
import { type Relay, startRelay } from './relay.ts'
import { relayTestClients } from './test-clients.ts'

// Issue 11 items 9 and 10: the relay ran the tabs' gossip validators but struck nobody, so a
// peer that reached only the relay (forged discovery records, invalid presence) lost nothing
// but gossipsub score and was never blocked. It now strikes as tabs do: blocked at the fifth.
describe('gossip the relay refuses (issue 11)', () => {
  let relay: Relay
  let dir: string
  const { client, announce, stopAll } = relayTestClients()
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'zs-relay-gossip-'))
    relay = await startRelay({ dataDir: dir, log: relayLog('silent') })
  })
  afterAll(async () => {
    await stopAll()
    await relay?.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  const connected = (n: Libp2p): boolean => n.getConnections().some((c) => c.remotePeer.toString() === relay.peerId && c.status === 'open')
  const pubsub = (n: Libp2p) => (n.services as { pubsub: ReturnType<ReturnType<typeof gossipsub>> }).pubsub

  it('strikes the author of each refused message and blocks it at the fifth; an honest peer beside it is untouched', async () => {
    const relayAddr = multiaddr(relay.multiaddrs()[0] as string)
    const honest = await client([], { gossip: true })
    const hostile = await client([], { gossip: true })
    await honest.dial(relayAddr)
    await hostile.dial(relayAddr)
    await announce(honest)
    await announce(hostile)
    for (let i = 0; i < 4; i++) await pubsub(hostile).publish(PRESENCE_TOPIC, new TextEncoder().encode(`not json ${i}`))
    await expect.poll(() => relay.admission().gossipStrikes, { timeout: 10_000 }).toBe(4)
    expect(relay.admission().blocked).toBe(0)
    expect(connected(hostile)).toBe(true)
    await pubsub(hostile).publish(PRESENCE_TOPIC, new TextEncoder().encode('not json 4'))
    await expect.poll(() => relay.admission().blocked, { timeout: 10_000 }).toBe(1)
    await expect.poll(() => connected(hostile), { timeout: 10_000 }).toBe(false)
    // It cannot come back while blocked (the dialler's side opens, then is cut).
    await hostile.dial(relayAddr, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined)
    await expect.poll(() => connected(hostile), { timeout: 10_000 }).toBe(false)
    // The honest peer still gossips and is still connected.
    await announce(honest)
    expect(connected(honest)).toBe(true)
    expect(relay.admission().gossipStrikes).toBe(5)
    expect((await relay.metrics.scrape()).body).toMatch(/^zerostate_relay_gossip_strikes_total 5$/m)
  }, 60_000)
})
