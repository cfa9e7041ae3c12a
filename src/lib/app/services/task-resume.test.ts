import * as Y from 'yjs'
import { describe, expect, it, vi } from 'vitest'
import { Journal, type TaskRecord } from '../../memory/index.ts'
import {
  MemoryTaskNetwork,
  createOrchestrator,
  donorService,
  type AgentCandidate,
  type AgentCatalog,
  type LocalExecutor,
  type Plan,
  type TaskHandle
} from '../../orchestrator/index.ts'
import { MAX_JOURNALLED_VALUE, journalTask, planSaved } from '../task-journal.ts'
import { MemoryRunLocks, runLockName } from './run-locks.ts'
import { remainingPlan, taskResume } from './task-resume.ts'

const PLAN = {
  subtasks: [
    { id: 's1', description: 'summarize', capabilities: ['text-summarization'], dependencies: [], input: { from: 'task.input' }, estimated_cost: 1 },
    { id: 's2', description: 'hash', capabilities: ['hashing'], dependencies: ['s1'], input: { from: 'step', step: 's1', path: 'summary' }, estimated_cost: 1 },
    {
      id: 's3',
      description: 'count',
      capabilities: ['word-count'],
      dependencies: ['s2'],
      input: { template: 'digest {{steps.s2.output.sha256}}' },
      estimated_cost: 1
    }
  ],
  execution_mode: 'sequential',
  total_estimated_cost: 3,
  planner: 'deterministic'
} as unknown as Plan

function interrupted(id: string, steps: TaskRecord['steps'], updatedAt = Date.now()): TaskRecord {
  return { id, status: 'running', description: 'summarize, hash, count', createdAt: updatedAt, updatedAt, steps, data: { input: 'some text', plan: PLAN } }
}

describe('carrying on an interrupted task', () => {
  it('remainingPlan keeps unfinished steps and turns reads of finished ones into literals', () => {
    const rest = remainingPlan(PLAN, new Map([['s1', { summary: 'short' }]]), 'some text')
    expect(rest?.subtasks.map((s) => [s.id, s.dependencies, s.input])).toEqual([
      ['s2', [], { value: 'short' }],
      ['s3', ['s2'], { template: 'digest {{steps.s2.output.sha256}}' }]
    ])
  })

  it('a tab that gets the lock runs only the steps not finished, under the same task id, and journals the whole result', async () => {
    const journal = new Journal(new Y.Doc(), async () => {})
    await journal.put(
      interrupted('t-1', [
        { id: 's1', status: 'succeeded', agent: 'a1', peer: 'p1', output: { summary: 'short' } },
        { id: 's2', status: 'dispatched' }
      ])
    )
    await journal.put({ ...interrupted('t-old', [], Date.now() - 2 * 24 * 3600_000) })
    const ran: Array<{ taskId: string; steps: string[]; input: unknown }> = []
    const locks = new MemoryRunLocks()
    const resume = taskResume()({
      journal,
      locks,
      catalog: { list: () => [] },
      orchestrator: {
        async runPlan(plan, opts) {
          ran.push({ taskId: opts.taskId, steps: plan.subtasks.map((s) => s.id), input: plan.subtasks[0].input })
          return {
            steps: plan.subtasks.map((s) => ({ id: s.id, agent: 'a', peer: 'p', ms: 1, status: 'succeeded' as const, output: s.id, cost: 1, attempts: 1 })),
            outputs: new Map(plan.subtasks.map((s) => [s.id, `${s.id}-out`])),
            cost: plan.subtasks.length
          }
        }
      },
      record: (handle, request) => journalTask(journal, handle, request),
      changes: { changed() {} }
    })
    // Another tab still runs t-1: nothing happens until it lets the lock go.
    const other = await locks.tryAcquire(runLockName('t-1'))
    resume.resumeAll()
    await new Promise((r) => setTimeout(r, 20)) // nothing to await: the other tab holds the lock
    expect(ran).toEqual([])
    expect(resume.task('t-1')).toBeUndefined()
    other?.release()
    const handle = await vi.waitFor(() => {
      const h = resume.task('t-1')
      if (h == null) throw new Error('not carried on yet')
      return h
    })
    const result = await handle.done
    expect(ran).toEqual([{ taskId: 't-1', steps: ['s2', 's3'], input: { value: 'short' } }])
    expect(result?.output).toBe('s3-out')
    expect(result?.steps.map((s) => s.id)).toEqual(['s1', 's2', 's3'])
    // The lock goes only once the final record is saved.
    await vi.waitFor(() => expect(locks.isHeld(runLockName('t-1'))).toBe(false), { timeout: 2000 })
    expect(journal.get('t-1')?.status).toBe('succeeded')
    // A task interrupted two days ago is not carried on.
    expect(journal.get('t-old')).toMatchObject({ status: 'failed', data: { error: expect.stringContaining('more than a day ago') } })
    expect(resume.resumed()).toBe(1)
  })

  it('a carried-on task’s done settles only once its end is saved (a reload right after finds it finished)', async () => {
    // Saves complete at once until the plan has run; then they wait for the test.
    let gate: Promise<void> | undefined
    const journal = new Journal(new Y.Doc(), () => gate ?? Promise.resolve())
    await journal.put(interrupted('t-save', [{ id: 's1', status: 'succeeded', agent: 'a1', peer: 'p1', output: { summary: 'short' } }]))
    const disk = Promise.withResolvers<void>()
    let ran = false
    const resume = taskResume()({
      journal,
      locks: new MemoryRunLocks(),
      catalog: { list: () => [] },
      orchestrator: {
        async runPlan(plan) {
          gate = disk.promise
          ran = true
          return {
            steps: plan.subtasks.map((s) => ({ id: s.id, agent: 'a', peer: 'p', ms: 1, status: 'succeeded' as const, output: s.id, cost: 1, attempts: 1 })),
            outputs: new Map(plan.subtasks.map((s) => [s.id, `${s.id}-out`])),
            cost: plan.subtasks.length
          }
        }
      },
      record: (handle, request, opts) => journalTask(journal, handle, request, undefined, opts),
      changes: { changed() {} }
    })
    resume.resumeAll()
    const handle = await vi.waitFor(() => {
      const h = resume.task('t-save')
      if (h == null || !ran) throw new Error('not carried on yet')
      return h
    })
    let settled = false
    void handle.done.then(() => (settled = true))
    await vi.waitFor(() => expect(journal.get('t-save')?.status).toBe('succeeded'))
    await new Promise((r) => setTimeout(r, 0))
    expect(settled).toBe(false) // in the doc, not yet on disk
    disk.resolve()
    expect((await handle.done).output).toBe('s3-out')
  })

  it('a task pinned to a bundled agent is carried on once the catalog lists it (right after a reload it does not yet)', async () => {
    const journal = new Journal(new Y.Doc(), async () => {})
    const record = interrupted('t-pinned', [{ id: 's1', status: 'succeeded', agent: 'a1', peer: 'p1', output: { summary: 'short' } }])
    await journal.put({ ...record, data: { ...(record.data as object), agent: 'summarize' } })
    let agents: Array<{ id: string; name: string }> = []
    const ready = Promise.withResolvers<void>()
    const pinned: string[] = []
    const resume = taskResume()({
      journal,
      locks: new MemoryRunLocks(),
      catalog: { list: () => agents } as never,
      orchestrator: {
        async runPlan(plan, opts) {
          pinned.push(...(opts.pinned?.values() ?? []))
          return {
            steps: plan.subtasks.map((s) => ({ id: s.id, agent: 'a', peer: 'p', ms: 1, status: 'succeeded' as const, output: s.id, cost: 1, attempts: 1 })),
            outputs: new Map(plan.subtasks.map((s) => [s.id, `${s.id}-out`])),
            cost: plan.subtasks.length
          }
        }
      },
      record: (handle, request) => journalTask(journal, handle, request),
      changes: { changed() {} },
      catalogReady: ready.promise
    })
    resume.resumeAll()
    await new Promise((r) => setTimeout(r, 20))
    expect(resume.task('t-pinned')).toBeUndefined()
    agents = [{ id: 'agent-summarize', name: 'summarize' }]
    ready.resolve()
    const handle = await vi.waitFor(() => {
      const h = resume.task('t-pinned')
      if (h == null) throw new Error('not carried on yet')
      return h
    })
    expect((await handle.done).output).toBe('s3-out')
    expect(new Set(pinned)).toEqual(new Set(['agent-summarize']))
  })
})

describe('a task killed mid-run and carried on over the same journal (real orchestrator, in-memory transport)', () => {
  const summarize: AgentCandidate = { id: '1'.repeat(64), name: 'summarize', version: '1.0.0', capabilities: ['text-summarization'], price: 0 }
  const hash: AgentCandidate = { id: '2'.repeat(64), name: 'hash', version: '1.0.0', capabilities: ['hashing'], price: 0 }
  const catalog: AgentCatalog = {
    list: (c) => [summarize, hash].filter((a) => c == null || a.capabilities.includes(c)),
    version: () => 1
  }
  type Fns = Record<string, (input: unknown) => unknown>

  /** One mesh: a donor running `fns` (counting runs) and an orchestrator submitting to it. */
  async function mesh(fns: Fns, durable?: (id: string) => Promise<void>) {
    const net = new MemoryTaskNetwork()
    const t = net.transport('donor')
    await t.start()
    const executor: LocalExecutor & { runs: number } = {
      runs: 0,
      has: (id) => id in fns,
      freeWorkers: () => 2,
      async run(id, input) {
        executor.runs++
        return { output: await fns[id](input), ms: 1 }
      }
    }
    const donor = donorService({})({ transport: t, executor })
    await donor.start()
    const donorPeer = { id: 'donor', rttMs: 10, freeWorkers: 2, donating: true, capabilities: [] }
    const orch = createOrchestrator(
      { catalog, peers: { peers: () => [donorPeer] }, transport: net.transport('me'), durable },
      { dispatcher: { offerTimeoutMs: 300 } }
    )
    await orch.start()
    return {
      orch,
      executor,
      stop: async () => {
        await orch.stop()
        await donor.stop()
      }
    }
  }

  it('journals each step output as it commits; after the kill no finished step runs again and its output feeds the rest', async () => {
    const doc = new Y.Doc()
    const journal = new Journal(doc, async () => {})
    const gate = Promise.withResolvers<void>()
    const first = await mesh({
      [summarize.id]: (i) => ({ summary: `short: ${String(i).slice(0, 12)}` }),
      [hash.id]: async () => {
        await gate.promise
        return { sha256: 'never' }
      }
    })
    const request = { description: 'summarize this text, then hash it', input: 'a long text about meshes and agents' }
    const handle = first.orch.submit(request)
    void journalTask(journal, handle, request)
    // s1 finished and its output is journalled while s2 still runs (not only when the task ends).
    const s1 = await vi.waitFor(
      () => {
        const r = journal.get(handle.id)
        const s = r?.steps.find((x) => x.status === 'succeeded')
        // s2 is journalled as dispatched a moment before the donor starts it: wait for both.
        if (s == null || r == null || r.steps.length < 2 || first.executor.runs < 2) throw new Error('s1 not journalled, or s2 not started, yet')
        return { record: r, step: s }
      },
      { timeout: 5000 }
    )
    expect(s1.step.output).toEqual({ summary: 'short: a long text ' })
    expect(first.executor.runs).toBe(2) // s1, and s2 held (not run again)
    // The kill: the journal as the dead tab left it (nothing written after this point).
    const copy = new Y.Doc()
    Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc))
    const after = new Journal(copy, async () => {})
    const createdAt = after.get(handle.id)!.createdAt
    gate.resolve()
    await first.stop()

    // A new tab, and a new donor that never saw the task: only s2 may run there.
    const hashed: unknown[] = []
    const second = await mesh({
      [summarize.id]: () => {
        throw new Error('the finished summarize step ran again')
      },
      [hash.id]: (i) => {
        hashed.push(i)
        return { sha256: `digest of ${String(i)}` }
      }
    })
    const resume = taskResume()({
      journal: after,
      locks: new MemoryRunLocks(),
      catalog,
      orchestrator: second.orch,
      record: (h, req, opts) => journalTask(after, h, req, undefined, opts),
      changes: { changed() {} }
    })
    await new Promise((r) => setTimeout(r, 5 * 60)) // createdAt must survive, not be "now"
    resume.resumeAll()
    const carried = await vi.waitFor(() => {
      const h = resume.task(handle.id)
      if (h == null) throw new Error('not carried on yet')
      return h
    })
    const result = await carried.done
    expect(result.output).toEqual({ sha256: 'digest of short: a long text ' })
    expect(second.executor.runs).toBe(1)
    expect(hashed).toEqual(['short: a long text '])
    await vi.waitFor(() => expect(after.get(handle.id)?.status).toBe('succeeded'))
    const final = after.get(handle.id)!
    expect(final.createdAt).toBe(createdAt)
    expect(final.steps.map((s) => [s.id, s.status, s.output])).toEqual([
      [s1.step.id, 'succeeded', { summary: 'short: a long text ' }],
      [expect.any(String), 'succeeded', { sha256: 'digest of short: a long text ' }]
    ])
    await second.stop()
  })

  it('no step is offered before the planned task is saved in the journal (a reload at any later point leaves a record to carry on)', async () => {
    let release = Promise.withResolvers<void>()
    let saves = 0
    const journal = new Journal(new Y.Doc(), () => {
      saves++
      return release.promise
    })
    const ran: string[] = []
    const m = await mesh(
      {
        [summarize.id]: (i) => {
          ran.push('summarize')
          return { summary: String(i) }
        },
        [hash.id]: () => {
          ran.push('hash')
          return { sha256: 'x' }
        }
      },
      (id) => planSaved(journal, id)
    )
    const request = { description: 'summarize this text, then hash it', input: 'some text' }
    const handle = m.orch.submit(request)
    void journalTask(journal, handle, request)
    const offered: string[] = []
    handle.on('step', (e) => offered.push(e.status))
    await vi.waitFor(() => expect(saves).toBeGreaterThan(0))
    // The plan is in the doc, its save is still under way: nothing is offered meanwhile.
    expect((journal.get(handle.id)?.data as { plan?: unknown } | undefined)?.plan).toBeDefined()
    await new Promise((r) => setTimeout(r, 100)) // nothing to await: no step may start
    expect(offered).toEqual([])
    expect(ran).toEqual([])
    release.resolve()
    release = Promise.withResolvers<void>()
    release.resolve()
    expect((await handle.done).status).toBe('succeeded')
    expect(ran).toEqual(['summarize', 'hash'])
    await m.stop()
  })

  it('a save that never completes delays the first step by at most the bound, it does not stall the task', async () => {
    const journal = new Journal(new Y.Doc(), () => new Promise<void>(() => {}))
    const m = await mesh({ [summarize.id]: (i) => ({ summary: String(i) }), [hash.id]: () => ({ sha256: 'x' }) }, (id) => planSaved(journal, id, 150))
    const request = { description: 'summarize this text, then hash it', input: 'some text' }
    const handle = m.orch.submit(request)
    void journalTask(journal, handle, request)
    expect((await handle.done).status).toBe('succeeded')
    await m.stop()
  })

  it('an output too large to journal is dropped with a flag, and that step runs again when carried on', async () => {
    const journal = new Journal(new Y.Doc(), async () => {})
    const events = new EventTarget()
    const settle = Promise.withResolvers<never>()
    settle.promise.catch(() => {})
    const handle = {
      id: 't-big',
      done: settle.promise,
      on(kind: string, l: (d: unknown) => void) {
        const f = (e: Event) => l((e as CustomEvent).detail)
        events.addEventListener(kind, f)
        return () => events.removeEventListener(kind, f)
      },
      cancel() {}
    } as unknown as TaskHandle
    void journalTask(journal, handle, { description: 'big' })
    events.dispatchEvent(new CustomEvent('progress', { detail: { taskId: 't-big', phase: 'planned', plan: PLAN, steps: 3, stepsDone: 0 } }))
    events.dispatchEvent(
      new CustomEvent('step', {
        detail: { taskId: 't-big', stepId: 's1', status: 'succeeded', attempt: 1, agent: 'a', peer: 'p', output: 'x'.repeat(MAX_JOURNALLED_VALUE + 1) }
      })
    )
    await vi.waitFor(() => expect(journal.get('t-big')?.steps.find((s) => s.id === 's1')?.status).toBe('succeeded'))
    const r = journal.get('t-big')!
    expect(r.steps.find((s) => s.id === 's1')?.output).toBeUndefined()
    expect((r.data as { outputsDropped?: string[] }).outputsDropped).toEqual(['s1'])
  })
})
