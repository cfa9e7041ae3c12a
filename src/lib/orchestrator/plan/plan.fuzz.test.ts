/**
 * Property-based fuzzing of plans (issue 11, beyond the list): a plan comes from an LLM or
 * a remote planner peer, so validatePlan sees anything. It returns a runnable plan (every
 * dependency earlier in the order, capabilities offered, cost within max_cost) or throws
 * PlanValidationError, never anything else.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PlanValidationError } from '../errors.ts'
import { agent, catalogOf } from '../test-fixtures.ts'
import { validatePlan } from './validate-plan.ts'

const catalog = catalogOf([agent('wc', ['word-count'], 1), agent('sum', ['summarize'], 2), agent('hash', ['hashing'], 0.5)])
const stepId = fc.constantFrom('s1', 's2', 's3', 's4', 'x', '')
const input = fc.oneof(
  fc.constant({ from: 'task.input' }),
  fc.record({ from: fc.constant('step'), step: stepId, path: fc.string({ maxLength: 20 }) }, { requiredKeys: ['from', 'step'] }),
  fc.record({
    template: fc.oneof(
      fc.string({ maxLength: 40 }),
      stepId.map((s) => `{{ steps.${s}.output }}`)
    )
  }),
  fc.record({ value: fc.string({ maxLength: 40 }) }),
  fc.jsonValue({ maxDepth: 2 })
)
const subtask = fc.record(
  {
    id: stepId,
    description: fc.string({ maxLength: 30 }),
    capabilities: fc.array(fc.constantFrom('word-count', 'summarize', 'hashing', 'flying', 'Bad Cap'), { maxLength: 3 }),
    dependencies: fc.array(stepId, { maxLength: 3 }),
    input,
    estimated_cost: fc.oneof(fc.double({ min: 0, max: 5, noNaN: true }), fc.double(), fc.integer())
  },
  { requiredKeys: ['id', 'capabilities', 'dependencies', 'input'] }
)
const planish = fc.oneof(
  fc.record(
    {
      subtasks: fc.array(subtask, { maxLength: 5 }),
      execution_mode: fc.constantFrom('sequential', 'parallel', 'dag', 'chaos'),
      total_estimated_cost: fc.oneof(fc.nat(), fc.double()),
      planner: fc.constantFrom('deterministic', 'remote', 'webllm', 'direct', 'x'),
      reasoning: fc.string({ maxLength: 50 })
    },
    { requiredKeys: ['subtasks', 'execution_mode'] }
  ),
  fc.anything()
)

describe('plans under fuzzing', () => {
  it('validatePlan: a runnable plan or PlanValidationError, whatever a planner sends', () => {
    fc.assert(
      fc.property(planish, fc.option(fc.double({ min: 0, max: 10, noNaN: true }), { nil: undefined }), (plan, maxCost) => {
        let ok: ReturnType<typeof validatePlan>
        try {
          ok = validatePlan(plan, catalog, { max_cost: maxCost })
        } catch (err) {
          if (!(err instanceof PlanValidationError)) throw new Error(`untyped ${(err as Error)?.name}: ${(err as Error)?.message}`)
          return
        }
        const seen = new Set<string>()
        for (const s of ok.subtasks) {
          for (const d of s.dependencies) expect(seen.has(d)).toBe(true)
          for (const c of s.capabilities) expect(catalog.list(c).length).toBeGreaterThan(0)
          seen.add(s.id)
        }
        if (maxCost !== undefined) expect(ok.total_estimated_cost).toBeLessThanOrEqual(maxCost + 1e-6)
      }),
      { numRuns: 1000 }
    )
  })
})
