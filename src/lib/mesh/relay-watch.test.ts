import { describe, expect, it } from 'vitest'
import { RelayGossipWatch } from './relay-watch.ts'
import { RELAY_DIAL_MAX_MS, RELAY_DIAL_MS, relayDialMs } from './constants.ts'

describe('RelayGossipWatch', () => {
  it('hangs up a relay link only after its grace without gossip', () => {
    const w = new RelayGossipWatch(1000, 8000)
    const links = [{ id: 'r1', openedAt: 0 }]
    expect(w.stranded(links, () => false, 999)).toEqual([])
    expect(w.stranded(links, () => false, 1000)).toEqual(['r1'])
  })

  it('never hangs up a relay that gossips, however old the link', () => {
    const w = new RelayGossipWatch(1000, 8000)
    expect(w.stranded([{ id: 'r1', openedAt: 0 }], () => true, 1_000_000)).toEqual([])
  })

  it('doubles the grace for each stranding in a row, up to the maximum, and forgives a relay that gossips', () => {
    const w = new RelayGossipWatch(1000, 3000)
    let t = 0
    const strandAt = (): number => {
      const openedAt = t
      for (;;) {
        t += 100
        if (w.stranded([{ id: 'r1', openedAt }], () => false, t).length > 0) return t - openedAt
      }
    }
    expect(strandAt()).toBe(1000)
    expect(strandAt()).toBe(2000)
    expect(strandAt()).toBe(3000)
    expect(strandAt()).toBe(3000)
    // A link that gossips resets the count: the next stranding waits the base grace again.
    expect(w.stranded([{ id: 'r1', openedAt: t }], () => true, t + 10)).toEqual([])
    expect(strandAt()).toBe(1000)
  })

  it('judges each relay apart, and several links to one relay from the oldest', () => {
    const w = new RelayGossipWatch(1000, 8000)
    const links = [
      { id: 'r1', openedAt: 500 },
      { id: 'r1', openedAt: 0 },
      { id: 'r2', openedAt: 0 }
    ]
    expect(w.stranded(links, (id) => id === 'r2', 1000)).toEqual(['r1'])
    expect(w.graceFor('r1')).toBe(2000)
    expect(w.graceFor('r2')).toBe(1000)
  })
})

describe('relayDialMs', () => {
  it('gives a relay dial more time after each failed round, up to RELAY_DIAL_MAX_MS', () => {
    expect(relayDialMs(0)).toBe(RELAY_DIAL_MS)
    expect(relayDialMs(1)).toBe(2 * RELAY_DIAL_MS)
    expect(relayDialMs(2)).toBe(RELAY_DIAL_MAX_MS)
    expect(relayDialMs(50)).toBe(RELAY_DIAL_MAX_MS)
    expect(relayDialMs(-1)).toBe(RELAY_DIAL_MS)
  })
})
