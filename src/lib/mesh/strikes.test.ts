import { describe, expect, it } from 'vitest'
import { peerIdFromString } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Counters } from '../core/index.ts'
import { StrikePolicy } from './strikes.ts'

async function peer(): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

function policy(init: { maxStrikes?: number; blockMs?: number; forgetMs?: number } = {}) {
  let now = 1_000_000
  const hungUp: string[] = []
  const relays = new Set<string>()
  const counters = new Counters('mesh')
  const p = new StrikePolicy(
    {
      counters,
      hangUp: (id) => {
        hungUp.push(id)
      },
      exempt: (id) => relays.has(id),
      now: () => now
    },
    init
  )
  return { p, counters, hungUp, relays, advance: (ms: number) => (now += ms) }
}

describe('StrikePolicy', () => {
  it('counts strikes per protocol and reason, and blocks at the fifth', async () => {
    const { p, counters, hungUp } = policy()
    const bad = await peer()
    for (let i = 0; i < 4; i++) expect(p.strike(bad, 'task', 'InvalidFrameError')).toBe(false)
    expect(p.isBlocked(bad)).toBe(false)
    expect(p.strike(bad, 'sync', 'InvalidFrameError')).toBe(true)
    expect(p.isBlocked(bad)).toBe(true)
    await Promise.resolve()
    await Promise.resolve()
    expect(hungUp).toEqual([bad])
    const m = counters.toRecord()
    expect(m['mesh.strikes.task.InvalidFrameError']).toBe(4)
    expect(m['mesh.strikes.sync.InvalidFrameError']).toBe(1)
    expect(m['mesh.strikes']).toBe(5)
    expect(m['mesh.peers.blocked']).toBe(1)
  })

  it('blocks at once on what no honest encoder sends (a frame over its cap, a prefix bomb)', async () => {
    const { p } = policy()
    const bad = await peer()
    expect(p.strike(bad, 'task', 'FrameTooLargeError')).toBe(true)
    expect(p.blocked()).toEqual([bad])
  })

  it('lifts a block after blockMs and forgets old strikes', async () => {
    const { p, advance } = policy({ blockMs: 1000, forgetMs: 5000 })
    const bad = await peer()
    p.strike(bad, 'plan', 'FrameTooLargeError')
    advance(999)
    expect(p.isBlocked(bad)).toBe(true)
    advance(2)
    expect(p.isBlocked(bad)).toBe(false)
    for (let i = 0; i < 4; i++) p.strike(bad, 'plan', 'InvalidFrameError')
    advance(5001)
    // The four old strikes are forgotten: one more does not block.
    expect(p.strike(bad, 'plan', 'InvalidFrameError')).toBe(false)
  })

  it('never blocks an exempt peer (a relay), but still counts', async () => {
    const { p, relays, counters } = policy()
    const relay = await peer()
    relays.add(relay)
    expect(p.strike(relay, 'presence', 'FrameTooLargeError')).toBe(false)
    expect(p.isBlocked(relay)).toBe(false)
    expect(counters.get('strikes.presence.FrameTooLargeError')).toBe(1)
  })

  it('gates a blocked peer in every direction and counts refusals', async () => {
    const { p, counters } = policy()
    const bad = await peer()
    const good = await peer()
    p.strike(bad, 'task', 'FrameTooLargeError')
    const g = p.gater()
    for (const deny of [g.denyDialPeer, g.denyInboundEncryptedConnection, g.denyOutboundEncryptedConnection, g.denyInboundUpgradedConnection]) {
      expect(deny(peerIdFromString(bad), undefined as never)).toBe(true)
      expect(deny(peerIdFromString(good), undefined as never)).toBe(false)
    }
    expect(counters.get('peers.refused')).toBe(4)
  })
})
