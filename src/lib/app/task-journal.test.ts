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

describe('journalTask: byte outputs kept beside the journal (issue 14)', () => {
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4])

  it('an image output is kept with its media type and comes back in the past task after a reload', async () => {
    const { MemoryTaskMedia } = await import('./task-media.ts')
    const { pastTask } = await import('./task-history.ts')
    const journal = new Journal(new Y.Doc(), async () => {})
    const media = new MemoryTaskMedia()
    const result = { status: 'succeeded', steps: [{ id: 's1', agent: 'a', peer: 'p', ms: 1, status: 'succeeded', output: png }], cost: 0 }
    await journalTask(journal, settledHandle('t-img', result as unknown as TaskResult), { description: 'thumbnail' }, undefined, { media })
    const record = journal.get('t-img')!
    expect(record.steps[0]!.output).toBeUndefined() // the journal holds JSON only
    expect(record.data).toMatchObject({ media: { s1: { mediaType: 'image/png', size: png.byteLength } } })
    const past = pastTask(record, media)
    expect(past.notKept).toEqual([])
    expect((await past.done).steps[0]!.output).toEqual(png)
    // Without the store (an older reader) the output is simply missing.
    expect((await pastTask(record).done).steps[0]!.output).toBeUndefined()
  })

  it('an output over the cap is not kept, and the past task says why', async () => {
    const { MemoryTaskMedia, MAX_KEPT_MEDIA_BYTES } = await import('./task-media.ts')
    const { pastTask } = await import('./task-history.ts')
    const journal = new Journal(new Y.Doc(), async () => {})
    const media = new MemoryTaskMedia()
    const big = new Uint8Array(MAX_KEPT_MEDIA_BYTES + 1)
    big.set(png)
    const result = { status: 'succeeded', steps: [{ id: 's1', agent: 'a', peer: 'p', ms: 1, status: 'succeeded', output: big }], cost: 0 }
    await journalTask(journal, settledHandle('t-big', result as unknown as TaskResult), { description: 'huge' }, undefined, { media })
    expect((await media.get('t-big')).size).toBe(0)
    const past = pastTask(journal.get('t-big')!, media)
    expect(past.notKept).toHaveLength(1)
    expect(past.notKept[0]).toMatchObject({ stepId: 's1' })
    expect(past.notKept[0]!.reason).toMatch(/^This output \(8\.0 MiB\) is larger than the 8\.0 MiB the task history keeps, so it was not saved/)
  })

  it('a file input (bytes or a Blob, with or without the options line) is kept with its media type and comes back in the past task', async () => {
    const { MemoryTaskMedia } = await import('./task-media.ts')
    const { pastTask } = await import('./task-history.ts')
    const journal = new Journal(new Y.Doc(), async () => {})
    const media = new MemoryTaskMedia()
    const withOptions = new Uint8Array([...new TextEncoder().encode('{"maxSide":96}\n'), ...png])
    await journalTask(journal, settledHandle('t-in', {}), { description: 'thumbnail', input: withOptions }, undefined, { media })
    const record = journal.get('t-in')!
    expect(record.data).toMatchObject({ inputDropped: true, inputMedia: { mediaType: 'image/png', size: withOptions.byteLength } })
    const input = await pastTask(record, media).input
    expect(input?.bytes).toEqual(withOptions)
    expect(input?.file).toEqual(png)
    expect(input?.options).toBe('{"maxSide":96}')
    // A File from the Submit page's picker, as window.zerostate.submit takes it.
    await journalTask(journal, settledHandle('t-blob', {}), { description: 'a blob', input: new Blob([png]) as never }, undefined, { media })
    expect((await pastTask(journal.get('t-blob')!, media).input)?.file).toEqual(png)
    // A JSON input is journalled as before, nothing kept beside it.
    await journalTask(journal, settledHandle('t-json', {}), { description: 'json', input: { a: 1 } }, undefined, { media })
    expect(journal.get('t-json')!.data).not.toHaveProperty('inputMedia')
    expect(pastTask(journal.get('t-json')!, media).input).toBeUndefined()
  })

  it('a file input over the cap is not kept (a Blob is not even read), and the past task says why', async () => {
    const { MemoryTaskMedia, MAX_KEPT_MEDIA_BYTES } = await import('./task-media.ts')
    const { pastTask } = await import('./task-history.ts')
    const journal = new Journal(new Y.Doc(), async () => {})
    const media = new MemoryTaskMedia()
    let read = false
    class HugeBlob extends Blob {
      override get size() {
        return MAX_KEPT_MEDIA_BYTES + 1
      }
      override async arrayBuffer(): Promise<ArrayBuffer> {
        read = true
        return new ArrayBuffer(0)
      }
    }
    const blob = new HugeBlob([])
    await journalTask(journal, settledHandle('t-huge', {}), { description: 'huge', input: blob as never }, undefined, { media })
    expect(read).toBe(false)
    expect((await media.get('t-huge')).size).toBe(0)
    const past = pastTask(journal.get('t-huge')!, media)
    expect(past.input).toBeUndefined()
    expect(past.inputNotKept).toMatch(/^This task's input \(8\.0 MiB\) is larger than the 8\.0 MiB the task history keeps/)
  })

  it('the store keeps its total under the cap by dropping the oldest outputs', async () => {
    const { MemoryTaskMedia, MEDIA_STORE_BYTES, MAX_KEPT_MEDIA_BYTES } = await import('./task-media.ts')
    const media = new MemoryTaskMedia()
    const n = Math.ceil(MEDIA_STORE_BYTES / MAX_KEPT_MEDIA_BYTES) + 2
    for (let i = 0; i < n; i++) await media.put(`t${i}`, 's', { bytes: new Uint8Array(MAX_KEPT_MEDIA_BYTES), mediaType: 'image/png' })
    expect((await media.get('t0')).size).toBe(0)
    expect((await media.get(`t${n - 1}`)).size).toBe(1)
  })
})
