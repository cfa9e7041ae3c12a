import { describe, expect, it } from 'vitest'
import { SPENDING_KEY, savedLimits } from './trust-wiring.ts'

const store = (value: string | null) => ({ getItem: (k: string) => (k === SPENDING_KEY ? value : null) })

describe('saved spending limits', () => {
  it('reads valid limits and ignores anything else (the defaults apply)', () => {
    expect(savedLimits(store(JSON.stringify({ allowance: 25, dailyBudget: 3 })))).toEqual({ allowance: 25, dailyBudget: 3 })
    expect(savedLimits(store(JSON.stringify({ allowance: 25 })))).toEqual({ allowance: 25 })
    expect(savedLimits(store(null))).toEqual({})
    expect(savedLimits(null)).toEqual({})
    expect(savedLimits(store('{not json'))).toEqual({})
    expect(savedLimits(store(JSON.stringify({ allowance: -5 })))).toEqual({})
    expect(savedLimits(store(JSON.stringify({ allowance: 5, dailyBudget: 1e12 })))).toEqual({})
    expect(savedLimits(store(JSON.stringify({ allowance: '5' })))).toEqual({})
    expect(savedLimits(store('[1,2]'))).toEqual({})
  })
})
