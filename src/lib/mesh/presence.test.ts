// The default region comes from the time zone, read without building an Intl.DateTimeFormat
// where Temporal exists (a cold tab's first DateTimeFormat cost 35-75 ms of its join).
import { afterEach, describe, expect, it, vi } from 'vitest'
import { defaultRegion } from './presence.ts'

describe('defaultRegion', () => {
  afterEach(() => {
    vi.unstubAllGlobals()
    vi.restoreAllMocks()
  })

  it("reads the time zone from Temporal when there is one, not from Intl's formatter", () => {
    vi.stubGlobal('Temporal', { Now: { timeZoneId: () => 'Europe/Paris' } })
    const formatter = vi.spyOn(Intl, 'DateTimeFormat')
    expect(defaultRegion()).toBe('europe')
    expect(formatter).not.toHaveBeenCalled()
  })

  it("falls back to Intl's time zone without Temporal", () => {
    vi.stubGlobal('Temporal', undefined)
    const formatter = vi
      .spyOn(Intl, 'DateTimeFormat')
      .mockImplementation(() => ({ resolvedOptions: () => ({ timeZone: 'Asia/Tokyo' }) }) as unknown as Intl.DateTimeFormat)
    expect(defaultRegion()).toBe('asia')
    expect(formatter).toHaveBeenCalled()
  })

  it('says unknown under UTC', () => {
    vi.stubGlobal('Temporal', { Now: { timeZoneId: () => 'UTC' } })
    expect(defaultRegion()).toBe('unknown')
  })
})
