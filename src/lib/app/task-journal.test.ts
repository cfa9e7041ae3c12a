import * as Y from 'yjs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Journal } from '../memory/index.ts'
import { journalTask } from './task-journal.ts'
import type { Plan, ProgressEvent, StepEvent, TaskHandle, TaskResult } from '../orchestrator/index.ts'

const plan = {
  planner: 'direct',
  subtasks: [{ id: 's1', description: 'count words', capabilities: ['text-analysis'], dependencies: [], estimated_cost: 1 }]
} as unknown as Plan

/** A handle the test drives: plan, commit the step, settle. */
function drivenHandle(id: string) {
  const progress: Array<(e: ProgressEvent) => void> = []
  const step: Array<(e: StepEvent) => void> = []
  const done = Promise.withResolvers<TaskResult>()
  const handle: TaskHandle = {
    id: id as TaskHandle['id'],
    done: done.promise,
    on: ((event: 'progress' | 'step', l: never) => {
      ;(event === 'progress' ? progress : step).push(l)
      return () => {}
    }) as TaskHandle['on'],
    cancel: () => {}
  }
  return {
    handle,
    planned: () => {
      for (const l of progress) l({ taskId: id, phase: 'planned', steps: 1, stepsDone: 0, plan })
    },
    committed: () => {
      for (const l of step) l({ taskId: id, stepId: 's1', status: 'succeeded', attempt: 1, agent: 'word-stats', peer: 'p2', output: { words: 4 } })
    },
    settle: () =>
      done.resolve({
        id,
        status: 'succeeded',
        output: { words: 4 },
        cost: 1,
        plan,
        steps: [{ id: 's1', agent: 'word-stats', peer: 'p2', ms: 3, status: 'succeeded', output: { words: 4 } }]
      })
  }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('journalTask: what a tab reloading a moment later finds', () => {
  it('a committed step and the settled task are saved at once, not after the batch window', async () => {
    vi.useFakeTimers()
    // Which writes asked to be saved at once (the IndexedDB write of its own) rather than with the next batch.
    const saves: boolean[] = []
    const journal = new Journal(new Y.Doc(), async (now) => {
      saves.push(now)
    })
    const t = drivenHandle('t-reload')
    const journalled = journalTask(journal, t.handle, { description: 'count words', input: 'a b c d' })
    t.planned()
    await vi.advanceTimersByTimeAsync(0)
    expect(journal.get('t-reload')?.status).toBe('planned')

    // The step commits: a reload now must find its output (else the tab carrying the task on offers it again).
    t.committed()
    await vi.advanceTimersByTimeAsync(0)
    expect(journal.get('t-reload')?.steps.find((s) => s.id === 's1')).toMatchObject({ status: 'succeeded', output: { words: 4 } })

    // The task settles: a reload now must find it succeeded, not running.
    t.settle()
    await vi.advanceTimersByTimeAsync(0)
    expect(journal.get('t-reload')?.status).toBe('succeeded')
    // Each of those writes was its own save, started at once: none waited for a timer (none has fired).
    expect(saves).toEqual([true, true, true])
    await journalled
  })

  it('a record written at once is never overwritten by an older one still waiting in the batch', async () => {
    vi.useFakeTimers()
    const journal = new Journal(new Y.Doc(), async () => {})
    const t = drivenHandle('t-order')
    const journalled = journalTask(journal, t.handle, { description: 'count words', input: 'a b c d' })
    t.planned()
    await vi.advanceTimersByTimeAsync(0)
    t.settle()
    await vi.advanceTimersByTimeAsync(0)
    expect(journal.get('t-order')?.status).toBe('succeeded')
    // Whatever timers were pending fire now: the record stays at its latest state.
    await vi.advanceTimersByTimeAsync(1000)
    expect(journal.get('t-order')?.status).toBe('succeeded')
    await journalled
  })
})
