import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { Journal } from '../memory/index.ts'
import { journalTask } from './task-journal.ts'
import { taskHistory } from './task-history.ts'
import type { Plan, ProgressEvent, StepEvent, TaskHandle, TaskResult, TaskSummary } from '../orchestrator/index.ts'

const plan = {
  planner: 'rules',
  subtasks: [
    { id: 's1', description: 'summarize', capabilities: ['summarization'], dependencies: [], estimated_cost: 1 },
    { id: 's2', description: 'hash', capabilities: ['hashing'], dependencies: ['s1'], estimated_cost: 1 }
  ]
} as unknown as Plan

/** A handle that emits a plan and two steps, then settles. */
function scriptedHandle(id: string, outcome: 'ok' | Error): TaskHandle {
  const listeners: { progress: Array<(e: ProgressEvent) => void>; step: Array<(e: StepEvent) => void> } = { progress: [], step: [] }
  const done = Promise.withResolvers<TaskResult>()
  done.promise.catch(() => {})
  queueMicrotask(() => {
    for (const l of listeners.progress) l({ taskId: id, phase: 'planned', steps: 2, stepsDone: 0, plan })
    for (const sid of ['s1', 's2'])
      for (const l of listeners.step)
        l({
          taskId: id,
          stepId: sid,
          status: 'succeeded',
          attempt: 1,
          agent: `a-${sid}`,
          peer: 'p2',
          reasoning: `why ${sid}`,
          route: {
            strategy: 'balanced',
            score: 0.7,
            criteria: { cost: 1, quality: 0.5, speed: 0.2, region: 0, reputation: 0.5, load: 1, specialization: 1 },
            considered: 1,
            eligibleAgents: 1,
            pairs: 2,
            rank: 2
          }
        })
    if (outcome === 'ok')
      done.resolve({
        id,
        status: 'succeeded',
        output: 'abc',
        cost: 2,
        plan,
        steps: [
          { id: 's1', agent: 'a-s1', peer: 'p2', ms: 5, status: 'succeeded', output: { summary: 'short' } },
          { id: 's2', agent: 'a-s2', peer: 'p2', ms: 6, status: 'succeeded', output: 'abc' }
        ]
      })
    else done.reject(outcome)
  })
  return {
    id: id as TaskHandle['id'],
    done: done.promise,
    on: ((event: 'progress' | 'step', l: never) => {
      listeners[event].push(l)
      return () => {}
    }) as TaskHandle['on'],
    cancel: () => {}
  }
}

describe('task history (the journal read back)', () => {
  it('lists past tasks newest first, merged with live ones, with status, cost, error and times', async () => {
    const journal = new Journal(new Y.Doc(), async () => {})
    await journalTask(journal, scriptedHandle('task-a', 'ok'), { description: 'summarize: x, then hash it', input: 'x' })
    await new Promise((r) => setTimeout(r, 5))
    await journalTask(journal, scriptedHandle('task-b', new Error('no donor')), { description: 'second', agent: 'hash', preferences: { strategy: 'cost' } })
    const history = taskHistory(journal)
    const past = history.tasks([])
    expect(past.map((t) => t.id)).toEqual(['task-b', 'task-a'])
    expect(past[1]).toMatchObject({ status: 'succeeded', description: 'summarize: x, then hash it', cost: 2, steps: 2, stepsDone: 2, planner: 'rules' })
    expect(past[1].finishedAt).toBeGreaterThanOrEqual(past[1].createdAt)
    expect(past[0]).toMatchObject({ status: 'failed', error: 'no donor' })
    const live: TaskSummary = {
      id: 'task-a' as TaskSummary['id'],
      description: 'live one',
      status: 'running',
      steps: 2,
      stepsDone: 1,
      cost: 0,
      createdAt: Date.now() + 1000
    }
    const merged = history.tasks([live])
    expect(merged.map((t) => [t.id, t.status])).toEqual([
      ['task-a', 'running'],
      ['task-b', 'failed']
    ])
  })

  it("a past task's handle replays its steps (with routes) and resolves with the recorded result; a failed one rejects with its error", async () => {
    const journal = new Journal(new Y.Doc(), async () => {})
    await journalTask(journal, scriptedHandle('task-a', 'ok'), { description: 'summarize then hash', input: 'x' })
    await journalTask(journal, scriptedHandle('task-b', new Error('no donor')), { description: 'fails' })
    const history = taskHistory(journal)
    const h = history.task('task-a')!
    expect(h.past).toBe(true)
    const steps: StepEvent[] = []
    const phases: string[] = []
    h.on('step', (e) => steps.push(e))
    h.on('progress', (e) => phases.push(e.phase))
    const result = await h.done
    await Promise.resolve()
    expect(steps.map((s) => [s.stepId, s.status, s.reasoning, s.route?.rank])).toEqual([
      ['s1', 'succeeded', 'why s1', 2],
      ['s2', 'succeeded', 'why s2', 2]
    ])
    expect(phases).toEqual(['planned', 'succeeded'])
    expect(result.output).toBe('abc')
    expect(result.steps.map((s) => [s.id, s.output, s.ms])).toEqual([
      ['s1', { summary: 'short' }, 5],
      ['s2', 'abc', 6]
    ])
    await expect(history.task('task-b')!.done).rejects.toThrow('no donor')
    expect(history.task('nope')).toBeUndefined()
  })

  it('keeps the request for Run again; a large or bytes input is not journalled and says so, cheaply', async () => {
    const journal = new Journal(new Y.Doc(), async () => {})
    await journalTask(journal, scriptedHandle('t-small', 'ok'), {
      description: 'd',
      input: 'x',
      agent: 'hash',
      capabilities: ['hashing'],
      preferences: { strategy: 'cost', custom_score: () => 1 } as never
    })
    expect(taskHistory(journal).request('t-small')).toEqual({
      description: 'd',
      input: 'x',
      agent: 'hash',
      capabilities: ['hashing'],
      preferences: { strategy: 'cost' }
    })
    // 64 MiB of bytes: JSON.stringify of it would take seconds and gigabytes; skipping must be immediate.
    const big = new Uint8Array(64 * 1024 * 1024)
    const started = performance.now()
    await journalTask(journal, scriptedHandle('t-bytes', 'ok'), { description: 'bytes', input: { file: big } })
    expect(performance.now() - started).toBeLessThan(2000)
    expect(taskHistory(journal).request('t-bytes')).toEqual({ description: 'bytes', inputDropped: true })
    await journalTask(journal, scriptedHandle('t-large', 'ok'), { description: 'large', input: 'y'.repeat(20_000) })
    expect(taskHistory(journal).request('t-large')).toMatchObject({ inputDropped: true })
    expect(taskHistory(journal).request('t-large')).not.toHaveProperty('input')
  })
})

describe('task history reads the journal only when it changed', () => {
  it('re-reads after a write (another tab or this one), not on every call', async () => {
    const journal = new Journal(new Y.Doc(), async () => {})
    let lists = 0
    const counting = {
      list: () => {
        lists++
        return journal.list()
      },
      get: (id: string) => journal.get(id),
      get version() {
        return journal.version
      }
    }
    const history = taskHistory(counting)
    expect(history.tasks([])).toEqual([])
    history.tasks([])
    expect(lists).toBe(1)
    await journalTask(journal, scriptedHandle('task-c', 'ok'), { description: 'c' })
    expect(history.tasks([]).map((t) => t.id)).toEqual(['task-c'])
    expect(lists).toBe(2)
  })
})
