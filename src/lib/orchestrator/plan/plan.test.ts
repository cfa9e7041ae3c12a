import { describe, expect, it } from 'vitest'
import { validatePlan } from './validate-plan.ts'
import { deterministicPlan } from './deterministic-planner.ts'
import { capabilityCatalog } from './planner.ts'
import { PlanValidationError, PlanningError } from '../errors.ts'
import { agent, catalogOf } from '../test-fixtures.ts'
import type { Plan } from './plan-schema.ts'

const BUNDLED = [
  'text-summarization',
  'keyword-extraction',
  'sentiment-analysis',
  'text-statistics',
  'hashing',
  'markdown-to-html',
  'math-evaluation',
  'data-transform',
  'text-extraction',
  'list-processing'
]
const catalog = catalogOf(BUNDLED.map((c, i) => agent(c.split('-')[0], [c], 0.1 + i / 100)))
const info = capabilityCatalog(catalog)

const step = (id: string, deps: string[], cap = 'hashing', cost = 0.1) => ({
  id,
  description: id,
  capabilities: [cap],
  dependencies: deps,
  input: deps.length > 0 ? { from: 'step' as const, step: deps[0] } : { from: 'task.input' as const },
  estimated_cost: cost
})
const plan = (subtasks: ReturnType<typeof step>[]): Plan => ({ subtasks, execution_mode: 'dag', total_estimated_cost: 0, planner: 'deterministic' })

describe('validatePlan', () => {
  it('names the cycle', () => {
    const p = plan([step('a', ['c']), step('b', ['a']), step('c', ['b']), step('d', [])])
    expect(() => validatePlan(p, catalog)).toThrow(PlanValidationError)
    expect(() => validatePlan(p, catalog)).toThrow(/cycle: (a → c → b → a|a → b → c → a|b → a → c → b|c → b → a → c)/)
  })

  it('names the step and the capability nobody offers', () => {
    const p = plan([step('s1', []), step('s2', ['s1'], 'image-resize')])
    expect(() => validatePlan(p, catalog)).toThrow('Step "s2" needs capability image-resize, which no agent offers: publish one or remove the step')
  })

  it('names the step that breaks max_cost, in run order, and recomputes the total', () => {
    const p = plan([step('late', ['early'], 'hashing', 0.3), step('early', [], 'hashing', 0.25)])
    expect(() => validatePlan(p, catalog, { max_cost: 0.5 })).toThrow(/Step "late" brings the estimated cost to 0.55 credits, over max_cost 0.5/)
    const ok = validatePlan({ ...p, total_estimated_cost: 99 }, catalog, { max_cost: 0.6 })
    expect(ok.total_estimated_cost).toBe(0.55)
    expect(ok.subtasks.map((s) => s.id)).toEqual(['early', 'late'])
  })

  it('rejects an input taken from a step it does not depend on, and unknown dependencies', () => {
    const bad = plan([step('a', []), { ...step('b', []), input: { from: 'step', step: 'a' } }])
    expect(() => validatePlan(bad, catalog)).toThrow(/does not depend on it/)
    expect(() => validatePlan(plan([step('a', ['zz'])]), catalog)).toThrow(/depends on "zz", which is not in the plan/)
    expect(() => validatePlan({ subtasks: [] }, catalog)).toThrow(/expected shape/)
  })
})

describe('deterministic planner', () => {
  it('runs "and" in parallel over the task input', () => {
    const p = deterministicPlan({ description: 'Summarize this article and extract the keywords' }, info)
    expect(p.subtasks.map((s) => s.capabilities[0])).toEqual(['text-summarization', 'keyword-extraction'])
    expect(p.subtasks.every((s) => s.dependencies.length === 0 && 'from' in s.input && s.input.from === 'task.input')).toBe(true)
    expect(p.execution_mode).toBe('parallel')
  })

  it('chains "then" sequentially, feeding the summary text onward', () => {
    const p = deterministicPlan({ description: 'Summarise the report, then analyse the sentiment of the summary, and then hash it with SHA-256' }, info)
    expect(p.subtasks.map((s) => [s.id, s.capabilities[0], s.dependencies])).toEqual([
      ['s1', 'text-summarization', []],
      ['s2', 'sentiment-analysis', ['s1']],
      ['s3', 'hashing', ['s2']]
    ])
    expect(p.subtasks[1].input).toEqual({ from: 'step', step: 's1', path: 'summary' })
    expect(p.execution_mode).toBe('sequential')
    expect(p.total_estimated_cost).toBeCloseTo(0.1 + 0.12 + 0.14)
    expect(() => validatePlan({ ...p, planner: 'deterministic' }, catalog)).not.toThrow()
  })

  it('joins parallel results into a template for the next stage', () => {
    const p = deterministicPlan({ description: 'Extract all emails and urls, and also count the words. Then sort and dedupe the list' }, info)
    const caps = p.subtasks.map((s) => s.capabilities[0])
    expect(caps).toEqual(['text-extraction', 'text-statistics', 'list-processing'])
    expect(p.subtasks[2].dependencies).toEqual(['s1', 's2'])
    expect(p.subtasks[2].input).toEqual({ template: '{{steps.s1.output}}\n\n{{steps.s2.output}}' })
    expect(p.execution_mode).toBe('dag')
  })

  it('maps calculations, markdown, CSV and requested capabilities', () => {
    expect(deterministicPlan({ description: 'Calculate 2*(3+4)' }, info).subtasks[0].capabilities).toEqual(['math-evaluation'])
    expect(deterministicPlan({ description: 'Render my notes (markdown) to HTML' }, info).subtasks[0].capabilities).toEqual(['markdown-to-html'])
    expect(deterministicPlan({ description: 'Turn this CSV into JSON' }, info).subtasks[0].capabilities).toEqual(['data-transform'])
    const p = deterministicPlan({ description: 'Look at this', capabilities: ['hashing', 'text-statistics'] }, info)
    expect(p.subtasks.map((s) => s.capabilities[0])).toEqual(['hashing', 'text-statistics'])
  })

  it('fails with a sentence when nothing maps, and notes capabilities nobody offers', () => {
    expect(() => deterministicPlan({ description: 'Paint me a picture' }, info)).toThrow(PlanningError)
    const small = capabilityCatalog(catalogOf([agent('h', ['hashing'], 0.1)]))
    const p = deterministicPlan({ description: 'Summarize it then hash it' }, small)
    expect(p.subtasks.map((s) => s.capabilities[0])).toEqual(['hashing'])
    expect(p.notes.join()).toMatch(/text-summarization, which no agent offers/)
  })
})
