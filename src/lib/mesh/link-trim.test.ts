import { describe, expect, it } from 'vitest'
import {
  LINK_ADMIT_HOLD_MS,
  LINK_TRIM_MIN_AGE_MS,
  LinkBudget,
  type TrimCandidate,
  admitsInbound,
  donorReserve,
  linksToTrim,
  outboundReserve
} from './link-trim.ts'

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

/** A LinkBudget over a state the test sets: open direct links, those others opened, dials under way and the clock. */
function budget(maxPeers: number) {
  const state = { direct: new Set<string>(), inbound: new Set<string>(), dialing: new Set<string>(), now: 0 }
  const b = new LinkBudget(maxPeers, { direct: () => state.direct, inbound: () => state.inbound, dialing: () => state.dialing, now: () => state.now })
  return { b, state }
}

/** `n` open links that others opened (s0, s1, …). */
function openedByOthers(state: ReturnType<typeof budget>['state'], n: number, prefix = 's'): void {
  for (let i = 0; i < n; i++) {
    state.direct.add(`${prefix}${i}`)
    state.inbound.add(`${prefix}${i}`)
  }
}

describe('LinkBudget', () => {
  const inbound = (id: string, transport: 'webrtc' | 'circuit' = 'circuit') => ({ id, transport, relay: false })

  it('counts the dials under way: a link others open while ours are dialled is refused past the budget', () => {
    const { b, state } = budget(2)
    state.dialing.add('a').add('b')
    expect(b.admit(inbound('c'))).toBe(false)
    // The peers being dialled hold their slots: their own connections are taken.
    expect(b.admit(inbound('a'))).toBe(true)
    state.dialing.delete('b')
    expect(b.admit(inbound('c'))).toBe(true)
  })

  it('holds an admitted slot until the link opens: two links arriving together do not both pass the last slot', () => {
    const { b, state } = budget(2)
    state.direct.add('a')
    expect(b.admit(inbound('b'))).toBe(true)
    expect(b.admit(inbound('c'))).toBe(false)
    // The WebRTC link of a peer whose circuit was admitted is taken.
    expect(b.admit(inbound('b', 'webrtc'))).toBe(true)
    expect(b.hasRoom('c')).toBe(false)
    expect(b.hasRoom('b')).toBe(true)
    // Its link opens (direct): still one slot, not two.
    state.direct.add('b')
    b.release('b')
    expect(b.used()).toEqual(new Set(['a', 'b']))
    expect(b.held).toBe(0)
  })

  it('frees a slot whose connection closed, or whose link never opened within LINK_ADMIT_HOLD_MS', () => {
    const { b, state } = budget(1)
    expect(b.admit(inbound('b'))).toBe(true)
    b.release('b')
    expect(b.admit(inbound('c'))).toBe(true)
    expect(b.admit(inbound('d'))).toBe(false)
    state.now += LINK_ADMIT_HOLD_MS - 1
    expect(b.admit(inbound('d'))).toBe(false)
    state.now += 1
    expect(b.admit(inbound('d'))).toBe(true)
    expect(b.held).toBe(1)
  })

  it('always takes relays and websockets links, without holding a slot', () => {
    const { b } = budget(0)
    expect(b.admit({ id: 'r', transport: 'circuit', relay: true })).toBe(true)
    expect(b.admit({ id: 'w', transport: 'websockets', relay: false })).toBe(true)
    expect(b.held).toBe(0)
    expect(b.admit(inbound('x'))).toBe(false)
  })
})

describe('the outbound reserve', () => {
  it("keeps min(8, maxPeers / 4) slots for this peer's own dials", () => {
    expect(outboundReserve(48)).toBe(8)
    expect(outboundReserve(100)).toBe(8)
    expect(outboundReserve(16)).toBe(4)
    expect(outboundReserve(3)).toBe(0)
  })

  it('refuses strangers once links others opened fill maxPeers less the reserve, while this peer may still dial', () => {
    const { b, state } = budget(16)
    // 12 strangers open links (an attacker's identities): 10 open, 2 admitted and not open yet.
    openedByOthers(state, 10)
    expect(b.admit({ id: 's10', transport: 'circuit', relay: false })).toBe(true)
    expect(b.admit({ id: 's11', transport: 'circuit', relay: false })).toBe(true)
    expect(b.used().size).toBe(12)
    // The 13th is refused though 4 slots are free: they are this peer's.
    expect(b.admit({ id: 's12', transport: 'circuit', relay: false })).toBe(false)
    expect(b.hasRoom('chosen')).toBe(true)
    state.dialing.add('chosen')
    // A peer this peer dials, or waits on to dial it, is taken whatever the reserve.
    expect(b.admit({ id: 'chosen', transport: 'webrtc', relay: false })).toBe(true)
    for (const id of ['c2', 'c3', 'c4']) state.dialing.add(id)
    expect(b.hasRoom('c5')).toBe(false)
  })

  it('takes a link it wants (a donor while it links too few) into the reserve, never past maxPeers', () => {
    const { b, state } = budget(16)
    openedByOthers(state, 12)
    expect(b.admit({ id: 'plain', transport: 'circuit', relay: false })).toBe(false)
    expect(b.admit({ id: 'donor', transport: 'circuit', relay: false, wanted: true })).toBe(true)
    for (let i = 0; i < 3; i++) state.dialing.add(`mine${i}`)
    expect(b.used().size).toBe(16)
    expect(b.admit({ id: 'donor2', transport: 'circuit', relay: false, wanted: true })).toBe(false)
  })
})

describe('the donor reserve', () => {
  it('keeps min(DONOR_LINKS, maxPeers / 8) slots that only a wanted link (a donor while too few are linked) may fill', () => {
    expect(donorReserve(48)).toBe(4)
    expect(donorReserve(16)).toBe(2)
    expect(donorReserve(4)).toBe(0)
    const { b, state } = budget(48)
    // A peer that filled 44 slots with its own dials (16) and links others opened (28).
    for (let i = 0; i < 16; i++) state.direct.add(`mine${i}`)
    openedByOthers(state, 28, 'in')
    expect(b.hasRoom('peer')).toBe(false)
    expect(b.admit({ id: 'stranger', transport: 'circuit', relay: false })).toBe(false)
    expect(b.hasRoom('donor', true)).toBe(true)
    expect(b.admit({ id: 'donor', transport: 'circuit', relay: false, wanted: true })).toBe(true)
    for (let i = 0; i < 3; i++) state.dialing.add(`donor-dialled${i}`)
    // Never past maxPeers.
    expect(b.hasRoom('donor5', true)).toBe(false)
  })
})
