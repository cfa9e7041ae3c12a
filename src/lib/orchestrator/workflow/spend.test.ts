// biome-ignore-all lint/suspicious/noTemplateCurlyInString: workflow documents hold ${} templates
/**
 * A workflow is refused as a whole, before its first step, when its estimate passes the spending
 * limits (the profile's allowance, its daily budget, the document's max_cost): before, each call
 * was checked alone as it came, so earlier steps ran (and were paid) before a later one was refused.
 */
import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from '../dispatch/index.ts'
import { orchestratorService } from '../index.ts'
import { agent, catalogOf, fnExecutor } from '../test-fixtures.ts'
import { CreditLimitError, DailyBudgetExceededError, SpendingGuard, type SpendLimits } from '../trust/index.ts'
import { createWorkflowEngine } from './engine.ts'
import { WorkflowExpressionError, WorkflowValidationError } from './errors.ts'
import { MemoryWorkflowJournal } from './memory-journal.ts'
import { parseWorkflow } from './parser.ts'
import { estimateRun } from './spend.ts'
import type { WorkflowLibrary } from './types.ts'

const upper = agent('upper', ['text-summarization'], 0.1)
const hasher = agent('hasher', ['hashing'], 0.02)
const hasherPro = agent('hasher-pro', ['hashing'], 0.05)
const critic = agent('critic', ['critique'], 0.01)
const catalog = catalogOf([upper, hasher, hasherPro, critic])

async function setup(limits: Partial<SpendLimits>, workflows?: WorkflowLibrary) {
  const net = new MemoryTaskNetwork()
  const executor = fnExecutor(
    {
      [upper.id]: (i) => ({ summary: String(i).toUpperCase(), parts: String(i).split(' ') }),
      [hasher.id]: (i) => `h(${JSON.stringify(i)})`,
      [hasherPro.id]: (i) => `H(${JSON.stringify(i)})`,
      [critic.id]: () => ({ ok: true })
    },
    8
  )
  // Nothing earned: the allowance is all this profile may spend (the guard the app gives the orchestrator).
  const spending = new SpendingGuard({ self: 'me', credits: () => ({ balance: 0, receipts: [] }), limits })
  const orch = orchestratorService({ dispatcher: { offerTimeoutMs: 300 } })({
    catalog,
    peers: { peers: () => [] },
    transport: net.transport('me'),
    executor,
    spending
  })
  await orch.start()
  const engine = createWorkflowEngine({ catalog, runPlan: orch.runPlan, planTask: orch.planTask, workflows, authorizeSpend: orch.authorizeSpend })
  return { executor, orch, engine, spending }
}

function parse(yaml: string, workflows?: WorkflowLibrary) {
  const r = parseWorkflow(yaml, { catalog, workflows })
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.line}:${e.column} ${e.message}`).join('\n'))
  return r
}

// One summary (0.1), then one hash per input item (0.02 each): 24 items estimate 0.58 credits.
const MAP = `name: many-hashes
steps:
  - { id: first, agent: upper, input: "\${task[0]}" }
  - id: each
    for_each: task
    agent: hasher
    input: \${item}
    max_parallel: 4
`
const items = (n: number): string[] => Array.from({ length: n }, (_, i) => `item ${i}`)
let n = 0
const rid = (): string => `t-spendrun${String(++n).padStart(4, '0')}`

describe('workflow runs against the spending limits', () => {
  it('over the allowance: refused with CreditLimitError naming the figures, before any step, nothing journalled', async () => {
    const s = await setup({ allowance: 0.5 })
    const { doc, hash } = parse(MAP)
    const journal = new MemoryWorkflowJournal()
    const err = await s.engine.start(doc, items(24), { runId: rid(), journal, hash }).done.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CreditLimitError)
    // The limit and the figures: 1 summary + 24 hashes = 0.58 credits; the allowance 0.5.
    expect((err as Error).message).toMatch(/The workflow "many-hashes" \(25 agent calls\) is estimated at 0\.58 credits/)
    expect((err as Error).message).toMatch(/allowance 0\.5/)
    // Nothing ran, nothing journalled as run or spent, nothing held.
    expect(s.executor.runs).toBe(0)
    expect(journal.events()).toEqual([])
    expect(s.engine.stats()).toMatchObject({ runsRefused: 1, runsStarted: 0, unitsDispatched: 0 })
    expect(s.spending.state().reserved).toBe(0)
    // Fewer items fit: the same document runs to the end (the check holds nothing: each call still holds its own).
    const r = await s.engine.start(doc, items(10), { runId: rid(), journal: new MemoryWorkflowJournal(), hash }).done
    expect(r.status).toBe('succeeded')
    expect(s.executor.runs).toBe(11)
    expect(s.spending.state().reserved).toBe(0)
    await s.orch.stop()
  })

  it("over today's budget: refused with DailyBudgetExceededError before any step", async () => {
    const s = await setup({ allowance: 100, dailyBudget: 0.3 })
    const { doc } = parse(MAP)
    const journal = new MemoryWorkflowJournal()
    const err = await s.engine.start(doc, items(24), { runId: rid(), journal }).done.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DailyBudgetExceededError)
    expect((err as Error).message).toMatch(/estimated at 0\.58 credits.*today's budget of 0\.3/)
    expect(s.executor.runs).toBe(0)
    expect(journal.events()).toEqual([])
    await s.orch.stop()
  })

  it('over max_cost with the items known at start: refused at max_cost’s line, nothing journalled', async () => {
    const s = await setup({ allowance: 100 })
    const { doc } = parse(`${MAP}execution:\n  max_cost: 0.3\n`)
    const journal = new MemoryWorkflowJournal()
    const err = await s.engine.start(doc, items(24), { runId: rid(), journal }).done.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(WorkflowValidationError)
    expect((err as WorkflowValidationError).errors[0]).toMatchObject({ kind: 'over-budget', line: 10, column: 13 })
    expect((err as Error).message).toMatch(/at least 0\.58 credits.*above max_cost 0\.3/)
    expect(s.executor.runs).toBe(0)
    expect(journal.events()).toEqual([])
    // Ten items fit under max_cost.
    expect((await s.engine.start(doc, items(10), { runId: rid(), journal: new MemoryWorkflowJournal() }).done).status).toBe('succeeded')
    await s.orch.stop()
  })

  it('a list known only at run time counts max_items, and max_items bounds it when it runs', async () => {
    const fromStep = `name: split-then-hash
steps:
  - { id: split, agent: upper, input: "\${task}" }
  - id: each
    for_each: split.parts
    agent: hasher
    input: \${item}
`
    // Without max_items the list counts one item, and the estimate says so.
    const low = estimateRun(parse(fromStep).doc, 'a b c', catalog)
    expect(low).toMatchObject({ most: 0.12, calls: 2 })
    expect(low.unbounded[0]).toMatch(/each \(for_each over a list not known at start/)
    const bounded = parse(fromStep.replace('input: ${item}', 'input: ${item}\n    max_items: 30'))
    expect(estimateRun(bounded.doc, 'a b c', catalog)).toMatchObject({ most: 0.7, calls: 31, unbounded: [] })
    const s = await setup({ allowance: 0.5 })
    const journal = new MemoryWorkflowJournal()
    await expect(s.engine.start(bounded.doc, 'a b c', { runId: rid(), journal }).done).rejects.toBeInstanceOf(CreditLimitError)
    expect(journal.events()).toEqual([])
    // Within the allowance, a list longer than max_items fails its step.
    const tight = parse(fromStep.replace('input: ${item}', 'input: ${item}\n    max_items: 2'))
    const e2 = await s.engine.start(tight.doc, 'a b c', { runId: rid(), journal: new MemoryWorkflowJournal() }).done.catch((e: unknown) => e)
    expect(e2).toBeInstanceOf(WorkflowExpressionError)
    expect((e2 as Error).message).toMatch(/gave 3 items, more than its max_items 2/)
    await s.orch.stop()
  })

  it('counts conditional steps, loops, reflection rounds, debates and sub-workflows at their most', () => {
    const sub = 'name: sub\nsteps:\n  - { id: h, agent: hasher, input: x }\n  - { id: u, agent: upper, input: y }\n'
    const workflows: WorkflowLibrary = { get: (name) => (name === 'sub' ? sub : undefined) }
    const { doc } = parse(
      `name: all
steps:
  - { id: maybe, agent: upper, when: "task == 'go'", input: x }
  - { id: again, agent: hasher, input: x, loop: { until: "true", max_iterations: 5 } }
  - { id: better, agent: hasher, input: x, reflect: { critic: critic, max_rounds: 3 } }
  - { id: vote, debate: { agents: [hasher, hasher-pro], rounds: 2 } }
  - { id: nested, workflow: sub }
`,
      workflows
    )
    const e = estimateRun(doc, 'go', catalog, workflows)
    // upper 0.1 + 5 x 0.02 + (3 x 0.02 + 2 x 0.01) + 2 x (0.02 + 0.05) + (0.02 + 0.1)
    expect(e.most).toBeCloseTo(0.1 + 0.1 + 0.08 + 0.14 + 0.12, 6)
    expect(e.calls).toBe(1 + 5 + 5 + 4 + 2)
    // The least leaves out the conditional step and counts one iteration and one critique.
    expect(e.least).toBeCloseTo(0.02 + 0.03 + 0.14 + 0.12, 6)
  })
})
