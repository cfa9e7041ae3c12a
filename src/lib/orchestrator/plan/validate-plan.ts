/** Checks that a plan can run: shape, acyclic, every capability offered, within budget. */
import * as v from 'valibot'
import type { AgentCatalog } from '../components.ts'
import { PlanValidationError } from '../errors.ts'
import { PlanSchema, issuesText, type Plan } from './plan-schema.ts'

/** Preferences the validation needs (a subset of RoutingPreferences). */
export interface PlanLimits {
  max_cost?: number
  /**
   * Results each step is expected to pay for (issue 12: verification replicas are paid
   * from max_cost too). 1 (the default) without verification; 2 when every step from a
   * donor not yet trusted is checked by one other user.
   */
  resultsPerStep?: number
}

/**
 * Validate a plan against its schema, the catalog and the budget. Returns the
 * plan with `total_estimated_cost` recomputed from its steps and steps in a
 * runnable (topological) order. Throws `PlanValidationError` with a sentence
 * naming the cycle, the step and capability nobody offers, or the step that
 * breaks `max_cost`.
 */
export function validatePlan(plan: unknown, catalog: AgentCatalog, prefs: PlanLimits = {}): Plan {
  const res = v.safeParse(PlanSchema, plan)
  if (!res.success) throw new PlanValidationError(`The plan does not have the expected shape: ${issuesText(res.issues)}`)
  const p = res.output
  const byId = new Map<string, Plan['subtasks'][number]>()
  for (const s of p.subtasks) {
    if (byId.has(s.id)) throw new PlanValidationError(`The plan has two steps with id "${s.id}": give each step its own id`)
    byId.set(s.id, s)
  }
  for (const s of p.subtasks) {
    for (const d of s.dependencies) {
      if (!byId.has(d)) throw new PlanValidationError(`Step "${s.id}" depends on "${d}", which is not in the plan`)
      if (d === s.id) throw new PlanValidationError(`Step "${s.id}" depends on itself: remove the self-dependency`)
    }
    if ('from' in s.input && s.input.from === 'step') {
      if (!byId.has(s.input.step)) throw new PlanValidationError(`Step "${s.id}" takes its input from "${s.input.step}", which is not in the plan`)
      if (!s.dependencies.includes(s.input.step))
        throw new PlanValidationError(`Step "${s.id}" takes its input from "${s.input.step}" but does not depend on it: add it to its dependencies`)
    }
    if ('template' in s.input) {
      for (const m of s.input.template.matchAll(/\{\{\s*steps\.([A-Za-z0-9_-]+)\./g)) {
        if (!s.dependencies.includes(m[1]))
          throw new PlanValidationError(`Step "${s.id}"'s template uses step "${m[1]}" but does not depend on it: add it to its dependencies`)
      }
    }
  }
  const order = topologicalOrder(p.subtasks)
  for (const s of p.subtasks) {
    for (const c of s.capabilities) {
      if (catalog.list(c).length === 0)
        throw new PlanValidationError(`Step "${s.id}" needs capability ${c}, which no agent offers: publish one or remove the step`)
    }
  }
  const per = Math.max(1, prefs.resultsPerStep ?? 1)
  let total = 0
  for (const id of order) {
    const s = byId.get(id)!
    total += s.estimated_cost * per
    if (prefs.max_cost !== undefined && total > prefs.max_cost + 1e-9) {
      throw new PlanValidationError(
        per > 1
          ? `Step "${s.id}" brings the estimated cost to ${round(total)} credits with verification (each step paid ${per} times: its result and a check by another user), over max_cost ${prefs.max_cost}: raise max_cost, drop steps, or set preferences.verification to 'none'`
          : `Step "${s.id}" brings the estimated cost to ${round(total)} credits, over max_cost ${prefs.max_cost}: raise max_cost or drop steps`
      )
    }
  }
  return { ...p, total_estimated_cost: round(total), subtasks: order.map((id) => byId.get(id)!) }
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6
}

/** Kahn's order; on a cycle, throws naming it (`a → b → a`). */
export function topologicalOrder(steps: ReadonlyArray<{ id: string; dependencies: readonly string[] }>): string[] {
  const indeg = new Map<string, number>()
  const dependants = new Map<string, string[]>()
  for (const s of steps) {
    indeg.set(s.id, s.dependencies.length)
    dependants.set(s.id, [])
  }
  for (const s of steps) for (const d of s.dependencies) dependants.get(d)?.push(s.id)
  const queue = steps.filter((s) => s.dependencies.length === 0).map((s) => s.id)
  const out: string[] = []
  while (queue.length > 0) {
    const id = queue.shift()!
    out.push(id)
    for (const n of dependants.get(id) ?? []) {
      const left = indeg.get(n)! - 1
      indeg.set(n, left)
      if (left === 0) queue.push(n)
    }
  }
  if (out.length === steps.length) return out
  throw new PlanValidationError(`The plan has a cycle: ${findCycle(steps).join(' → ')}; a step cannot wait for itself`)
}

function findCycle(steps: ReadonlyArray<{ id: string; dependencies: readonly string[] }>): string[] {
  const deps = new Map(steps.map((s) => [s.id, s.dependencies]))
  const state = new Map<string, 1 | 2>()
  const stack: string[] = []
  const visit = (id: string): string[] | undefined => {
    state.set(id, 1)
    stack.push(id)
    for (const d of deps.get(id) ?? []) {
      if (state.get(d) === 1) return [...stack.slice(stack.indexOf(d)), d]
      if (state.get(d) === undefined) {
        const c = visit(d)
        if (c != null) return c
      }
    }
    stack.pop()
    state.set(id, 2)
    return undefined
  }
  for (const s of steps) {
    if (state.get(s.id) === undefined) {
      const c = visit(s.id)
      if (c != null) return c.reverse()
    }
  }
  return []
}
