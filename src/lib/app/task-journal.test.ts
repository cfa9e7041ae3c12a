import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { Journal } from '../memory/index.ts'
import { journalTask } from './task-journal.ts'
import type { TaskHandle, TaskResult } from '../orchestrator/index.ts'

function settledHandle(id: string, result: Partial<TaskResult> | Error): TaskHandle {
  const done =
    result instanceof Error ? Promise.reject(result) : Promise.resolve({ status: 'succeeded', steps: [], cost: 0, ...result } as unknown as TaskResult)
  done.catch(() => {})
  return { id: id as TaskHandle['id'], done, on: () => () => {}, cancel: () => {} }
}

describe('journalTask', () => {
  it('writes the records of tasks that end together in one journal update', async () => {
    const doc = new Y.Doc()
    const journal = new Journal(doc, async () => {})
    let updates = 0
    doc.on('update', () => {
      updates++
    })
    await Promise.all([1, 2, 3, 4, 5].map((i) => journalTask(journal, settledHandle(`t${i}`, { cost: i }), { description: `task ${i}` })))
    expect(updates).toBe(1)
    expect(
      journal
        .list()
        .map((t) => t.id)
        .sort()
    ).toEqual(['t1', 't2', 't3', 't4', 't5'])
    expect(journal.get('t3')).toMatchObject({ status: 'succeeded', description: 'task 3', data: { cost: 3 } })
  })

  it('writes what is waiting at once when the page is left', async () => {
    const doc = new Y.Doc()
    const journal = new Journal(doc, async () => {})
    class Page extends EventTarget {
      visibilityState = 'visible'
    }
    const page = new Page()
    const saved = journalTask(journal, settledHandle('t-leave', {}), { description: 'left behind?' }, page as never)
    await new Promise((r) => setTimeout(r, 5))
    expect(journal.get('t-leave')).toBeUndefined() // waiting for the 50 ms batch
    page.dispatchEvent(new Event('pagehide'))
    expect(journal.get('t-leave')?.status).toBe('succeeded')
    await saved
  })

  it('a record the journal refuses does not lose the others of its batch', async () => {
    const doc = new Y.Doc()
    const journal = new Journal(doc, async () => {})
    await Promise.all([
      journalTask(journal, settledHandle('good-1', {}), { description: 'a' }),
      journalTask(journal, settledHandle('', {}), { description: 'an id the schema refuses' }),
      journalTask(journal, settledHandle('good-2', new Error('boom')), { description: 'b' })
    ])
    expect(journal.get('good-1')?.status).toBe('succeeded')
    expect(journal.get('good-2')).toMatchObject({ status: 'failed', data: { error: 'boom' } })
    expect(journal.list()).toHaveLength(2)
  })

  it('journals the plan at once (a reload right after it must find the task to carry on)', async () => {
    const doc = new Y.Doc()
    // How each write asked to be saved: the plan's must not wait for IndexedDB's batch window (issue 14).
    const saves: boolean[] = []
    const journal = new Journal(doc, async (now) => {
      saves.push(now)
    })
    class Page extends EventTarget {
      visibilityState = 'visible'
    }
    const page = new Page()
    const progress = new Set<(e: unknown) => void>()
    const done = Promise.withResolvers<TaskResult>()
    const handle = {
      id: 't-planned' as TaskHandle['id'],
      done: done.promise,
      on: (event: string, l: (e: unknown) => void) => {
        if (event === 'progress') progress.add(l)
        return () => {}
      },
      cancel: () => {}
    } as unknown as TaskHandle
    const saved = journalTask(journal, handle, { description: 'two steps', input: 'text' }, page as never)
    const plan = { subtasks: [{ id: 's1', description: 'summarize', capabilities: ['text-summarization'], dependencies: [], input: { from: 'task.input' } }] }
    for (const l of progress) l({ taskId: 't-planned', phase: 'planned', steps: 1, stepsDone: 0, plan })
    // The tab goes away well before the 250 ms window of running tasks has passed.
    await new Promise((r) => setTimeout(r, 5))
    expect(saves).toEqual([true])
    page.dispatchEvent(new Event('pagehide'))
    expect(journal.get('t-planned')).toMatchObject({ status: 'planned', data: { input: 'text', plan } })
    done.resolve({ id: 't-planned', status: 'succeeded', steps: [], cost: 0 } as unknown as TaskResult)
    await saved
  })
})
