import { describe, expect, it } from 'vitest'
import { agree, parseComparison } from './agreement.ts'
import { OutputSchemas } from './output-schema.ts'

describe('agreement', () => {
  it('parses what a manifest declares; anything else is exact', () => {
    expect(parseComparison(undefined)).toEqual({ kind: 'exact' })
    expect(parseComparison('json-equal')).toEqual({ kind: 'json-equal' })
    expect(parseComparison({ 'numeric-tolerance': 0.01 })).toEqual({ kind: 'numeric-tolerance', tolerance: 0.01 })
    expect(parseComparison({ judge: 'llm-judge' })).toEqual({ kind: 'judge', agent: 'llm-judge' })
    expect(parseComparison({ judge: '' })).toEqual({ kind: 'exact' })
    expect(parseComparison('fuzzy')).toEqual({ kind: 'exact' })
  })

  it('compares canonical output, JSON text, numbers within a tolerance, bytes, or asks a judge', async () => {
    const exact = parseComparison('exact')
    expect(await agree(exact, { a: 1, b: [1, 2] }, { b: [1, 2], a: 1 })).toBe(true)
    expect(await agree(exact, { a: 1 }, { a: 1.0000001 })).toBe(false)
    expect(await agree(exact, '{"a":1}', '{ "a": 1 }')).toBe(false)
    expect(await agree(parseComparison('json-equal'), '{"a":1,"b":2}', '{ "b": 2, "a": 1 }')).toBe(true)
    const tol = parseComparison({ 'numeric-tolerance': 1e-3 })
    expect(await agree(tol, { x: [1, 2.0001] }, { x: [1, 2] })).toBe(true)
    expect(await agree(tol, { x: [1, 2.1] }, { x: [1, 2] })).toBe(false)
    expect(await agree(tol, { x: 1 }, { x: 1, y: 2 })).toBe(false)
    expect(await agree(exact, new Uint8Array([1, 2]), new Uint8Array([1, 2]).buffer)).toBe(true)
    expect(await agree(exact, new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false)
    const judged: unknown[] = []
    const judge = async (agent: string, a: unknown, b: unknown) => {
      judged.push([agent, a, b])
      return true
    }
    expect(await agree(parseComparison({ judge: 'j' }), 'same', 'same', judge)).toBe(true)
    expect(judged).toHaveLength(0) // equal outputs need no judge
    expect(await agree(parseComparison({ judge: 'j' }), 'one summary', 'another', judge)).toBe(true)
    expect(judged).toEqual([['j', 'one summary', 'another']])
    await expect(agree(parseComparison({ judge: 'j' }), 'x', 'y')).rejects.toThrow(/judge/)
  })

  it('checks outputs against the manifest output schema without eval', () => {
    const s = new OutputSchemas()
    const schema = { type: 'object', required: ['sha256'], properties: { sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' } } }
    expect(s.check('a', schema, { sha256: 'f'.repeat(64) })).toBeUndefined()
    expect(s.check('a', schema, { sha256: 'nope' })).toMatch(/sha256|pattern/)
    expect(s.check('a', schema, { other: 1 })).toBeDefined()
    expect(s.check('a', undefined, 'anything')).toBeUndefined()
    expect(s.check('b', { type: 'string' }, new Uint8Array(3))).toBeUndefined()
  })
})
