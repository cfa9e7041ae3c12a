// biome-ignore-all lint/suspicious/noTemplateCurlyInString: workflow documents hold ${} templates
import { describe, expect, it } from 'vitest'
import { agent, catalogOf } from '../test-fixtures.ts'
import { workflowGraph } from './graph.ts'
import { parseWorkflow, validateWorkflowInput } from './parser.ts'
import type { WorkflowError, WorkflowErrorKind } from './types.ts'

const catalog = catalogOf([agent('summarize', ['text-summarization'], 0.2), agent('counter', ['text-statistics'], 0.05)])

/** The errors of a document that must not parse. */
function errorsOf(yaml: string, opts = {}): WorkflowError[] {
  const r = parseWorkflow(yaml, opts)
  if (r.ok) throw new Error('expected errors')
  return r.errors
}
/** The one error of `kind`, asserting where it is. */
function expectError(yaml: string, kind: WorkflowErrorKind, line: number, column: number, opts = {}): WorkflowError {
  const errors = errorsOf(yaml, opts)
  const e = errors.find((x) => x.kind === kind)
  expect(e, JSON.stringify(errors)).toBeDefined()
  expect([e!.line, e!.column]).toEqual([line, column])
  expect(e!.message.length).toBeGreaterThan(20)
  return e!
}

describe('parseWorkflow: a valid document', () => {
  it('applies defaults, derives dependencies from reads, and hashes the text', () => {
    const yaml = `name: research
steps:
  - id: count
    agent: counter
    input: \${task.text}
  - id: sum
    capabilities: [text-summarization]
    when: count.words > 5
    input: "words: \${count.words}"
  - id: merge
    agent: counter
    depends_on: count
    input: \${steps.sum.output}
`
    const r = parseWorkflow(yaml, { catalog })
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(r.hash).toMatch(/^[0-9a-f]{64}$/)
    expect(r.doc.execution).toEqual({ mode: 'dag', retry_failed: true, fallback_strategy: 'fail' })
    expect(r.doc.dependencies).toEqual({ count: [], sum: ['count'], merge: ['count', 'sum'] })
    expect(r.doc.steps[1].output).toBe('sum')
    const g = workflowGraph(r.doc)
    expect(g.nodes.map((n) => n.id)).toEqual(['count', 'sum', 'merge'])
    expect(g.edges).toEqual([
      { from: 'count', to: 'sum', kind: 'reads' },
      { from: 'count', to: 'merge', kind: 'depends_on' },
      { from: 'sum', to: 'merge', kind: 'reads' }
    ])
    expect(parseWorkflow(`${yaml}\n`).ok && parseWorkflow(`${yaml}\n`)).not.toEqual(r)
  })

  it('steps["an-id"] adds the dependency; an unknown one is an unknown-step at its place', () => {
    const r = parseWorkflow('name: d\nsteps:\n  - { id: fetch-page, agent: x }\n  - { id: b, agent: x, when: \'steps["fetch-page"].status == "succeeded"\' }\n')
    expect(r.ok && r.doc.dependencies.b).toEqual(['fetch-page'])
    expectError('name: d\nsteps:\n  - id: b\n    agent: x\n    when: steps["nope"].output\n', 'unknown-step', 5, 11)
  })

  it('sequential mode chains steps in listed order; durations become ms', () => {
    const r = parseWorkflow(`name: s
execution: { mode: sequential, timeout: 5m }
steps:
  - { id: a, agent: x, timeout: 500ms }
  - { id: b, agent: x }
`)
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(r.doc.dependencies).toEqual({ a: [], b: ['a'] })
    expect(r.doc.execution.timeout).toBe(300_000)
    expect(r.doc.steps[0].timeout).toBe(500)
    expect(workflowGraph(r.doc).edges).toEqual([{ from: 'a', to: 'b', kind: 'sequence' }])
  })
})

describe('parseWorkflow: one test per error kind, each at its line and column', () => {
  it('yaml-syntax', () => {
    expectError('name: x\nsteps:\n  - id: a\n    agent: [x\n', 'yaml-syntax', 5, 1)
  })
  it('yaml-syntax: a duplicate key', () => {
    expectError('name: x\nname: y\nsteps: []\n', 'yaml-syntax', 2, 1)
  })
  it('unknown-key, with the nearest known key', () => {
    const e = expectError('name: x\nsteps:\n  - id: a\n    agnt: foo\n', 'unknown-key', 4, 5)
    expect(e.message).toContain('"agent"')
  })
  it('unknown-key at the top level and inside execution', () => {
    expect(expectError('name: x\nstep:\n  - id: a\n', 'unknown-key', 2, 1).message).toContain('"steps"')
    expect(expectError('name: x\nsteps: [{ id: a, agent: x }]\nexecution:\n  max_cots: 1\n', 'unknown-key', 4, 3).message).toContain('"max_cost"')
  })
  it('unknown-key and invalid-value inside routing preferences', () => {
    expect(expectError('name: x\nsteps:\n  - id: a\n    agent: x\n    preferences:\n      stratgy: cost\n', 'unknown-key', 6, 7).message).toContain(
      '"strategy"'
    )
    expectError(
      'name: x\nagents:\n  - { name: s, capabilities: [echo], preferences: { min_quality: 7 } }\nsteps: [{ id: a, agent: s }]\n',
      'invalid-value',
      3,
      66
    )
  })
  it('missing-key', () => {
    expectError('name: x\nsteps:\n  - id: a\n    agent: x\n  - id: b\n', 'missing-key', 5, 9)
    expectError('description: no name\nsteps:\n  - { id: a, agent: x }\n', 'missing-key', 1, 1)
  })
  it('invalid-value', () => {
    expectError('name: x\nexecution: { mode: sequental }\nsteps: [{ id: a, agent: x }]\n', 'invalid-value', 2, 20)
    expectError('name: x\nsteps:\n  - id: A B\n    agent: x\n', 'invalid-value', 3, 9)
  })
  it('duplicate-step', () => {
    expectError('name: x\nsteps:\n  - id: a\n    agent: x\n  - id: a\n    agent: y\n', 'duplicate-step', 5, 9)
  })
  it('unknown-agent (with a catalog)', () => {
    const e = expectError('name: x\nsteps:\n  - id: a\n    agent: sumarize\n', 'unknown-agent', 4, 12, { catalog })
    expect(e.message).toContain('"summarize"')
    // Without a catalog the name is checked when the run starts.
    expect(parseWorkflow('name: x\nsteps:\n  - id: a\n    agent: sumarize\n').ok).toBe(true)
  })
  it('unknown-capability (with a catalog)', () => {
    const e = expectError('name: x\nsteps:\n  - id: a\n    capabilities: [text-summarisation]\n', 'unknown-capability', 4, 19, { catalog })
    expect(e.message).toContain('"text-summarization"')
    expectError('name: x\nsteps:\n  - id: a\n    capabilities: [text-summarization, text-statistics]\n', 'unknown-capability', 4, 19, { catalog })
  })
  it('unknown-workflow', () => {
    expectError('name: x\nsteps:\n  - id: a\n    workflow: nope\n', 'unknown-workflow', 4, 15, { workflows: { get: () => undefined } })
  })
  it('unknown-variable in ${} and in when, at the variable itself', () => {
    expectError('name: x\nsteps:\n  - id: a\n    agent: x\n    input: "n: ${missing + 1}"\n', 'unknown-variable', 5, 18)
    expectError("name: x\nsteps:\n  - id: a\n    agent: x\n    when: task.ok && stepz.a == 'x'\n", 'unknown-variable', 5, 22)
  })
  it('unknown-variable: item outside for_each', () => {
    expectError('name: x\nsteps:\n  - id: a\n    agent: x\n    input: ${item}\n', 'unknown-variable', 5, 14)
  })
  it('unknown-step in depends_on and in steps.<id>', () => {
    expectError('name: x\nsteps:\n  - id: a\n    agent: x\n    depends_on: [b]\n', 'unknown-step', 5, 18)
    expectError('name: x\nsteps:\n  - id: a\n    agent: x\n    when: steps.zz.status == "succeeded"\n', 'unknown-step', 5, 11)
  })
  it('cycle, naming its steps', () => {
    const e = expectError('name: x\nsteps:\n  - id: a\n    agent: x\n    input: ${b}\n  - id: b\n    agent: x\n    depends_on: a\n', 'cycle', 3, 9)
    expect(e.message).toContain('a → b → a')
  })
  it('cel-syntax, at the mistake inside the expression (plain and quoted)', () => {
    expectError('name: x\nsteps:\n  - id: a\n    agent: x\n    when: task.n > > 2\n', 'cel-syntax', 5, 20)
    expectError('name: x\nsteps:\n  - id: a\n    agent: x\n    input: "v: ${task.n +}"\n', 'cel-syntax', 5, 26)
  })
  it('cel-syntax: an unclosed ${', () => {
    expectError('name: x\nsteps:\n  - id: a\n    agent: x\n    input: "v: ${task.n"\n', 'cel-syntax', 5, 16)
  })
  it('over-budget: the cheapest agents cost more than max_cost', () => {
    const e = expectError(
      'name: x\nexecution:\n  max_cost: 0.1\nsteps:\n  - { id: a, agent: summarize }\n  - { id: b, agent: counter }\n',
      'over-budget',
      3,
      13,
      { catalog }
    )
    expect(e.message).toContain('0.25')
  })
  it('invalid-input: the input does not match `inputs`', () => {
    const r = parseWorkflow('name: x\ninputs:\n  type: object\n  required: [topic]\nsteps: [{ id: a, agent: x }]\n')
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(validateWorkflowInput(r.doc, { topic: 'cats' })).toEqual([])
    const errs = validateWorkflowInput(r.doc, { title: 'cats' })
    expect(errs[0].kind).toBe('invalid-input')
    expect([errs[0].line, errs[0].column]).toEqual([3, 3])
    expect(errs[0].message).toContain('topic')
  })
  it('a reserved output name and an output used twice', () => {
    expectError('name: x\nsteps:\n  - id: task\n    agent: x\n', 'invalid-value', 3, 9)
    expectError('name: x\nsteps:\n  - { id: a, agent: x, output: r }\n  - { id: b, agent: x, output: r }\n', 'invalid-value', 4, 32)
  })
  it('never throws on hostile input', () => {
    for (const y of ['', '[]', '42', 'a: *x', '{', `name: x\nsteps:\n${'  - { id: a, agent: x }\n'.repeat(3)}`, 'x'.repeat(300_000)]) {
      const r = parseWorkflow(y)
      expect(r.ok).toBe(false)
      if (!r.ok) for (const e of r.errors) expect(e.line).toBeGreaterThanOrEqual(1)
    }
  })
})
