import { describe, expect, it } from 'vitest'
import { LINK_TRIM_MIN_AGE_MS, type TrimCandidate, admitsInbound, linksToTrim } from './link-trim.ts'

const now = 1_000_000
const link = (peerId: string, o: Partial<TrimCandidate> = {}): TrimCandidate => ({
  peerId,
  inbound: true,
  donor: false,
  busy: false,
  gossipMesh: false,
  openedAt: now - LINK_TRIM_MIN_AGE_MS - 1000,
  ...o
})

describe('linksToTrim: incoming links above the high-water mark', () => {
  it('closes nothing at or under the mark', () => {
    expect(linksToTrim([link('a'), link('b')], 2, now)).toEqual([])
    expect(linksToTrim([], 0, now)).toEqual([])
  })

  it('closes the excess among links others opened, never ours, a donor, a busy link or a young one', () => {
    const links = [
      link('ours', { inbound: false }),
      link('donor', { donor: true }),
      link('busy', { busy: true }),
      link('young', { openedAt: now - 1000 }),
      link('x'),
      link('y')
    ]
    // 6 links, mark 2: 4 should go, only x and y may.
    expect(linksToTrim(links, 2, now).sort()).toEqual(['x', 'y'])
  })

  it('takes links gossipsub does not use as mesh links first, then the newest', () => {
    const links = [
      link('mesh-old', { gossipMesh: true, openedAt: now - 90_000 }),
      link('plain-old', { openedAt: now - 80_000 }),
      link('plain-new', { openedAt: now - 30_000 }),
      link('mesh-new', { gossipMesh: true, openedAt: now - 25_000 })
    ]
    expect(linksToTrim(links, 3, now)).toEqual(['plain-new'])
    expect(linksToTrim(links, 2, now)).toEqual(['plain-new', 'plain-old'])
    expect(linksToTrim(links, 1, now)).toEqual(['plain-new', 'plain-old', 'mesh-new'])
  })
})

describe('admitsInbound', () => {
  const full = { relay: false, linked: false, direct: 48, maxPeers: 48 }
  it('takes links from new peers up to the budget, over WebRTC or the circuit a dial is signalled on', () => {
    expect(admitsInbound({ ...full, transport: 'webrtc', direct: 47 })).toBe(true)
    expect(admitsInbound({ ...full, transport: 'webrtc' })).toBe(false)
    expect(admitsInbound({ ...full, transport: 'circuit' })).toBe(false)
    expect(admitsInbound({ ...full, transport: 'circuit', direct: 0, maxPeers: 0 })).toBe(false)
  })
  it('always takes relays, a peer already linked and a relay-style link', () => {
    expect(admitsInbound({ ...full, transport: 'circuit', relay: true })).toBe(true)
    expect(admitsInbound({ ...full, transport: 'webrtc', linked: true })).toBe(true)
    expect(admitsInbound({ ...full, transport: 'websockets' })).toBe(true)
  })
})
