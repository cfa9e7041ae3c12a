import * as Y from 'yjs'
import { describe, expect, it, vi } from 'vitest'
import { Journal, type TaskRecord } from '../../memory/index.ts'
import type { Plan } from '../../orchestrator/index.ts'
import { journalTask } from '../task-journal.ts'
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
