/**
 * Property-based fuzzing of workflow documents (issue 11, beyond the list: "every decoder
 * and validator … workflow documents"). A document comes from a person, a file, or a
 * peer's shared namespace: whatever its text, parseWorkflow returns a document or errors
 * that each say where (a line and column inside the text) and what to do; it never throws,
 * and it is a function of the text alone.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MAX_WORKFLOW_DEPTH, parseWorkflow } from './parser.ts'
import type { ParseWorkflowResult } from './types.ts'

const examplesDir = join(import.meta.dirname, 'examples')
const examples = readdirSync(examplesDir)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => readFileSync(join(examplesDir, f), 'utf8'))

/** What every result must be, whatever the text. */
function expectWellFormed(text: string, r: ParseWorkflowResult): void {
  if (r.ok) {
    expect(r.doc.steps.length).toBeGreaterThan(0)
    expect(r.hash).toMatch(/^[0-9a-f]{64}$/)
    return
  }
  expect(r.errors.length).toBeGreaterThan(0)
  const lines = text.split(/\r\n|\r|\n/).length
  for (const e of r.errors) {
    expect(typeof e.kind).toBe('string')
    expect(e.message.length).toBeGreaterThan(0)
    expect(e.line).toBeGreaterThanOrEqual(1)
    expect(e.column).toBeGreaterThanOrEqual(1)
    expect(e.line).toBeLessThanOrEqual(lines + 1)
  }
}

/** A document with one edit: a line dropped, doubled or re-indented, a span cut, or YAML tokens inserted. */
const mutated = fc
  .record({
    doc: fc.constantFrom(...examples),
    op: fc.constantFrom('drop-line', 'double-line', 'indent', 'cut', 'insert'),
    at: fc.nat(),
    len: fc.nat({ max: 40 }),
    token: fc.oneof(
      fc.constantFrom(
        ': ',
        '- ',
        '&a ',
        '*a',
        '!!binary ',
        '{',
        '}',
        '[',
        ']',
        '"',
        "'",
        '#',
        '|',
        '>',
        '\t',
        '${',
        '}}',
        'steps:',
        'id: x',
        '<<: *a',
        '\u0000'
      ),
      fc.string({ maxLength: 20 })
    )
  })
  .map(({ doc, op, at, len, token }) => {
    const lines = doc.split('\n')
    const i = at % lines.length
    const c = at % (doc.length + 1)
    switch (op) {
      case 'drop-line':
        return lines.filter((_, j) => j !== i).join('\n')
      case 'double-line':
        return [...lines.slice(0, i + 1), ...lines.slice(i)].join('\n')
      case 'indent':
        return lines.map((l, j) => (j === i ? ` ${l}` : l)).join('\n')
      case 'cut':
        return doc.slice(0, c) + doc.slice(c + len)
      default:
        return doc.slice(0, c) + token + doc.slice(c)
    }
  })

describe('workflow documents under fuzzing', () => {
  it('the examples parse (the baseline the mutations start from)', () => {
    expect(examples.length).toBeGreaterThanOrEqual(9)
    for (const doc of examples) expect(parseWorkflow(doc).ok).toBe(true)
  })

  it('any text: a document or located errors, never a throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 400 }), fc.string({ unit: 'binary', maxLength: 400 })), (text) => {
        expectWellFormed(text, parseWorkflow(text))
      }),
      { numRuns: 400 }
    )
  })

  it('any JSON value as YAML (JSON is YAML): a document or located errors', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const text = JSON.stringify(value) ?? 'null'
        expectWellFormed(text, parseWorkflow(text))
      }),
      { numRuns: 300 }
    )
  })

  it('an example with one edit: a document or located errors, the same for the same text', () => {
    fc.assert(
      fc.property(mutated, (text) => {
        const r = parseWorkflow(text)
        expectWellFormed(text, r)
        expect(parseWorkflow(text)).toEqual(r)
      }),
      { numRuns: 400 }
    )
  })

  it('an alias bomb and a nesting bomb are refused as errors, not expanded', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]']
    for (const [name, prev] of [
      ['b', 'a'],
      ['c', 'b'],
      ['d', 'c'],
      ['e', 'd'],
      ['f', 'e'],
      ['g', 'f']
    ])
      bomb.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`)
    bomb.push('name: bomb', 'steps: [{ id: s, agent: x, input: *g }]')
    const r = parseWorkflow(bomb.join('\n'))
    expectWellFormed(bomb.join('\n'), r)
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.errors[0]?.message).toMatch(/alias/i)
    // Nesting: deep enough to end the parser's stack, and deep enough to pass it but not the bound.
    for (const levels of [5000, MAX_WORKFLOW_DEPTH + 10]) {
      const deep = `name: deep\nsteps:\n  - id: s\n    agent: x\n    input: ${'['.repeat(levels)}${']'.repeat(levels)}\n`
      const d = parseWorkflow(deep)
      expectWellFormed(deep, d)
      expect(d.ok).toBe(false)
      if (d.ok) return
      expect(d.errors[0]?.message).toMatch(new RegExp(`nests (too )?deep.*${MAX_WORKFLOW_DEPTH}`))
    }
    // At the bound it is read.
    const fine = `name: deep\nsteps:\n  - id: s\n    agent: x\n    input: ${'['.repeat(MAX_WORKFLOW_DEPTH - 4)}${']'.repeat(MAX_WORKFLOW_DEPTH - 4)}\n`
    expect(parseWorkflow(fine).ok).toBe(true)
  })
})
