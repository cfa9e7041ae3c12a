import { describe, expect, it } from 'vitest'
import { FairSlots, KeyedRate, Probation, addressKey } from './admission.ts'

describe('relay admission (issue 11 item 7)', () => {
  it('a flood from one address cannot take the slots of another', () => {
    const slots = new FairSlots<string, string>(10, 100)
    slots.admit('honest-1', 'A')
    for (let i = 0; i < 50; i++) slots.admit(`flood-${i}`, 'X')
    expect(slots.size).toBe(10)
    // The store is full of the flood; honest newcomers from other addresses still get in,
    // each taking the flood's newest slot, until addresses hold their fair share.
    for (let i = 2; i <= 4; i++) expect(slots.admit(`honest-${i}`, 'A')).toMatchObject({ admitted: true })
    expect(slots.admit('other-1', 'B')).toMatchObject({ admitted: true, evicted: 'flood-5' })
    expect(slots.countOf('A')).toBe(4)
    expect(slots.countOf('B')).toBe(1)
    expect(slots.countOf('X')).toBe(5)
    // The flood's oldest holders keep theirs: LIFO eviction.
    expect(slots.has('flood-0')).toBe(true)
    // At the fair share, the next from A waits (no address holds more than A + 1).
    expect(slots.admit('honest-5', 'A')).toEqual({ admitted: false, reason: 'full' })
    expect(slots.admit('flood-99', 'X')).toEqual({ admitted: false, reason: 'full' })
  })

  it('caps one address and frees a slot when its holder leaves', () => {
    const slots = new FairSlots<string, string>(100, 3)
    for (let i = 0; i < 3; i++) expect(slots.admit(`p${i}`, 'X').admitted).toBe(true)
    expect(slots.admit('p3', 'X')).toEqual({ admitted: false, reason: 'per-address' })
    // A holder asking again keeps its slot.
    expect(slots.admit('p0', 'X')).toEqual({ admitted: true })
    slots.release('p1')
    expect(slots.admit('p3', 'X').admitted).toBe(true)
    expect(slots.size).toBe(3)
  })

  it('rates requests per key, with a bounded number of keys', () => {
    let t = 0
    const rate = new KeyedRate<string>(2, 1000, 3, () => t)
    expect([rate.take('a'), rate.take('a'), rate.take('a')]).toEqual([true, true, false])
    t = 500
    expect(rate.take('a')).toBe(true)
    expect(rate.take('a')).toBe(false)
    for (const k of ['b', 'c', 'd', 'e']) expect(rate.take(k)).toBe(true)
  })

  it('holds unproven reservations per address under a cap, and lapses a crowd of them past the grace', () => {
    const p = new Probation<string, string>(5, 1000, 2)
    for (let i = 0; i < 5; i++) expect(p.enter(`x${i}`, 'X', i * 100)).toBe(true)
    // X is at its cap; another address is not.
    expect(p.hasRoom('X')).toBe(false)
    expect(p.enter('x5', 'X', 500)).toBe(false)
    expect(p.enter('a0', 'A', 0)).toBe(true)
    // One shows itself (a presence): it leaves probation and frees room.
    p.release('x4')
    expect(p.hasRoom('X')).toBe(true)
    // Before the grace nothing lapses.
    expect(p.lapse(999)).toEqual([])
    // X holds 4 (> 2 tolerated): those past the grace lapse. A holds 1 (tolerated): it stays, however old.
    expect(p.lapse(1150).map((l) => l.holder)).toEqual(['x0', 'x1'])
    expect(p.countOf('X')).toBe(2)
    // X is back to its tolerated 2: they stay even past the grace.
    expect(p.lapse(10_000)).toEqual([])
    expect(p.has('a0')).toBe(true)
    expect(p.size).toBe(3)
  })

  it('keys connections by host', () => {
    expect(addressKey('/ip4/10.0.0.7/tcp/5555/ws/p2p/x')).toBe('10.0.0.7')
    expect(addressKey('/ip6/::1/tcp/1/ws')).toBe('::1')
  })
})
