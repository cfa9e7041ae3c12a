// biome-ignore-all lint/suspicious/noTemplateCurlyInString: workflow documents hold ${} templates
import { describe, expect, it } from 'vitest'
import { BudgetExceededError, MemoryTaskNetwork, type TaskMessage } from '../dispatch/index.ts'
import { donorService } from '../donor/index.ts'
import { StepFailedError, TaskCancelledError } from '../errors.ts'
import { orchestratorService } from '../index.ts'
import { agent, catalogOf, delay, fnExecutor, peer } from '../test-fixtures.ts'
import { createWorkflowEngine } from './engine.ts'
import { ApprovalRejectedError, LoopLimitError, WorkflowExpressionError, WorkflowInputError, WorkflowTimeoutError, WorkflowValidationError } from './errors.ts'
import { MemoryWorkflowJournal } from './memory-journal.ts'
import { parseWorkflow } from './parser.ts'
import type { WorkflowDocument, WorkflowEvent, WorkflowLibrary } from './types.ts'

const upper = agent('upper', ['text-summarization'], 0.1)
const counter = agent('counter', ['text-statistics'], 0.05)
const hasher = agent('hasher', ['hashing'], 0.02)
const flaky = agent('flaky', ['flaky-thing'], 0.01)
const broken = agent('broken', ['broken-thing'], 0.01)
const inc = agent('inc', ['increment'], 0.01)
const refiner = agent('refiner', ['refine'], 0.01)
const critic = agent('critic', ['critique'], 0.01)
const voteA = agent('vote-a', ['vote'], 0.01)
const voteB = agent('vote-b', ['vote'], 0.01)
const voteC = agent('vote-c', ['vote'], 0.01)
const judge = agent('judge', ['judging'], 0.01)
const gate = agent('gate', ['gated'], 0.01)
const someGate = agent('some-gate', ['gated-some'], 0.01)
const catalog = catalogOf([upper, counter, hasher, flaky, broken, inc, refiner, critic, voteA, voteB, voteC, judge, gate, someGate])

/** The agents as plain functions; `calls` counts runs per agent name; `gates` hold gated runs until opened. */
function agents() {
  const calls = new Map<string, number>()
  const seen = new Map<string, unknown[]>()
  let open: () => void = () => {}
  let opened = new Promise<void>((r) => {
    open = r
  })
  const flakyInputs = new Set<string>()
  const track = (name: string, input: unknown): void => {
    calls.set(name, (calls.get(name) ?? 0) + 1)
    seen.set(name, [...(seen.get(name) ?? []), input])
  }
  const fns: Record<string, (input: unknown, signal: AbortSignal) => unknown> = {
    [upper.id]: async (i) => {
      track('upper', i)
      // Later items finish first: outputs must still come back in item order.
      if (typeof i === 'string' && /^item\d$/.test(i)) await delay(30 - Number(i.slice(4)) * 8)
      return { summary: String(i).toUpperCase() }
    },
    [counter.id]: (i) => {
      track('counter', i)
      return { words: String(i).split(/\s+/).filter(Boolean).length }
    },
    [hasher.id]: (i) => {
      track('hasher', i)
      return `h(${JSON.stringify(i)})`
    },
    [flaky.id]: (i) => {
      track('flaky', i)
      const k = JSON.stringify(i)
      if (!flakyInputs.has(k)) {
        flakyInputs.add(k)
        throw new Error('injected fault: first attempt fails')
      }
      return 'ok after retry'
    },
    [broken.id]: (i) => {
      track('broken', i)
      throw new Error('injected fault: always fails')
    },
    [inc.id]: (i) => {
      track('inc', i)
      return Number(i) + 1
    },
    [refiner.id]: (i) => {
      track('refiner', i)
      return `${String(i)}!`
    },
    [critic.id]: (i) => {
      track('critic', i)
      const { output } = i as { output: string }
      return { ok: output.endsWith('!!!'), note: `${output.length} chars` }
    },
    [voteA.id]: (i) => {
      track('vote-a', i)
      return 'yes'
    },
    [voteB.id]: (i) => {
      track('vote-b', i)
      // Persuaded in later rounds by the proposals it is shown.
      return typeof i === 'object' && i != null && 'proposals' in i ? 'yes' : 'no'
    },
    [voteC.id]: (i) => {
      track('vote-c', i)
      return 'no'
    },
    [judge.id]: (i) => {
      track('judge', i)
      const { proposals } = i as { proposals: Array<{ agent: string; output: string }> }
      return `judged: ${proposals.map((p) => `${p.agent}=${p.output}`).join(', ')}`
    },
    [someGate.id]: async (i, signal) => {
      track('some-gate', i)
      if (i !== 'slow') return `done(${String(i)})`
      await Promise.race([
        opened,
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => {
            reject(new Error('aborted'))
          })
        })
      ])
      return 'done(slow)'
    },
    [gate.id]: async (i, signal) => {
      track('gate', i)
      await Promise.race([
        opened,
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => {
            reject(new Error('aborted'))
          })
        })
      ])
      return `gated(${String(i)})`
    }
  }
  return {
    fns,
    calls: (name: string) => calls.get(name) ?? 0,
    seen: (name: string) => seen.get(name) ?? [],
    open: () => {
      open()
    },
    close: () => {
      opened = new Promise<void>((r) => {
        open = r
      })
    }
  }
}

/**
 * An engine over an orchestrator that runs its steps on this peer, or with `donor` on a donor peer of
 * another user (a step run here pays no one, so what costs credits is tested on a donor).
 */
async function setup(opts: { workflows?: WorkflowLibrary; workers?: number; donor?: boolean } = {}) {
  const a = agents()
  const net = new MemoryTaskNetwork()
  const executor = fnExecutor(a.fns, opts.workers ?? 8)
  if (opts.donor === true) {
    const t = net.transport('donor')
    await t.start()
    await donorService({ leaseMs: 500 })({ transport: t, executor }).start()
  }
  const orch = orchestratorService({ dispatcher: { offerTimeoutMs: 300 } })(
    opts.donor === true
      ? { catalog, peers: { peers: () => [peer('donor', { freeWorkers: opts.workers ?? 8 })] }, transport: net.transport('me') }
      : { catalog, peers: { peers: () => [] }, transport: net.transport('me'), executor }
  )
  await orch.start()
  const engine = createWorkflowEngine({ catalog, runPlan: orch.runPlan, planTask: orch.planTask, workflows: opts.workflows })
  return { ...a, executor, orch, engine, net }
}

function parse(yaml: string, workflows?: WorkflowLibrary): { doc: WorkflowDocument; hash: string } {
  const r = parseWorkflow(yaml, { catalog, workflows })
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.line}:${e.column} ${e.message}`).join('\n'))
  return r
}

const fast = { retry_policy: { max_attempts: 3, backoff_ms: 1, backoff_multiplier: 1 } }
let n = 0
const rid = (): string => `t-testrun${String(++n).padStart(4, '0')}`

/** Resolve once the journal holds an event matching `pred`. */
function waitFor(
  journal: MemoryWorkflowJournal,
  run: { subscribe(l: (e: WorkflowEvent) => void): () => void },
  pred: (e: WorkflowEvent) => boolean
): Promise<WorkflowEvent> {
  const hit = journal.events().find(pred)
  if (hit != null) return Promise.resolve(hit)
  return new Promise((resolve) => {
    const off = run.subscribe((e) => {
      if (pred(e)) {
        off()
        resolve(e)
      }
    })
  })
}

describe('workflow engine: the eight patterns', () => {
  it('1. sequential: steps run one at a time in listed order, outputs flowing through ${}', async () => {
    const s = await setup({ donor: true })
    const { doc, hash } = parse(`name: seq
execution: { mode: sequential }
steps:
  - id: shout
    agent: upper
    input: \${task.text}
  - id: other
    agent: hasher
    input: fixed
  - id: count
    agent: counter
    input: \${shout.summary}
`)
    const journal = new MemoryWorkflowJournal()
    const run = s.engine.start(doc, { text: 'hello big mesh' }, { runId: rid(), journal, hash, preferences: fast })
    const r = await run.done
    expect(r.output).toEqual({ words: 3 })
    expect(s.seen('counter')).toEqual(['HELLO BIG MESH'])
    expect(s.executor.maxRunning).toBe(1)
    const order = journal.events().flatMap((e) => (e.type === 'step-started' ? [e.stepId] : []))
    expect(order).toEqual(['shout', 'other', 'count'])
    expect(r.cost).toBeCloseTo(0.17)
    expect(run.status).toBe('succeeded')
    expect(journal.events().filter((e) => e.type === 'run-finished')).toHaveLength(1)
  })

  it('2. parallel + merge: independent steps run at once; the step reading both is the fan-in', async () => {
    const s = await setup()
    const { doc } = parse(`name: par
steps:
  - { id: a, agent: gate, input: one }
  - { id: b, agent: gate, input: two }
  - id: merge
    agent: hasher
    input: { first: "\${a}", second: "\${b}" }
`)
    const journal = new MemoryWorkflowJournal()
    const run = s.engine.start(doc, null, { runId: rid(), journal, preferences: fast })
    await waitFor(journal, run, (e) => e.type === 'step-started' && e.stepId === 'b')
    await waitFor(journal, run, (e) => e.type === 'step-started' && e.stepId === 'a')
    expect(s.calls('hasher')).toBe(0)
    s.open()
    const r = await run.done
    expect(s.executor.maxRunning).toBe(2)
    expect(s.seen('hasher')).toEqual([{ first: 'gated(one)', second: 'gated(two)' }])
    expect(r.output).toBe('h({"first":"gated(one)","second":"gated(two)"})')
  })

  it('3. conditional: A fails with continue_on_error, so C runs and B is skipped', async () => {
    const s = await setup()
    const { doc } = parse(`name: cond
steps:
  - { id: a, agent: broken, continue_on_error: true }
  - id: b
    agent: upper
    when: steps.a.status == 'succeeded'
    input: fine
  - id: c
    agent: upper
    when: steps.a.status == 'failed'
    input: fallback
`)
    const journal = new MemoryWorkflowJournal()
    const r = await s.engine.start(doc, 'x', { runId: rid(), journal, preferences: fast }).done
    expect(r.output).toEqual({ summary: 'FALLBACK' })
    expect(s.seen('upper')).toEqual(['fallback'])
    expect(s.calls('broken')).toBe(3) // retried by the retry policy before giving up
    expect(r.steps.map((x) => [x.id, x.status])).toEqual([
      ['a', 'failed'],
      ['c', 'succeeded']
    ])
    expect(journal.events().find((e) => e.type === 'step-skipped')).toMatchObject({ stepId: 'b', step: true })
  })

  it('3b. a failing step without continue_on_error fails the run (fallback fail); degraded keeps going with null', async () => {
    const s = await setup()
    const yaml = (strategy: string) => `name: f
execution: { fallback_strategy: ${strategy} }
steps:
  - { id: a, agent: broken }
  - { id: b, agent: hasher, input: "\${a}" }
`
    await expect(
      s.engine.start(parse(yaml('fail')).doc, 'x', { runId: rid(), journal: new MemoryWorkflowJournal(), preferences: fast }).done
    ).rejects.toBeInstanceOf(StepFailedError)
    expect(s.calls('hasher')).toBe(0)
    const r = await s.engine.start(parse(yaml('degraded')).doc, 'x', { runId: rid(), journal: new MemoryWorkflowJournal(), preferences: fast }).done
    expect(r.output).toBe('h(null)')
    const skip = await s.engine.start(parse(yaml('skip')).doc, 'x', { runId: rid(), journal: new MemoryWorkflowJournal(), preferences: fast }).done
    expect(skip.output).toBeNull()
    expect(s.calls('hasher')).toBe(1)
  })

  it('4. loop: runs until `until` holds, binding loop.index and loop.previous; max_iterations fails or accepts', async () => {
    const s = await setup()
    const yaml = (max: number, onMax = 'fail') => `name: loop
steps:
  - id: grow
    agent: inc
    output: counter
    input: "\${loop.previous == null ? 0 : loop.previous}"
    loop: { until: counter >= 3, max_iterations: ${max}, on_max: ${onMax} }
`
    const journal = new MemoryWorkflowJournal()
    const r = await s.engine.start(parse(yaml(5)).doc, null, { runId: rid(), journal, preferences: fast }).done
    expect(r.output).toBe(3)
    expect(s.seen('inc')).toEqual([0, 1, 2])
    expect(r.steps.map((x) => x.id)).toEqual(['grow.l0', 'grow.l1', 'grow.l2'])
    await expect(
      s.engine.start(parse(yaml(2)).doc, null, { runId: rid(), journal: new MemoryWorkflowJournal(), preferences: fast }).done
    ).rejects.toBeInstanceOf(LoopLimitError)
    const accepted = await s.engine.start(parse(yaml(2, 'accept')).doc, null, { runId: rid(), journal: new MemoryWorkflowJournal(), preferences: fast }).done
    expect(accepted.output).toBe(2)
  })

  it('5. map-reduce: one run per item, at most max_parallel at once, outputs in item order, then the reduce', async () => {
    const s = await setup()
    const { doc } = parse(`name: mr
steps:
  - id: shout
    agent: upper
    for_each: task.items
    max_parallel: 2
    input: \${item}
  - id: total
    agent: counter
    input: '\${shout.map(x, x.summary).join(" ")}'
`)
    const r = await s.engine.start(
      doc,
      { items: ['item0', 'item1', 'item2', 'item3'] },
      { runId: rid(), journal: new MemoryWorkflowJournal(), preferences: fast }
    ).done
    expect(s.executor.maxRunning).toBe(2)
    expect(s.seen('counter')).toEqual(['ITEM0 ITEM1 ITEM2 ITEM3'])
    expect(r.output).toEqual({ words: 4 })
    expect(
      r.steps
        .slice(0, 4)
        .map((x) => x.id)
        .sort()
    ).toEqual(['shout.0', 'shout.1', 'shout.2', 'shout.3'])
  })

  it('6a. hierarchical plan: the planner chain decomposes the text; children run as the step, output is their final output', async () => {
    const s = await setup()
    const { doc } = parse(`name: plan
steps:
  - id: work
    plan: count the words, then hash it
    input: \${task}
`)
    const journal = new MemoryWorkflowJournal()
    const r = await s.engine.start(doc, 'a b c', { runId: rid(), journal, preferences: fast }).done
    expect(r.output).toBe('h({"words":3})')
    expect(journal.events().find((e) => e.type === 'plan-made')).toMatchObject({ stepId: 'work' })
    expect(r.steps.map((x) => x.id)).toEqual(['work.p.s1', 'work.p.s2'])
  })

  it('6b. hierarchical workflow: a saved workflow runs as a sub-workflow with `input` as its task', async () => {
    const saved = new Map([
      ['shouter', 'name: shouter\ninputs: { type: string }\nsteps:\n  - { id: s, agent: upper, input: "${task}" }\noutput: ${s.summary}\n']
    ])
    const lib = { get: (k: string) => saved.get(k) }
    const s = await setup({ workflows: lib })
    const { doc } = parse(
      `name: parent
steps:
  - { id: sub, workflow: shouter, input: "\${task.text}" }
  - { id: count, agent: counter, input: "\${sub}" }
`,
      lib
    )
    const r = await s.engine.start(doc, { text: 'one two' }, { runId: rid(), journal: new MemoryWorkflowJournal(), preferences: fast }).done
    expect(s.seen('counter')).toEqual(['ONE TWO'])
    expect(r.steps.map((x) => x.id)).toEqual(['sub.w.s', 'count'])
    // The sub-workflow's inputs schema is enforced.
    const bad = parse('name: p2\nsteps:\n  - { id: sub, workflow: shouter, input: { not: text } }\n', lib)
    await expect(s.engine.start(bad.doc, null, { runId: rid(), journal: new MemoryWorkflowJournal() }).done).rejects.toBeInstanceOf(WorkflowInputError)
  })

  it('7. debate: rounds see the proposals; majority decides (tie → earliest agent), or a judge', async () => {
    const s = await setup()
    const { doc } = parse(`name: debate
steps:
  - id: d
    debate: { agents: [vote-b, vote-c, vote-a], rounds: 2 }
    input: is it good?
`)
    const r = await s.engine.start(doc, null, { runId: rid(), journal: new MemoryWorkflowJournal(), preferences: fast }).done
    const out = r.output as {
      decision: string
      proposals: Array<{ agent: string; round: number; output: string }>
      votes: Array<{ output: string; count: number }>
    }
    // Round 1: no, no, yes. Round 2: vote-b was persuaded → yes, no, yes.
    expect(out.proposals.map((p) => `${p.round}:${p.agent}=${p.output}`)).toEqual([
      '1:vote-b=no',
      '1:vote-c=no',
      '1:vote-a=yes',
      '2:vote-b=yes',
      '2:vote-c=no',
      '2:vote-a=yes'
    ])
    expect(out.decision).toBe('yes')
    expect(out.votes.map((v) => [v.output, v.count])).toEqual([
      ['yes', 2],
      ['no', 1]
    ])
    expect(s.seen('vote-c')[1]).toEqual({ input: 'is it good?', proposals: out.proposals.slice(0, 3) })
    const tie = parse('name: tie\nsteps:\n  - id: d\n    debate: { agents: [vote-c, vote-a], rounds: 1 }\n')
    expect(((await s.engine.start(tie.doc, null, { runId: rid(), journal: new MemoryWorkflowJournal() }).done).output as { decision: string }).decision).toBe(
      'no'
    )
    const judged = parse('name: j\nsteps:\n  - id: d\n    input: q\n    debate: { agents: [vote-c, vote-a], rounds: 1, decide: judge, judge: judge }\n')
    const jr = await s.engine.start(judged.doc, null, { runId: rid(), journal: new MemoryWorkflowJournal() }).done
    expect((jr.output as { decision: string }).decision).toBe('judged: vote-c=no, vote-a=yes')
  })

  it('8. reflection: the critic reviews each answer; the agent runs again until the critique is ok', async () => {
    const s = await setup()
    const { doc } = parse(`name: reflect
steps:
  - id: draft
    agent: refiner
    input: "\${reflection.previous == null ? task : reflection.previous}"
    reflect: { critic: critic, max_rounds: 5 }
`)
    const r = await s.engine.start(doc, 'hi', { runId: rid(), journal: new MemoryWorkflowJournal(), preferences: fast }).done
    expect(r.output).toBe('hi!!!')
    expect(s.seen('refiner')).toEqual(['hi', 'hi!', 'hi!!'])
    expect(s.seen('critic')).toEqual([
      { input: 'hi', output: 'hi!' },
      { input: 'hi!', output: 'hi!!' },
      { input: 'hi!!', output: 'hi!!!' }
    ])
    // max_rounds bounds it: the last answer is the output, with no critique after it.
    const two = parse(doc === undefined ? '' : 'name: r2\nsteps:\n  - id: d\n    agent: refiner\n    reflect: { critic: critic, max_rounds: 2 }\n')
    const r2 = await s.engine.start(two.doc, 'x', { runId: rid(), journal: new MemoryWorkflowJournal() }).done
    expect(r2.output).toBe('x!')
    expect(r2.steps.map((x) => x.id)).toEqual(['d.r0', 'd.r0.critic', 'd.r1'])
  })
})

describe('workflow engine: approvals', () => {
  const yaml = (onReject: string) => `name: appr
steps:
  - { id: draft, agent: upper, input: "\${task}" }
  - id: ok
    approval: { prompt: "Publish \${draft.summary}?", show: "\${draft}", on_reject: ${onReject} }
  - { id: publish, agent: hasher, input: "\${ok}", depends_on: ok }
`
  it('waits with its prompt; approve() continues with { approved, comment, value }', async () => {
    const s = await setup()
    const journal = new MemoryWorkflowJournal()
    const run = s.engine.start(parse(yaml('fail')).doc, 'news', { runId: rid(), journal })
    await waitFor(journal, run, (e) => e.type === 'approval-requested')
    expect(run.status).toBe('waiting')
    expect(run.pendingApprovals()).toMatchObject([{ stepId: 'ok', prompt: 'Publish NEWS?', show: { summary: 'NEWS' } }])
    expect(() => {
      run.approve('draft')
    }).toThrow(/not waiting/)
    run.approve('ok', { comment: 'go', value: 42 })
    const r = await run.done
    expect(s.seen('hasher')).toEqual([{ approved: true, comment: 'go', value: 42 }])
    expect(r.output).toBe('h({"approved":true,"comment":"go","value":42})')
  })

  it('an approval that times out counts as rejected (journalled, so a reload does not restart its clock)', async () => {
    const s = await setup()
    const { doc } = parse(
      'name: t\nsteps:\n  - id: ok\n    approval: { prompt: "Go?", timeout: 40ms, on_reject: skip }\n  - { id: b, agent: hasher, input: "${steps.ok.status}" }\n'
    )
    const journal = new MemoryWorkflowJournal()
    const r = await s.engine.start(doc, null, { runId: rid(), journal }).done
    expect(r.output).toBe('h("skipped")')
    expect(journal.events().find((e) => e.type === 'approval-decided')).toMatchObject({ stepId: 'ok', approved: false, comment: 'timed out' })
  })

  it('rejected with on_reject: fail ends the run with a clear error; with skip the step is skipped', async () => {
    const s = await setup()
    const journal = new MemoryWorkflowJournal()
    const run = s.engine.start(parse(yaml('fail')).doc, 'news', { runId: rid(), journal })
    await waitFor(journal, run, (e) => e.type === 'approval-requested')
    run.reject('ok', 'not today')
    await expect(run.done).rejects.toThrow(ApprovalRejectedError)
    await expect(run.done).rejects.toThrow(/not today/)
    expect(s.calls('hasher')).toBe(0)
    expect(journal.events().at(-1)).toMatchObject({ type: 'run-finished', status: 'failed', error: { name: 'ApprovalRejectedError' } })

    const j2 = new MemoryWorkflowJournal()
    const run2 = s.engine.start(parse(yaml('skip')).doc, 'news', { runId: rid(), journal: j2 })
    await waitFor(j2, run2, (e) => e.type === 'approval-requested')
    run2.reject('ok')
    await run2.done
    expect(s.seen('hasher')).toEqual([null])
  })
})

describe('workflow engine: budgets, timeouts, refusal', () => {
  it('max_cost is never exceeded, parallel items included: the item that would exceed is stopped before it runs', async () => {
    const s = await setup({ donor: true })
    const { doc } = parse(`name: budget
execution: { max_cost: 0.25 }
steps:
  - id: shout
    agent: upper
    for_each: task
    continue_on_error: true
    input: \${item}
`)
    const journal = new MemoryWorkflowJournal()
    const r = await s.engine.start(doc, ['a', 'b', 'c'], { runId: rid(), journal, preferences: fast }).done
    expect(s.calls('upper')).toBe(2)
    expect(r.cost).toBeCloseTo(0.2)
    expect(r.cost).toBeLessThanOrEqual(0.25)
    const failed = journal.events().find((e) => e.type === 'step-failed' && e.step !== true)
    expect(failed).toMatchObject({ stepId: 'shout.2', error: { name: 'BudgetExceededError' } })
    expect(BudgetExceededError.name).toBe('BudgetExceededError')
  })

  it('retry_failed retries an injected fault; retry_failed: false gives up at once', async () => {
    const s = await setup()
    const r = await s.engine.start(parse('name: r\nsteps:\n  - { id: a, agent: flaky, input: one }\n').doc, null, {
      runId: rid(),
      journal: new MemoryWorkflowJournal(),
      preferences: fast
    }).done
    expect(r.output).toBe('ok after retry')
    expect(s.calls('flaky')).toBe(2)
    const off = parse('name: r\nexecution: { retry_failed: false }\nsteps:\n  - { id: a, agent: flaky, input: two }\n')
    await expect(s.engine.start(off.doc, null, { runId: rid(), journal: new MemoryWorkflowJournal(), preferences: fast }).done).rejects.toBeInstanceOf(
      StepFailedError
    )
    expect(s.calls('flaky')).toBe(3)
  })

  it('execution.timeout ends the run with WorkflowTimeoutError; a step timeout fails that step', async () => {
    const s = await setup()
    const journal = new MemoryWorkflowJournal()
    const run = s.engine.start(parse('name: t\nexecution: { timeout: 80ms }\nsteps:\n  - { id: a, agent: gate, input: x }\n').doc, null, {
      runId: rid(),
      journal
    })
    await expect(run.done).rejects.toBeInstanceOf(WorkflowTimeoutError)
    expect(journal.events().at(-1)).toMatchObject({ type: 'run-finished', status: 'failed', error: { name: 'WorkflowTimeoutError' } })
    const step = parse(
      'name: t2\nsteps:\n  - { id: a, agent: gate, input: y, timeout: 50ms, continue_on_error: true }\n  - { id: b, agent: hasher, input: "${steps.a.status}" }\n'
    )
    const r = await s.engine.start(step.doc, null, { runId: rid(), journal: new MemoryWorkflowJournal() }).done
    expect(r.output).toBe('h("failed")')
    s.open()
  })

  it('refuses before any step runs: an input failing `inputs`, an unknown agent (with line:column), a bad CEL value at run time fails the step', async () => {
    const s = await setup()
    const withInputs = parse('name: i\ninputs:\n  type: object\n  required: [topic]\nsteps:\n  - { id: a, agent: upper, input: "${task.topic}" }\n')
    const journal = new MemoryWorkflowJournal()
    await expect(s.engine.start(withInputs.doc, { title: 'x' }, { runId: rid(), journal }).done).rejects.toBeInstanceOf(WorkflowInputError)
    expect(journal.events()).toEqual([])
    const r = parseWorkflow('name: u\nsteps:\n  - id: a\n    agent: nobody\n')
    if (!r.ok) throw new Error('parses without a catalog')
    const err = await s.engine.start(r.doc, null, { runId: rid(), journal: new MemoryWorkflowJournal() }).done.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(WorkflowValidationError)
    expect((err as WorkflowValidationError).errors[0]).toMatchObject({ kind: 'unknown-agent', line: 4, column: 12 })
    const capDoc = parseWorkflow('name: c\nsteps:\n  - id: a\n    capabilities: [nothing-here]\n')
    if (!capDoc.ok) throw new Error('parses without a catalog')
    const capErr = await s.engine.start(capDoc.doc, null, { runId: rid(), journal: new MemoryWorkflowJournal() }).done.catch((e: unknown) => e)
    expect((capErr as WorkflowValidationError).errors[0]).toMatchObject({ kind: 'unknown-capability', line: 4, column: 19 })
    expect(s.executor.runs).toBe(0)
    // An expression that fails on the actual data fails its step with a typed error naming it.
    const cel = parse('name: e\nsteps:\n  - { id: a, agent: upper, when: task.size > 1, input: x }\n')
    const ce = await s.engine.start(cel.doc, { other: 1 }, { runId: rid(), journal: new MemoryWorkflowJournal() }).done.catch((e: unknown) => e)
    expect(s.engine.stats()).toMatchObject({ runsRefused: 3, runsStarted: 1, runsFailed: 1, unitsDispatched: 0 })
    expect(ce).toBeInstanceOf(WorkflowExpressionError)
    expect((ce as Error).message).toMatch(/when of step "a".*size/)
    expect(s.executor.runs).toBe(0)
  })

  it('cancel() ends the run as cancelled and journals it', async () => {
    const s = await setup()
    const journal = new MemoryWorkflowJournal()
    const run = s.engine.start(parse('name: c\nsteps:\n  - { id: a, agent: gate, input: x }\n  - { id: b, agent: hasher, input: "${a}" }\n').doc, null, {
      runId: rid(),
      journal
    })
    await waitFor(journal, run, (e) => e.type === 'step-started')
    run.cancel()
    await expect(run.done).rejects.toBeInstanceOf(TaskCancelledError)
    expect(run.status).toBe('cancelled')
    expect(journal.events().at(-1)).toMatchObject({ type: 'run-finished', status: 'cancelled' })
    s.open()
    expect(s.calls('hasher')).toBe(0)
  })
})

describe('workflow engine: durable runs resume from the journal', () => {
  const yaml = `name: resume
steps:
  - { id: a, agent: upper, input: "\${task}" }
  - { id: b, agent: gate, input: "\${a.summary}" }
  - { id: c, agent: counter, input: "\${b}" }
`
  it('kill mid-run, start a new engine over the same journal: no finished step re-runs, the in-flight one is re-offered with the same idempotency key, the run completes once', async () => {
    // Two donors on the in-memory mesh and two submitters (the tab before and after the reload).
    const a = agents()
    const net = new MemoryTaskNetwork()
    const donorEx = fnExecutor(a.fns, 8)
    const t = net.transport('donor')
    await t.start()
    await donorService({ leaseMs: 200 })({ transport: t, executor: donorEx }).start()
    const submitter = async (id: string) => {
      const orch = orchestratorService({ dispatcher: { offerTimeoutMs: 300 } })({
        catalog,
        peers: { peers: () => [peer('donor')] },
        transport: net.transport(id)
      })
      await orch.start()
      return createWorkflowEngine({ catalog, runPlan: orch.runPlan })
    }
    const { doc, hash } = parse(yaml)
    const journal = new MemoryWorkflowJournal()
    const runId = rid()
    const tab = new AbortController()
    const first = (await submitter('tab-1')).start(doc, 'one two', { runId, journal, hash, signal: tab.signal, yaml })
    await waitFor(journal, first, (e) => e.type === 'step-started' && e.stepId === 'b')
    // Wait until the donor really runs b, then the tab goes away.
    while (a.calls('gate') === 0) await delay(2)
    tab.abort()
    await expect(first.done).rejects.toBeInstanceOf(TaskCancelledError)
    expect(journal.events().some((e) => e.type === 'run-finished')).toBe(false)

    const second = (await submitter('tab-2')).start(doc, 'ignored: the journalled input wins', { runId, journal, hash })
    await waitFor(journal, second, (e) => e.type === 'step-started' && e.stepId === 'b' && e.attempt === 2)
    a.open()
    const r = await second.done
    expect(r.output).toEqual({ words: 2 })
    expect(a.calls('upper')).toBe(1) // a finished before the kill: never run again
    expect(a.calls('counter')).toBe(1)
    const starts = journal.events().filter((e): e is Extract<WorkflowEvent, { type: 'step-started' }> => e.type === 'step-started' && e.stepId === 'b')
    expect(starts.map((e) => e.attempt)).toEqual([1, 2])
    expect(new Set(starts.map((e) => e.idempotencyKey))).toEqual(new Set([`${runId}/b`]))
    const offers = net.log.filter(
      (m): m is typeof m & { message: Extract<TaskMessage, { type: 'offer' }> } => m.message.type === 'offer' && m.message.stepId === 'b'
    )
    expect(offers.map((o) => [o.from, o.message.idempotencyKey])).toEqual([
      ['tab-1', `${runId}/b`],
      ['tab-2', `${runId}/b`]
    ])
    expect(journal.events().filter((e) => e.type === 'run-finished')).toHaveLength(1)
    expect(journal.events().filter((e) => e.type === 'run-resumed')).toHaveLength(1)
    // A third engine over the finished journal returns the result and runs nothing.
    const calls = a.calls('upper') + a.calls('gate') + a.calls('counter')
    const third = await (await submitter('tab-3')).start(doc, null, { runId, journal, hash }).done
    expect(third.output).toEqual({ words: 2 })
    expect(a.calls('upper') + a.calls('gate') + a.calls('counter')).toBe(calls)
  })

  it('inside a step: finished for_each items are not run again after a reload; the in-flight item is re-offered', async () => {
    const s = await setup()
    const { doc, hash } = parse(`name: parts
steps:
  - { id: each, agent: some-gate, for_each: task, input: "\${item}" }
`)
    const journal = new MemoryWorkflowJournal()
    const runId = rid()
    const tab = new AbortController()
    const first = s.engine.start(doc, ['a', 'b', 'slow', 'c'], { runId, journal, hash, signal: tab.signal })
    await waitFor(journal, first, (e) => e.type === 'step-finished' && e.stepId === 'each.3')
    while (!s.seen('some-gate').includes('slow')) await delay(2)
    tab.abort()
    await expect(first.done).rejects.toBeInstanceOf(TaskCancelledError)
    const again = s.engine.start(doc, null, { runId, journal, hash })
    await waitFor(journal, again, (e) => e.type === 'step-started' && e.stepId === 'each.2' && e.attempt === 2)
    s.open()
    const r = await again.done
    expect(r.output).toEqual(['done(a)', 'done(b)', 'done(slow)', 'done(c)'])
    expect(s.seen('some-gate')).toEqual(['a', 'b', 'slow', 'c', 'slow'])
    expect(s.engine.stats()).toMatchObject({ runsStarted: 1, runsResumed: 1, runsSucceeded: 1, unitsReplayed: 3, unitsDispatched: 5 })
  })

  it('a pending approval stays pending across a reload, without a second request, and completes once approved', async () => {
    const s = await setup()
    const { doc, hash } = parse(`name: ra
steps:
  - { id: a, agent: upper, input: "\${task}" }
  - id: ok
    approval: { prompt: "Ship \${a.summary}?" }
  - { id: c, agent: hasher, input: "\${ok.approved}" }
`)
    const journal = new MemoryWorkflowJournal()
    const runId = rid()
    const tab = new AbortController()
    const first = s.engine.start(doc, 'it', { runId, journal, hash, signal: tab.signal })
    await waitFor(journal, first, (e) => e.type === 'approval-requested')
    tab.abort()
    await expect(first.done).rejects.toBeInstanceOf(TaskCancelledError)
    const again = s.engine.start(doc, 'it', { runId, journal, hash })
    await waitFor(journal, again, (e) => e.type === 'run-resumed')
    await delay(0)
    expect(again.pendingApprovals().map((p) => p.prompt)).toEqual(['Ship IT?'])
    expect(again.status).toBe('waiting')
    again.approve('ok')
    const r = await again.done
    expect(r.output).toBe('h(true)')
    expect(journal.events().filter((e) => e.type === 'approval-requested')).toHaveLength(1)
    expect(s.calls('upper')).toBe(1)
  })

  it('refuses to resume a journal of another document version', async () => {
    const s = await setup()
    const { doc, hash } = parse(yaml)
    const journal = new MemoryWorkflowJournal([{ type: 'run-started', at: Date.now(), runId: 't-other00001', name: 'resume', docHash: hash, input: 'x' }])
    await expect(s.engine.start(doc, 'x', { runId: 't-other00001', journal, hash: 'f'.repeat(64) }).done).rejects.toThrow(/another version/)
  })
})
