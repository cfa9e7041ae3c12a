import { describe, expect, it } from 'vitest'
import { pick, seededRandom } from './random.ts'

describe('seededRandom', () => {
  it('draws the same sequence from the same seed, another from another, all in [0, 1) and spread evenly', () => {
    const a = seededRandom(16)
    const b = seededRandom(16)
    const c = seededRandom(17)
    const xs = Array.from({ length: 10_000 }, () => a())
    expect(Array.from({ length: 10_000 }, () => b())).toEqual(xs)
    expect(Array.from({ length: 10 }, () => c())).not.toEqual(xs.slice(0, 10))
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true)
    // Each tenth of [0, 1) gets close to a tenth of the draws.
    const tenths = new Array<number>(10).fill(0)
    for (const x of xs) tenths[Math.floor(x * 10)]! += 1
    for (const n of tenths) expect(Math.abs(n - 1000)).toBeLessThan(150)
  })

  it('takes any number as a seed (negative and fractional ones too) without leaving [0, 1)', () => {
    for (const seed of [0, -1, 2 ** 40, 0.5, Number.MAX_SAFE_INTEGER]) {
      const r = seededRandom(seed)
      for (let i = 0; i < 100; i++) {
        const x = r()
        expect(x >= 0 && x < 1).toBe(true)
      }
    }
  })
})

describe('pick', () => {
  it('picks n distinct items of the list, or all of them when n is larger', () => {
    const items = Array.from({ length: 20 }, (_, i) => i)
    const some = pick(items, 5)
    expect(new Set(some).size).toBe(5)
    for (const x of some) expect(items).toContain(x)
    expect(pick(items, 50).sort((x, y) => x - y)).toEqual(items)
    expect(items).toEqual(Array.from({ length: 20 }, (_, i) => i))
  })
})
