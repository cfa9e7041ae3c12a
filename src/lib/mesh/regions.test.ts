import { describe, expect, it } from 'vitest'
import { REGIONS, UnknownRegionError, isRegion, regionLabel, regionOfTimeZone, toRegion } from './regions.ts'
import { defaultRegion } from './presence.ts'

describe('regions', () => {
  it('maps time zones to the one vocabulary, including zones whose head names another continent', () => {
    const cases: Array<[string, string | undefined]> = [
      ['Europe/Paris', 'europe'],
      ['America/New_York', 'americas'],
      ['America/Sao_Paulo', 'americas'],
      ['US/Eastern', 'americas'],
      ['Asia/Tokyo', 'asia'],
      ['Africa/Lagos', 'africa'],
      ['Australia/Sydney', 'oceania'],
      ['Pacific/Auckland', 'oceania'],
      ['Pacific/Honolulu', 'americas'],
      ['Atlantic/Reykjavik', 'europe'],
      ['Indian/Mauritius', 'africa'],
      ['UTC', undefined],
      ['Etc/GMT+3', undefined],
      ['Antarctica/Troll', undefined]
    ]
    for (const [tz, region] of cases) expect(regionOfTimeZone(tz), tz).toBe(region)
  })

  it('every mapped region is in REGIONS, and the default is one of them or "unknown"', () => {
    const ids = REGIONS.map((r) => r.id as string)
    for (const tz of Intl.supportedValuesOf('timeZone')) {
      const r = regionOfTimeZone(tz)
      if (r != null) expect(ids).toContain(r)
    }
    expect([...ids, 'unknown']).toContain(defaultRegion())
  })

  it('validates ids and labels them', () => {
    expect(isRegion('europe')).toBe(true)
    expect(isRegion('eu-west')).toBe(false)
    expect(toRegion('asia')).toBe('asia')
    expect(() => toRegion('us-east')).toThrow(UnknownRegionError)
    expect(() => toRegion('us-east')).toThrow(/choose one of europe, americas/)
    expect(regionLabel('oceania')).toBe('Oceania')
    expect(regionLabel('unknown')).toBe('not known')
  })
})
