import { describe, expect, it } from 'vitest'
import { Histogram, LATENCY_MS_BUCKETS, difference, merge, quantile } from './histogram.ts'

describe('Histogram', () => {
  it("counts a value equal to a bound in that bound's bucket (le), and above the last in +Inf", () => {
    const h = new Histogram([10, 20, 50])
    h.observe(10)
    h.observe(10.0001)
    h.observe(20)
    h.observe(50)
    h.observe(51)
    h.observe(-3)
    expect(h.snapshot().counts).toEqual([2, 2, 1, 1])
    expect(h.count).toBe(6)
    expect(h.sum).toBeCloseTo(10 + 10.0001 + 20 + 50 + 51 - 3)
  })

  it('ignores NaN and refuses bad bounds', () => {
    const h = new Histogram([1])
    h.observe(Number.NaN)
    expect(h.count).toBe(0)
    expect(() => new Histogram([])).toThrow(RangeError)
    expect(() => new Histogram([5, 5])).toThrow(RangeError)
    expect(() => new Histogram([5, 1])).toThrow(RangeError)
    expect(() => new Histogram([1, Number.POSITIVE_INFINITY])).toThrow(RangeError)
  })

  it('estimates quantiles by linear interpolation inside the bucket (histogram_quantile)', () => {
    const h = new Histogram([10, 20, 40])
    // 10 values in (0,10], 10 in (10,20], none in (20,40]
    for (let i = 0; i < 10; i++) h.observe(5)
    for (let i = 0; i < 10; i++) h.observe(15)
    expect(h.quantile(0.5)).toBe(10) // rank 10: the top of the first bucket
    expect(h.quantile(0.25)).toBe(5) // rank 5 of 10 in (0,10]
    expect(h.quantile(0.75)).toBe(15) // rank 15: half into (10,20]
    expect(h.quantile(1)).toBe(20)
    expect(h.quantile(0)).toBe(0)
  })

  it('a quantile in the +Inf bucket answers the highest finite bound; empty and out-of-range answer NaN', () => {
    const h = new Histogram([10, 20])
    expect(h.quantile(0.5)).toBeNaN()
    h.observe(1000)
    expect(h.quantile(0.99)).toBe(20)
    expect(h.quantile(1.5)).toBeNaN()
    expect(h.quantile(-0.1)).toBeNaN()
  })

  it('quantile estimates of a known distribution stay within one bucket of the truth', () => {
    const h = new Histogram(LATENCY_MS_BUCKETS)
    const values = Array.from({ length: 1000 }, (_, i) => (i + 1) * 0.5) // 0.5 … 500 ms, uniform
    for (const v of values) h.observe(v)
    const exact = (q: number) => values[Math.ceil(q * values.length) - 1] as number
    for (const q of [0.5, 0.95, 0.99]) {
      const est = h.quantile(q)
      const i = LATENCY_MS_BUCKETS.findIndex((b) => b >= exact(q))
      const lower = i === 0 ? 0 : (LATENCY_MS_BUCKETS[i - 1] as number)
      expect(est).toBeGreaterThanOrEqual(lower)
      expect(est).toBeLessThanOrEqual(LATENCY_MS_BUCKETS[i] as number)
    }
    // uniform inside a bucket: interpolation is exact at the median (250 sits on the bound)
    expect(h.quantile(0.5)).toBe(250)
  })

  it('difference gives the window between two snapshots; a reset in between gives the later one', () => {
    const h = new Histogram([10, 100])
    h.observe(5)
    const a = h.snapshot()
    h.observe(50)
    h.observe(50)
    const b = h.snapshot()
    const d = difference(b, a)
    expect(d.counts).toEqual([0, 2, 0])
    expect(d.count).toBe(2)
    expect(d.sum).toBe(100)
    expect(quantile(d, 0.5)).toBe(55)
    h.reset()
    h.observe(500)
    const c = h.snapshot()
    expect(difference(c, b)).toEqual(c)
    expect(difference(b, undefined)).toEqual(b)
  })

  it('merge sums snapshots bucket by bucket', () => {
    const x = new Histogram([10])
    const y = new Histogram([10])
    x.observe(1)
    y.observe(20)
    y.observe(2)
    const m = merge([x.snapshot(), y.snapshot()])
    expect(m?.counts).toEqual([2, 1])
    expect(m?.count).toBe(3)
    expect(merge([])).toBeUndefined()
  })
})

describe('normalizeBounds', () => {
  it('sorts, dedupes and drops non-finite bounds; falls back when none remain', async () => {
    const { normalizeBounds } = await import('./histogram.ts')
    expect(normalizeBounds([5, 1, 5, Number.POSITIVE_INFINITY, Number.NaN, 2], [9])).toEqual([1, 2, 5])
    expect(normalizeBounds(undefined, [9])).toEqual([9])
    expect(normalizeBounds([Number.NaN], [9])).toEqual([9])
  })
})
