import { describe, expect, it } from 'vitest'
import { count, donorText, holdersText } from './format.ts'

describe('format', () => {
  it('counts with the right noun', () => {
    expect(count(1, 'step')).toBe('1 step')
    expect(count(0, 'step')).toBe('0 steps')
    expect(count(9, 'step')).toBe('9 steps')
  })

  it('names workers and free call slots apart for a donor', () => {
    expect(donorText({ donating: true, workers: 1, freeWorkers: 8 })).toBe('yes: 1 worker, 8 call slots free')
    expect(donorText({ donating: true, workers: 3, freeWorkers: 1 })).toBe('yes: 3 workers, 1 call slot free')
    expect(donorText({ donating: true, freeWorkers: 8 })).toBe('yes: 8 call slots free')
    expect(donorText({ donating: false, workers: 0, freeWorkers: 0 })).toBe('no')
    expect(donorText({ donating: false, freeWorkers: 0, relay: true })).toBe('—')
  })

  it('says every peer holds a bundled agent, with how many are known now; a published one by its count', () => {
    expect(holdersText({ bundled: true, holders: ['me', 'b', 'c'] })).toBe('every peer (3 now)')
    expect(holdersText({ bundled: false, holders: [] })).toBe('0')
    expect(holdersText({ bundled: false, holders: ['a', 'b'] })).toBe('2')
  })
})
