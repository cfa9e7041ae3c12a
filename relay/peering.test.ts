import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { relayLog } from './log.ts'
import { PEER_REDIAL_MS, parseRelayPeers } from './peers.ts'
import { startRelay, type Relay } from './relay.ts'

// Issue 16, several relays: a relay keeps its peer relays connected, and finds one again
// when it died and came back (same key, same port).
describe('relay peering', () => {
  const dirs = [mkdtempSync(join(tmpdir(), 'zs-peer1-')), mkdtempSync(join(tmpdir(), 'zs-peer2-'))]
  const running: Relay[] = []
  const start = async (dataDir: string, port: number, peers: string[]): Promise<Relay> => {
    const r = await startRelay({ dataDir, port, log: relayLog('silent'), peers: parseRelayPeers(peers) })
    running.push(r)
    return r
  }
  afterAll(async () => {
    await Promise.allSettled(running.map((r) => r.stop()))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  it('dials its peer relays, skips itself, and redials one that comes back', async () => {
    const r1 = await start(dirs[0] as string, 0, [])
    const addr1 = r1.multiaddrs()[0] as string
    const port1 = Number(/tcp\/(\d+)/.exec(addr1)?.[1])
    const r2 = await start(dirs[1] as string, 0, [addr1])
    await vi.waitFor(() => expect(r2.peerRelays()).toEqual([r1.peerId]), { timeout: 10_000, interval: 50 })
    await vi.waitFor(() => expect(r1.node.getPeers().map((p) => p.toString())).toContain(r2.peerId), { timeout: 10_000, interval: 50 })

    await r1.stop()
    await vi.waitFor(() => expect(r2.peerRelays()).toEqual([]), { timeout: 10_000, interval: 50 })
    // Back on the same port with the same key; its own address in its list is skipped.
    const again = await start(dirs[0] as string, port1, [addr1])
    expect(again.peerId).toBe(r1.peerId)
    expect(again.peerRelays()).toEqual([])
    await vi.waitFor(() => expect(r2.peerRelays()).toEqual([r1.peerId]), { timeout: PEER_REDIAL_MS * 5, interval: 50 })
  }, 30_000)
})
