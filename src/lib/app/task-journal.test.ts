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
})
