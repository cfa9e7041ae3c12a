/**
 * What a run is estimated to spend, known before its first step (issue 12 budgets, issue 13):
 * every agent call at the cheapest price that can serve it (what each call's own check holds),
 * times how often it can run. A `for_each` counts its items when the list can be computed from
 * the input at start, else its `max_items`, else one item (and says so); loops count
 * `max_iterations`, reflections every round and critique, debates every agent of every round and
 * the judge; sub-workflows their saved document. `plan:` steps are planned at run time and count 0.
 */
import type { AgentCatalog } from '../components.ts'
import { bareExpression, compileExpression, interpolate } from './cel.ts'
import { findAgent, parseWorkflow } from './parser.ts'
import type { WorkflowAgentAlias, WorkflowDocument, WorkflowLibrary, WorkflowStep } from './types.ts'

/** A run's estimate. */
export interface RunEstimate {
  /** The most the run may ask its calls to be authorized for: every step (conditional ones too), every loop iteration and round. */
  most: number
  /** The least a successful run spends: steps it cannot do without (no `when`, no `continue_on_error`, fallback `fail`), one iteration and one round, `for_each` items as known. */
  least: number
  /** Agent calls counted in `most`. */
  calls: number
  /** Steps whose count is not known at start and is counted low (a `for_each` list from another step without `max_items`, a `plan:`). */
  unbounded: string[]
}

/** Nesting followed into sub-workflows (the engine refuses deeper ones at run time). */
const MAX_DEPTH = 4

/** Estimate `doc` run with `input` as its task. */
export function estimateRun(doc: WorkflowDocument, input: unknown, catalog: AgentCatalog, workflows?: WorkflowLibrary, depth = 0): RunEstimate {
  const aliases = new Map<string, WorkflowAgentAlias>(doc.agents.map((a) => [a.name, a]))
  const priceOf = (ref: string | undefined, capabilities?: readonly string[]): number => {
    const alias = ref != null ? aliases.get(ref) : undefined
    if (alias?.capabilities == null) {
      const pinned = alias?.agent ?? ref
      if (pinned != null) return findAgent(catalog, pinned)?.price ?? 0
    }
    const cs = alias?.capabilities ?? capabilities ?? []
    if (cs.length === 0) return 0
    let min = Infinity
    for (const a of catalog.list(cs[0])) if (a.price < min && cs.every((c) => a.capabilities.includes(c))) min = a.price
    return min === Infinity ? 0 : min
  }
  const est: RunEstimate = { most: 0, least: 0, calls: 0, unbounded: [] }
  for (const s of doc.steps) {
    const once = perRun(s, priceOf, input, catalog, workflows, depth, est.unbounded)
    let items = 1
    let leastItems = 1
    if (s.for_each != null) {
      const known = listAtStart(s.for_each, input)
      if (known != null) {
        items = known
        leastItems = known
      } else if (s.max_items != null) items = s.max_items
      else est.unbounded.push(`${s.id} (for_each over a list not known at start: counted as 1 item; set max_items to bound it)`)
    }
    est.most += once.most * items
    est.calls += once.calls * items
    // A run can succeed without a conditional step, or one whose failure does not stop it.
    if (s.when == null && !s.continue_on_error && doc.execution.fallback_strategy === 'fail') est.least += once.least * leastItems
  }
  est.most = round(est.most)
  est.least = round(est.least)
  return est
}

/** One run of a step's body (one item). */
function perRun(
  s: WorkflowStep,
  priceOf: (ref: string | undefined, capabilities?: readonly string[]) => number,
  input: unknown,
  catalog: AgentCatalog,
  workflows: WorkflowLibrary | undefined,
  depth: number,
  unbounded: string[]
): { most: number; least: number; calls: number } {
  const iterations = s.loop?.max_iterations ?? 1
  let most = 0
  let least = 0
  let calls = 0
  switch (s.kind) {
    case 'agent': {
      const p = priceOf(s.agent, s.capabilities)
      if (s.reflect != null) {
        const c = priceOf(s.reflect.critic)
        const rounds = s.reflect.max_rounds
        most = p * rounds + c * (rounds - 1)
        least = p + (rounds > 1 ? c : 0)
        calls = rounds * 2 - 1
      } else {
        most = p
        least = p
        calls = 1
      }
      break
    }
    case 'debate': {
      const d = s.debate!
      for (const a of d.agents) most += priceOf(a) * d.rounds
      calls = d.agents.length * d.rounds
      if (d.decide === 'judge') {
        most += priceOf(d.judge)
        calls++
      }
      least = most
      break
    }
    case 'workflow': {
      const yaml = s.workflow != null ? workflows?.get(s.workflow) : undefined
      if (yaml == null || depth + 1 > MAX_DEPTH) break
      const parsed = parseWorkflow(yaml, { catalog, workflows })
      if (!parsed.ok) break
      let sub: unknown
      try {
        sub = s.input === undefined ? input : interpolate(s.input, { task: input })
      } catch {
        sub = undefined
      }
      const e = estimateRun(parsed.doc, sub, catalog, workflows, depth + 1)
      most = e.most
      least = e.least
      calls = e.calls
      for (const u of e.unbounded) unbounded.push(`${s.id} → ${u}`)
      break
    }
    case 'plan':
      unbounded.push(`${s.id} (plan: its sub-steps are planned at run time)`)
      break
    case 'approval':
      break
  }
  return { most: most * iterations, least, calls: calls * iterations }
}

/** How many items `for_each` gives when it reads only the input (undefined when it needs more than `task`). */
function listAtStart(expr: string, input: unknown): number | undefined {
  try {
    const list = compileExpression(bareExpression(expr).expr).evaluate({ task: input })
    return Array.isArray(list) ? list.length : undefined
  } catch {
    return undefined
  }
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6
}
