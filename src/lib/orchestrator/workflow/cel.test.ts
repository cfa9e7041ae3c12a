// biome-ignore-all lint/suspicious/noTemplateCurlyInString: workflow documents hold ${} templates
import { describe, expect, it } from 'vitest'
import { bareExpression, CelSyntaxError, compileExpression, interpolate, templateParts } from './cel.ts'

describe('CEL binding', () => {
  it('JSON numbers compare with integer literals and mix in arithmetic', () => {
    const ev = (e: string, scope: Record<string, unknown>) => compileExpression(e).evaluate(scope)
    expect(ev('stats.words > 5', { stats: { words: 12 } })).toBe(true)
    expect(ev('stats.words == 12', { stats: { words: 12 } })).toBe(true)
    expect(ev('stats.words + 1', { stats: { words: 12 } })).toBe(13)
    expect(ev('ratio * 2', { ratio: 0.25 })).toBe(0.5)
    expect(ev('ratio > 0', { ratio: 0.25 })).toBe(true)
    expect(ev('size(xs) == 3 && "b" in xs', { xs: ['a', 'b', 'c'] })).toBe(true)
    expect(ev('has(a.b) ? a.b : "none"', { a: {} })).toBe('none')
    expect(ev('a.b', { a: { b: { c: [1, 2] } } })).toEqual({ c: [1, 2] })
  })

  it('binds loop.* although `loop` is reserved in CEL, and not inside strings or after a dot', () => {
    const c = compileExpression('loop.index > 1 && x.loop == "loop"')
    expect(c.reads.map((r) => [r.name, r.member])).toEqual([
      ['loop', 'index'],
      ['x', 'loop']
    ])
    expect(c.evaluate({ loop: { index: 2 }, x: { loop: 'loop' } })).toBe(true)
  })

  it('reports the variables an expression reads, not macro variables', () => {
    const c = compileExpression('steps.fetch.status == "succeeded" && items.all(i, i > limit)')
    expect(c.reads.map((r) => `${r.name}${r.member != null ? `.${r.member}` : ''}@${r.offset}`)).toEqual(['steps.fetch@0', 'items@37', 'limit@54'])
  })

  it('steps["an-id"] reads a step whose id has a dash', () => {
    const c = compileExpression('steps["fetch-page"].status == "succeeded"')
    expect(c.reads.map((r) => [r.name, r.member])).toEqual([['steps', 'fetch-page']])
    expect(c.evaluate({ steps: { 'fetch-page': { status: 'succeeded' } } })).toBe(true)
  })

  it('a syntax error carries its offset', () => {
    const err = (() => {
      try {
        compileExpression('a + + ')
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(CelSyntaxError)
    expect((err as CelSyntaxError).offset).toBe(4) // the second +: CEL has no unary plus
  })

  it('templates: exactly one ${} yields the value; otherwise text; deep in objects and lists', () => {
    const scope = { a: { n: 3, list: [1, 2] }, s: 'hi' }
    expect(interpolate('${a.list}', scope)).toEqual([1, 2])
    expect(interpolate('n=${a.n}, s=${s}, l=${a.list}', scope)).toBe('n=3, s=hi, l=[1,2]')
    expect(interpolate({ x: ['${a.n + 1}', 'plain'], y: 7 }, scope)).toEqual({ x: [4, 'plain'], y: 7 })
    expect(templateParts('${ {"k": "}"}.k } and ${s}').map((p) => p.expr)).toEqual([' {"k": "}"}.k ', 's'])
    expect(() => templateParts('x ${a')).toThrow(CelSyntaxError)
    expect(bareExpression('${a > 1}')).toEqual({ expr: 'a > 1', offset: 2 })
    expect(bareExpression('a > 1')).toEqual({ expr: 'a > 1', offset: 0 })
  })

  it('an evaluation error (missing key, wrong type) is a plain sentence, never a crash', () => {
    expect(() => compileExpression('a.missing > 1').evaluate({ a: {} })).toThrow(/missing/)
    expect(() => compileExpression('"a" + 1').evaluate({})).toThrow(/overload/)
  })
})
