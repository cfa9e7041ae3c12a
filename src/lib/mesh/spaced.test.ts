import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Spaced } from './spaced.ts'

describe('Spaced (a presence at most every PRESENCE_MIN_SPACING_MS)', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('runs at once when the last run is old enough, else once at the end of the spacing for all the calls made meanwhile', () => {
    const runs: number[] = []
    const s = new Spaced(250, () => runs.push(Date.now()))
    const t0 = Date.now()
    s.run()
    expect(runs).toEqual([t0])
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(20)
      s.run()
    }
    // Ten calls within the spacing: none yet, then one at its end.
    expect(runs).toHaveLength(1)
    vi.advanceTimersByTime(50)
    expect(runs).toEqual([t0, t0 + 250])
    // Long after: at once again.
    vi.advanceTimersByTime(1000)
    s.run()
    expect(runs).toHaveLength(3)
    expect(runs[2]! - runs[1]!).toBeGreaterThanOrEqual(250)
  })

  it('a cancelled run does not happen', () => {
    let n = 0
    const s = new Spaced(250, () => n++)
    s.run()
    s.run()
    s.cancel()
    vi.advanceTimersByTime(1000)
    expect(n).toBe(1)
  })
})
