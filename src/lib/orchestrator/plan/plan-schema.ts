/**
 * The plan (vision §1): subtasks with capabilities, dependencies, an input
 * mapping and an estimated cost. The valibot schema is the single source of the
 * type; `planJsonSchema` is the same shape as JSON Schema, for constrained LLM output.
 */
import * as v from 'valibot'

const STEP_ID = /^[A-Za-z0-9_-]{1,32}$/
const KEBAB = /^[a-z0-9]+(?:-[a-z0-9]+)*$/

/** Where a step's input comes from. */
export const InputMappingSchema = v.union([
  /** The task's own input. */
  v.object({ from: v.literal('task.input') }),
  /** Another step's output, optionally a dotted path inside it (`items.0.text`). */
  v.object({
    from: v.literal('step'),
    step: v.pipe(v.string(), v.regex(STEP_ID)),
    path: v.optional(v.pipe(v.string(), v.maxLength(200)))
  }),
  /**
   * A string template: `{{task.input}}`, `{{steps.<id>.output}}` or
   * `{{steps.<id>.output.<path>}}` are replaced (objects as JSON).
   */
  v.object({ template: v.pipe(v.string(), v.maxLength(4000)) }),
  /** A literal the planner took from the description (a task submitted without input: "calculate 2*(3+4)"). */
  v.object({ value: v.pipe(v.string(), v.maxLength(64 * 1024)) })
])
/** Where a step's input comes from. */
export type InputMapping = v.InferOutput<typeof InputMappingSchema>

/** One subtask. */
export const SubtaskSchema = v.object({
  id: v.pipe(v.string(), v.regex(STEP_ID, 'a step id is 1–32 letters, digits, _ or -')),
  description: v.pipe(v.string(), v.maxLength(1000)),
  capabilities: v.pipe(v.array(v.pipe(v.string(), v.regex(KEBAB, 'capabilities are lowercase kebab-case'))), v.minLength(1), v.maxLength(8)),
  dependencies: v.pipe(v.array(v.pipe(v.string(), v.regex(STEP_ID))), v.maxLength(32)),
  input: InputMappingSchema,
  estimated_cost: v.pipe(v.number(), v.finite(), v.minValue(0))
})
/** One subtask. */
export type Subtask = v.InferOutput<typeof SubtaskSchema>

/** How steps are run: one after another, all at once, or by their dependencies. */
export const EXECUTION_MODES = ['sequential', 'parallel', 'dag'] as const
/** Which planner made a plan. */
export const PLANNERS = ['webllm', 'remote', 'deterministic', 'direct'] as const
/** Which planner made a plan. */
export type PlannerName = (typeof PLANNERS)[number]

/** What a planner (human or LLM) writes, before we stamp who made it. */
export const PlanDraftSchema = v.object({
  subtasks: v.pipe(v.array(SubtaskSchema), v.minLength(1, 'a plan needs at least one step'), v.maxLength(32)),
  execution_mode: v.picklist(EXECUTION_MODES),
  total_estimated_cost: v.pipe(v.number(), v.finite(), v.minValue(0))
})
/** A plan as a planner writes it. */
export type PlanDraft = v.InferOutput<typeof PlanDraftSchema>

/** A plan, stamped with the planner that made it. */
export const PlanSchema = v.object({
  ...PlanDraftSchema.entries,
  planner: v.picklist(PLANNERS),
  /** Why the planner fell through to this one, if it did (e.g. "WebGPU unavailable"). */
  notes: v.optional(v.array(v.pipe(v.string(), v.maxLength(500))))
})
/** A plan, stamped with the planner that made it. */
export type Plan = v.InferOutput<typeof PlanSchema>

/** The plan draft as JSON Schema, for WebLLM's `response_format.schema`. */
export const planJsonSchema = {
  type: 'object',
  properties: {
    subtasks: {
      type: 'array',
      minItems: 1,
      maxItems: 32,
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          description: { type: 'string' },
          capabilities: { type: 'array', items: { type: 'string' }, minItems: 1 },
          dependencies: { type: 'array', items: { type: 'string' } },
          input: {
            type: 'object',
            properties: {
              from: { type: 'string', enum: ['task.input', 'step'] },
              step: { type: 'string' },
              path: { type: 'string' }
            },
            required: ['from']
          },
          estimated_cost: { type: 'number' }
        },
        required: ['id', 'description', 'capabilities', 'dependencies', 'input', 'estimated_cost']
      }
    },
    execution_mode: { type: 'string', enum: [...EXECUTION_MODES] },
    total_estimated_cost: { type: 'number' }
  },
  required: ['subtasks', 'execution_mode', 'total_estimated_cost']
} as const

/** Summarize valibot issues as one short line. */
export function issuesText(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 3)
    .map((i) => {
      const path = i.path?.map((p) => String(p.key)).join('.')
      return path != null && path !== '' ? `${path}: ${i.message}` : i.message
    })
    .join('; ')
}
