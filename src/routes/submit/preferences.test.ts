import { describe, expect, it } from 'vitest'
import { checkPreferences, defaultPreferences, toPreferences } from './preferences.ts'

describe('submit preferences', () => {
  it('min reputation is a score from 0 to 1, like reputation itself', () => {
    const bad = checkPreferences({ ...defaultPreferences(), minReputation: 3 })
    expect(bad.ok).toBe(false)
    expect(!bad.ok && bad.errors.minReputation).toBe('Min reputation must be a number from 0 to 1.')
    const good = checkPreferences({ ...defaultPreferences(), minReputation: 0.6 })
    expect(good.ok && good.prefs.min_reputation).toBe(0.6)
  })

  it('reports every faulty field at once, not the first', () => {
    const r = checkPreferences({ ...defaultPreferences(), maxCost: -1, minQuality: 2, maxLatency: 'soon', minReputation: 5, regions: 'eu-west, asia, us-east' })
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(Object.keys(r.errors).sort()).toEqual(['maxCost', 'maxLatency', 'minQuality', 'minReputation', 'regions'])
    expect(r.errors.regions).toBe('"eu-west", "us-east" are not regions: use europe, americas, asia, africa, oceania.')
  })

  it('preferred regions come from the one vocabulary, case-insensitive and de-duplicated', () => {
    const r = checkPreferences({ ...defaultPreferences(), regions: 'Europe, asia, europe' })
    expect(r.ok && r.prefs.preferred_regions).toEqual(['europe', 'asia'])
  })

  it('the custom strategy is a field error; toPreferences still throws the first sentence', () => {
    const r = checkPreferences({ ...defaultPreferences(), strategy: 'custom' })
    expect(!r.ok && r.errors.strategy).toMatch(/console/)
    expect(() => toPreferences({ ...defaultPreferences(), minReputation: 2 })).toThrow('Min reputation must be a number from 0 to 1.')
    expect(toPreferences(defaultPreferences())).toEqual({ strategy: 'balanced' })
  })
})
