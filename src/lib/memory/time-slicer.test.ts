import { describe, expect, it } from 'vitest'
import { TimeSlicer, yieldToEventLoop } from './time-slicer.ts'

const busy = (ms: number): void => {
  const end = performance.now() + ms
  while (performance.now() < end) {
    /* spin */
  }
}

describe('TimeSlicer', () => {
  it('gives the event loop a turn once a slice has used its budget: a timer runs between every ~budget of work', async () => {
    const slicer = new TimeSlicer(20)
    let done = 0
    let atLastTick = 0
    let maxItemsBetweenTicks = 0
    const ticker = setInterval(() => {
      maxItemsBetweenTicks = Math.max(maxItemsBetweenTicks, done - atLastTick)
      atLastTick = done
    }, 0)
    try {
      for (let i = 0; i < 100; i++) {
        busy(2)
        done++
        await slicer.maybeYield()
      }
    } finally {
      clearInterval(ticker)
    }
    expect(slicer.yields).toBeGreaterThanOrEqual(5)
    // A slice is 20 ms of 2 ms items (wall clock, so a preempted item only makes slices shorter);
    // without slicing all 100 items would run between two ticks.
    expect(maxItemsBetweenTicks).toBeGreaterThan(0)
    expect(maxItemsBetweenTicks).toBeLessThanOrEqual(11)
  })

  it('does not yield before the budget is spent', async () => {
    const slicer = new TimeSlicer(10_000)
    for (let i = 0; i < 1000; i++) await slicer.maybeYield()
    expect(slicer.yields).toBe(0)
  })

  it('yieldToEventLoop lets a queued timer run', async () => {
    let ran = false
    setTimeout(() => {
      ran = true
    }, 0)
    for (let i = 0; i < 5 && !ran; i++) await yieldToEventLoop()
    expect(ran).toBe(true)
  })
})
