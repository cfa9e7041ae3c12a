/**
 * Workflow runs over the journal: resume after a "reload" (a new service over the same
 * doc), exactly one tab resumes (shared locks), approvals from another tab, validation
 * refused before anything runs. The engine here is a small fake that follows the journal
 * contract (types.ts): append in order, skip finished steps on resume.
 */
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import type {
  WorkflowDocument,
  WorkflowEngine,
  WorkflowEvent,
  WorkflowModule,
  WorkflowRun,
  WorkflowStartOptions,
  WorkflowApprovalRequest
} from '../../orchestrator/index.ts'
import { MemoryRunLocks } from './run-locks.ts'
import { RunStore } from './run-store.ts'
import { workflowRuns, type WorkflowRuns, type WorkflowRunsComponents } from './workflow-runs.ts'

/** A document: `name: x` then one line per step, `- id` or `- id approval`. */
function parse(yaml: string): ReturnType<WorkflowModule['parseWorkflow']> {
  const name = /^name: (\S+)/m.exec(yaml)?.[1]
  if (name == null) return { ok: false, errors: [{ kind: 'missing-key', message: 'Add a name', path: 'name', line: 1, column: 1, endLine: 1, endColumn: 2 }] }
  const steps = [...yaml.matchAll(/^- (\S+)( approval)?$/gm)].map((m) => ({ id: m[1], kind: m[2] != null ? 'approval' : 'agent' }))
  return {
    ok: true,
    hash: 'h',
    doc: { name, steps, agents: [], execution: { mode: 'sequential' }, dependencies: {}, reads: {}, positions: {} } as unknown as WorkflowDocument
  }
}

/** Agent calls the fake engine made, by run: what a resume must not repeat. */
type Calls = Map<string, string[]>
/** Hold step `block` (every step when unset) until `wait` resolves. */
type Gate = { block?: string; wait?: Promise<void> }

function fakeModule(calls: Calls, gate: Gate = {}): WorkflowModule {
  const engine: WorkflowEngine & { stats(): Record<string, number> } = {
    check: () => [],
    stats: () => ({}),
    start(doc: WorkflowDocument, input: unknown, opts: WorkflowStartOptions): WorkflowRun {
      const { journal, runId, signal } = opts
      const listeners = new Set<(e: WorkflowEvent) => void>()
      const decisions = new Map<string, (d: { approved: boolean; comment?: string }) => void>()
      const pending: WorkflowApprovalRequest[] = []
      let status: WorkflowRun['status'] = 'running'
      const append = async (e: WorkflowEvent): Promise<void> => {
        await journal.append(e)
        for (const l of listeners) l(e)
      }
      const done = (async () => {
        await Promise.resolve()
        const past = journal.events()
        // Refused before it starts, as the engine refuses a run over the spending limits: nothing journalled.
        if (past.length === 0 && input === 'over-limit')
          throw Object.assign(new Error('The workflow "three" (3 agent calls) is estimated at 6 credits, but this profile may spend only 1 more'), {
            name: 'CreditLimitError'
          })
        if (past.length === 0) await append({ type: 'run-started', at: Date.now(), runId, name: doc.name, docHash: 'h', input, yaml: opts.yaml })
        else await append({ type: 'run-resumed', at: Date.now() })
        let last: unknown = input
        for (const step of doc.steps) {
          const finished = journal.events().find((e) => e.type === 'step-finished' && e.stepId === step.id)
          if (finished != null && finished.type === 'step-finished') {
            last = finished.output
            continue
          }
          if (signal?.aborted) return new Promise<never>(() => {})
          if (step.kind === 'approval') {
            const decided = journal.events().find((e) => e.type === 'approval-decided' && e.stepId === step.id)
            let d = decided?.type === 'approval-decided' ? decided : undefined
            if (d == null) {
              // Pending (and decidable) before the request is journalled, as the engine's index has it.
              status = 'waiting'
              pending.push({ runId, stepId: step.id, prompt: 'ok?', requestedAt: Date.now() })
              const decision = new Promise<{ approved: boolean; comment?: string }>((resolve) => decisions.set(step.id, resolve))
              if (!journal.events().some((e) => e.type === 'approval-requested' && e.stepId === step.id))
                await append({ type: 'approval-requested', at: Date.now(), stepId: step.id, prompt: 'ok?', show: last })
              const got = await decision
              pending.splice(0)
              status = 'running'
              await append({ type: 'approval-decided', at: Date.now(), stepId: step.id, approved: got.approved, comment: got.comment })
              d = { type: 'approval-decided', at: 0, stepId: step.id, ...got }
            }
            if (!d.approved) {
              const error = { name: 'ApprovalRejectedError', message: `rejected: ${d.comment ?? ''}` }
              await append({ type: 'run-finished', at: Date.now(), status: 'failed', error, cost: 0 })
              throw Object.assign(new Error(error.message), { name: error.name })
            }
            await append({ type: 'step-finished', at: Date.now(), stepId: step.id, step: true, output: { approved: true } })
            continue
          }
          await append({ type: 'step-started', at: Date.now(), stepId: step.id, attempt: 1, idempotencyKey: `${runId}/${step.id}` })
          const list = calls.get(runId) ?? []
          list.push(step.id)
          calls.set(runId, list)
          if (gate.block == null || gate.block === step.id) await gate.wait
          if (signal?.aborted) return new Promise<never>(() => {})
          last = `${String(last)}>${step.id}`
          await append({ type: 'step-finished', at: Date.now(), stepId: step.id, step: true, output: last, agent: 'a', peer: 'p', ms: 1, cost: 1 })
        }
        await append({ type: 'run-finished', at: Date.now(), status: 'succeeded', output: last, cost: doc.steps.length })
        return { id: runId, status: 'succeeded' as const, output: last, steps: [], cost: doc.steps.length }
      })()
      done.catch(() => {})
      return {
        id: runId,
        get status() {
          return status
        },
        events: () => journal.events(),
        subscribe(l) {
          listeners.add(l)
          return () => listeners.delete(l)
        },
        onStep: () => () => {},
        pendingApprovals: () => [...pending],
        approve(stepId, d) {
          decisions.get(stepId)?.({ approved: true, comment: d?.comment })
        },
        reject(stepId, reason) {
          decisions.get(stepId)?.({ approved: false, comment: reason })
        },
        cancel() {},
        done
      }
    }
  }
  return {
    parseWorkflow: parse as WorkflowModule['parseWorkflow'],
    validateWorkflowInput: (_doc, input) =>
      input === 'bad' ? [{ kind: 'invalid-input', message: 'The input must be text', path: 'inputs', line: 1, column: 1, endLine: 1, endColumn: 1 }] : [],
    createWorkflowEngine: () => engine
  }
}

/** Two docs joined like two tabs of a profile. */
function joined(): [Y.Doc, Y.Doc] {
  const a = new Y.Doc()
  const b = new Y.Doc()
  a.on('update', (u: Uint8Array, origin: unknown) => {
    if (origin !== 'sync') Y.applyUpdate(b, u, 'sync')
  })
  b.on('update', (u: Uint8Array, origin: unknown) => {
    if (origin !== 'sync') Y.applyUpdate(a, u, 'sync')
  })
  return [a, b]
}

/** A catalog that lists agent `a` only once `load()` is called (the bundled agents arrive after a page load). */
function lateCatalog(): { catalog: { list(): Array<{ name: string }> }; ready: Promise<void>; load(): void } {
  let agents: Array<{ name: string }> = []
  const ready = Promise.withResolvers<void>()
  return {
    catalog: { list: () => agents },
    ready: ready.promise,
    load() {
      agents = [{ name: 'a' }]
      ready.resolve()
    }
  }
}

function tab(doc: Y.Doc, locks: MemoryRunLocks, calls: Calls, gate?: Gate, cat?: ReturnType<typeof lateCatalog>): { runs: WorkflowRuns; store: RunStore } {
  const store = new RunStore(doc)
  const mod = fakeModule(calls, gate)
  // Like the real parser: a document naming an agent the catalog does not list is refused.
  const parseWorkflow: WorkflowModule['parseWorkflow'] = (yaml, opts) =>
    cat != null && !opts?.catalog?.list().some((x) => x.name === 'a')
      ? { ok: false, errors: [{ kind: 'unknown-agent', message: 'No agent is named "a"', path: 'steps', line: 2, column: 3, endLine: 2, endColumn: 4 }] }
      : mod.parseWorkflow(yaml, opts)
  const runs = workflowRuns({ load: async () => ({ ...mod, parseWorkflow }) })({
    store,
    locks,
    engine: {
      catalog: (cat?.catalog ?? { list: () => [] }) as unknown as WorkflowRunsComponents['engine']['catalog'],
      runPlan: async () => ({ steps: [], outputs: new Map(), cost: 0 })
    },
    changes: { changed() {} },
    ...(cat != null ? { catalogReady: cat.ready } : {})
  })
  return { runs, store }
}

const DOC = 'name: three\n- a\n- b\n- c\n'
const until = async (cond: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met')
    await new Promise((r) => setTimeout(r, 2))
  }
}

describe('workflow runs', () => {
  it('runs a workflow, journals it, and lists it with its status', async () => {
    const calls: Calls = new Map()
    const { runs, store } = tab(new Y.Doc(), new MemoryRunLocks(), calls)
    const h = runs.run(DOC, 'in')
    const r = await h.done
    expect(r.output).toBe('in>a>b>c')
    expect(store.get(h.id)).toMatchObject({ kind: 'workflow', name: 'three', status: 'succeeded', steps: 3, stepsDone: 3, cost: 3 })
    expect(calls.get(h.id)).toEqual(['a', 'b', 'c'])
    expect(h.view().steps.b).toMatchObject({ state: 'succeeded', agent: 'a', peer: 'p', cost: 1 })
  })

  it('refuses an invalid document or input before anything runs, with line and column', async () => {
    const calls: Calls = new Map()
    const { runs, store } = tab(new Y.Doc(), new MemoryRunLocks(), calls)
    const bad = runs.run('steps: []', 'x')
    await expect(bad.done).rejects.toMatchObject({ name: 'WorkflowValidationError', message: expect.stringContaining('line 1, column 1') })
    const badInput = runs.run(DOC, 'bad')
    await expect(badInput.done).rejects.toMatchObject({ name: 'WorkflowInputError' })
    expect(calls.size).toBe(0)
    expect(store.get(bad.id)?.status).toBe('failed')
    expect(store.logSize(badInput.id)).toBe(0)
  })

  it('a run the engine refuses before it starts (over the spending limits) fails at once: its handle and summary say why, nothing to resume', async () => {
    const calls: Calls = new Map()
    const locks = new MemoryRunLocks()
    const doc = new Y.Doc()
    const { runs, store } = tab(doc, locks, calls)
    const h = runs.run(DOC, 'over-limit')
    await expect(h.done).rejects.toMatchObject({ name: 'CreditLimitError', message: expect.stringContaining('estimated at 6 credits') })
    expect(store.get(h.id)).toMatchObject({ status: 'failed', error: expect.stringContaining('may spend only 1 more') })
    expect(store.logSize(h.id)).toBe(0)
    expect(calls.size).toBe(0)
    expect(runs.running()).toEqual([])
    // A reload does not try it again.
    runs.stop()
    const again = tab(doc, locks, calls)
    again.runs.resumeAll()
    await new Promise((r) => setTimeout(r, 20))
    expect(again.runs.resumed()).toBe(0)
    expect(calls.size).toBe(0)
  })

  it('a reload mid-run resumes it: finished steps never run again, the run completes once', async () => {
    const calls: Calls = new Map()
    const doc = new Y.Doc()
    const locks = new MemoryRunLocks()
    // a finishes, b is held in flight, then the tab "reloads" (it goes away: its locks are released).
    const held = Promise.withResolvers<void>()
    const first = tab(doc, locks, calls, { block: 'b', wait: held.promise })
    const h = first.runs.run(DOC, 'in')
    await until(() => (calls.get(h.id) ?? []).includes('b'))
    expect(
      first.store
        .log<WorkflowEvent>(h.id)
        .events()
        .some((e) => e.type === 'step-finished' && e.stepId === 'a')
    ).toBe(true)
    first.runs.stop()
    held.resolve()
    const second = tab(doc, locks, calls)
    second.runs.resumeAll()
    const r = await second.runs.task(h.id)?.done
    expect(r?.output).toBe('in>a>b>c')
    // a ran once; b was in flight when the tab went, so it is offered again; c once.
    expect(calls.get(h.id)).toEqual(['a', 'b', 'b', 'c'])
    const events = second.store.log<WorkflowEvent>(h.id).events()
    expect(events.filter((e) => e.type === 'run-finished')).toHaveLength(1)
    expect(events.filter((e) => e.type === 'run-resumed')).toHaveLength(1)
    expect(second.store.get(h.id)).toMatchObject({ status: 'succeeded', resumes: 1 })
  })

  it('two tabs of one profile: exactly one resumes an abandoned run, and the other takes over when it goes', async () => {
    const calls: Calls = new Map()
    const [da, db] = joined()
    const locks = new MemoryRunLocks()
    // An abandoned run: started in a tab that crashed after step a.
    const seed = new RunStore(da)
    seed.put({ id: 'wf-1', kind: 'workflow', name: 'three', status: 'running', createdAt: 1, updatedAt: 1, steps: 3 })
    seed.log<WorkflowEvent>('wf-1').append({ type: 'run-started', at: 1, runId: 'wf-1', name: 'three', docHash: 'h', input: 'in', yaml: DOC })
    seed.log<WorkflowEvent>('wf-1').append({ type: 'step-finished', at: 2, stepId: 'a', step: true, output: 'in>a' })
    const a = tab(da, locks, calls, { wait: Promise.withResolvers<void>().promise })
    const b = tab(db, locks, calls)
    a.runs.resumeAll()
    b.runs.resumeAll()
    await until(() => (calls.get('wf-1') ?? []).length === 1)
    expect(a.runs.running()).toEqual(['wf-1'])
    expect(b.runs.running()).toEqual([])
    // Tab a goes away with b in flight; tab b was queued for the lock and carries the run on.
    a.runs.stop()
    await b.runs.task('wf-1')?.done
    expect(calls.get('wf-1')).toEqual(['b', 'b', 'c'])
    expect(
      b.store
        .log<WorkflowEvent>('wf-1')
        .events()
        .filter((e) => e.type === 'run-finished')
    ).toHaveLength(1)
  })

  it('an approval decided in another tab reaches the tab that runs the workflow; a rejection fails the run', async () => {
    const calls: Calls = new Map()
    const [da, db] = joined()
    const locks = new MemoryRunLocks()
    const runner = tab(da, locks, calls)
    const other = tab(db, locks, calls)
    const approvals: unknown[] = []
    const doc = 'name: gated\n- a\n- review approval\n- b\n'
    const h = runner.runs.run(doc, 'in')
    h.on('approval', (e) => approvals.push(e))
    await until(() => runner.store.get(h.id)?.status === 'waiting')
    expect(approvals).toEqual([{ taskId: h.id, stepId: 'review', prompt: 'ok?', show: 'in>a' }])
    const seen = other.runs.task(h.id)
    expect(seen?.view().waiting.map((w) => w.stepId)).toEqual(['review'])
    await other.runs.approve(h.id, 'review', { approved: true, comment: 'fine' })
    expect((await h.done).output).toBe('in>a>b')
    await expect(other.runs.approve(h.id, 'review', { approved: true })).rejects.toThrow(/already succeeded/)

    const h2 = runner.runs.run(doc, 'in')
    await until(() => runner.store.get(h2.id)?.status === 'waiting')
    await expect(other.runs.approve(h2.id, 'nope', { approved: true })).rejects.toThrow(/not waiting/)
    await other.runs.approve(h2.id, 'review', { approved: false, comment: 'too long' })
    await expect(other.runs.task(h2.id)?.done).rejects.toMatchObject({ name: 'ApprovalRejectedError', message: 'rejected: too long' })
    expect(calls.get(h2.id)).toEqual(['a'])
  })

  it('a pending approval survives a reload and is still pending; the decision after it completes the run once', async () => {
    const calls: Calls = new Map()
    const doc = new Y.Doc()
    const locks = new MemoryRunLocks()
    const first = tab(doc, locks, calls)
    const h = first.runs.run('name: gated\n- a\n- review approval\n- b\n', 'in')
    await until(() => first.store.get(h.id)?.status === 'waiting')
    first.runs.stop()
    const second = tab(doc, locks, calls)
    second.runs.resumeAll()
    const again = second.runs.task(h.id)
    await until(() => second.runs.running().includes(h.id))
    expect(again?.view().status).toBe('waiting')
    await second.runs.approve(h.id, 'review', { approved: true })
    expect((await again?.done)?.output).toBe('in>a>b')
    expect(calls.get(h.id)).toEqual(['a', 'b'])
    expect(
      second.store
        .log<WorkflowEvent>(h.id)
        .events()
        .filter((e) => e.type === 'approval-requested')
    ).toHaveLength(1)
  })

  it('a reload while waiting resumes the run even when the agents reach the catalog after the engine is loaded', async () => {
    const calls: Calls = new Map()
    const doc = new Y.Doc()
    const locks = new MemoryRunLocks()
    const loaded = lateCatalog()
    loaded.load()
    const first = tab(doc, locks, calls, undefined, loaded)
    const h = first.runs.run('name: gated\n- a\n- review approval\n- b\n', 'in')
    await until(() => first.store.get(h.id)?.status === 'waiting')
    first.runs.stop()
    // The new page: its catalog lists the agents only a while after the workflow chunk is here.
    const late = lateCatalog()
    const second = tab(doc, locks, calls, undefined, late)
    second.runs.resumeAll()
    await new Promise((r) => setTimeout(r, 20))
    expect(second.store.get(h.id)?.status).toBe('waiting')
    expect(second.runs.running()).toEqual([h.id])
    late.load()
    await until(() =>
      second.store
        .log<WorkflowEvent>(h.id)
        .events()
        .some((e) => e.type === 'run-resumed')
    )
    expect(second.store.get(h.id)?.status).toBe('waiting')
    expect(
      second.runs
        .task(h.id)
        ?.view()
        .waiting.map((w) => w.stepId)
    ).toEqual(['review'])
    await second.runs.approve(h.id, 'review', { approved: true })
    expect((await second.runs.task(h.id)?.done)?.output).toBe('in>a>b')
    expect(calls.get(h.id)).toEqual(['a', 'b'])
  })

  it('a run started as the page loads waits for the catalog instead of refusing its agents', async () => {
    const calls: Calls = new Map()
    const late = lateCatalog()
    const { runs } = tab(new Y.Doc(), new MemoryRunLocks(), calls, undefined, late)
    const h = runs.run(DOC, 'in')
    await new Promise((r) => setTimeout(r, 20))
    late.load()
    expect((await h.done).output).toBe('in>a>b>c')
  })

  it('a tab reloaded before the engine journalled run-started resumes the run from its summary', async () => {
    const calls: Calls = new Map()
    const doc = new Y.Doc()
    const locks = new MemoryRunLocks()
    // What a tab that went away at once leaves: the summary (with document and input), no log.
    const chunk = Promise.withResolvers<WorkflowModule>()
    const first = workflowRuns({ load: () => chunk.promise })({
      store: new RunStore(doc),
      locks,
      engine: { catalog: { list: () => [] }, runPlan: async () => ({ steps: [], outputs: new Map(), cost: 0 }) },
      changes: { changed() {} }
    })
    const h = first.run(DOC, 'in')
    const store = new RunStore(doc)
    await until(() => store.get(h.id) != null)
    expect(store.get(h.id)).toMatchObject({ status: 'running', yaml: DOC, input: 'in' })
    expect(store.logSize(h.id)).toBe(0)
    first.stop()
    const second = tab(doc, locks, calls)
    second.runs.resumeAll()
    expect((await second.runs.task(h.id)?.done)?.output).toBe('in>a>b>c')
    expect(calls.get(h.id)).toEqual(['a', 'b', 'c'])
    // Once run-started is in the journal the summary no longer carries the document.
    expect(second.store.get(h.id)?.yaml).toBeUndefined()
    expect(second.store.get(h.id)?.input).toBeUndefined()
  })
})
