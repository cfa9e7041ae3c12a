import { describe, expect, it } from 'vitest'
import { offsetOf, segments } from './underline'

describe('editor underlines', () => {
  const text = 'name: x\nsteps:\n  - id: a\n    agnet: summarize\n'
  it('maps line:column to an offset', () => {
    expect(text.slice(offsetOf(text, 4, 5), offsetOf(text, 4, 10))).toBe('agnet')
    expect(offsetOf(text, 99, 1)).toBe(text.length)
  })
  it('marks exactly the range of each error, and a word for a point error', () => {
    const s = segments(text, [
      { line: 4, column: 5, endLine: 4, endColumn: 10 },
      { line: 3, column: 9 }
    ])
    expect(s.filter((x) => x.error != null).map((x) => [x.text, x.error])).toEqual([
      ['a', 1],
      ['agnet', 0]
    ])
    expect(s.map((x) => x.text).join('')).toBe(text)
  })
  it('an error at the very end still shows', () => {
    const s = segments('a: 1', [{ line: 1, column: 5 }])
    expect(s.at(-1)).toEqual({ text: ' ', error: 0 })
  })
})
