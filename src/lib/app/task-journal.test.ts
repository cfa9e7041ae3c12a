import * as Y from 'yjs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Journal } from '../memory/index.ts'
import { journalTask } from './task-journal.ts'
import type { Plan, ProgressEvent, StepEvent, TaskHandle, TaskResult } from '../orchestrator/index.ts'

function settledHandle(id: string, result: Partial<TaskResult> | Error): TaskHandle {
  const done =
    result instanceof Error ? Promise.reject(result) : Promise.resolve({ status: 'succeeded', steps: [], cost: 0, ...result } as unknown as TaskResult)
  done.catch(() => {})
  return { id: id as TaskHandle['id'], done, on: () => () => {}, cancel: () => {} }
}

const drivenPlan = {
  planner: 'direct',
  subtasks: [{ id: 's1', description: 'count words', capabilities: ['text-analysis'], dependencies: [], estimated_cost: 1 }]
} as unknown as Plan

/** A handle the test drives: plan, dispatch and commit the step, settle. */
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
      for (const l of progress) l({ taskId: id, phase: 'planned', steps: 1, stepsDone: 0, plan: drivenPlan })
    },
    dispatched: () => {
      for (const l of step) l({ taskId: id, stepId: 's1', status: 'dispatched', attempt: 1, agent: 'word-stats', peer: 'p2' })
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
        plan: drivenPlan,
        steps: [{ id: 's1', agent: 'word-stats', peer: 'p2', ms: 3, status: 'succeeded', output: { words: 4 } }]
      })
  }
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
    vi.useFakeTimers()
    const doc = new Y.Doc()
    const journal = new Journal(doc, async () => {})
    class Page extends EventTarget {
      visibilityState = 'visible'
    }
    const page = new Page()
    // A running task's progress is rewritten every 250 ms, then waits for the 50 ms batch. (A settled
    // task's record no longer waits: it is written at the end of its turn, see below.)
    const t = drivenHandle('t-leave')
    const saved = journalTask(journal, t.handle, { description: 'left behind?' }, page as never)
    t.planned()
    t.dispatched()
    await vi.advanceTimersByTimeAsync(260)
    expect(journal.get('t-leave')?.steps.find((s) => s.id === 's1')?.status).toBe('pending') // waiting for the 50 ms batch
    page.dispatchEvent(new Event('pagehide'))
    expect(journal.get('t-leave')?.steps.find((s) => s.id === 's1')?.status).toBe('dispatched')
    t.settle()
    await vi.advanceTimersByTimeAsync(0)
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

describe('journalTask: onSettledSaved (what a submitted task’s done waits for)', () => {
  it('is called once the settled record is saved, not before, and does not wait for byte outputs', async () => {
    const { MemoryTaskMedia } = await import('./task-media.ts')
    // Saves the test lets complete one by one: the settled record's write is the last one asked.
    const pending: Array<() => void> = []
    const journal = new Journal(new Y.Doc(), () => new Promise<void>((resolve) => pending.push(resolve)))
    const media = new MemoryTaskMedia()
    const stuck = Promise.withResolvers<void>()
    const put = vi.spyOn(media, 'put').mockReturnValue(stuck.promise)
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 9])
    const result = { status: 'succeeded', steps: [{ id: 's1', agent: 'a', peer: 'p', ms: 1, status: 'succeeded', output: png }], cost: 0 }
    let calls = 0
    const all = journalTask(journal, settledHandle('t-end', result as unknown as TaskResult), { description: 'd' }, undefined, {
      media,
      onSettledSaved: () => calls++
    })
    await vi.waitFor(() => expect(pending.length).toBeGreaterThan(0))
    expect(journal.get('t-end')?.status).toBe('succeeded')
    expect(calls).toBe(0) // written into the doc, not yet saved
    for (const resolve of pending.splice(0)) resolve()
    await vi.waitFor(() => expect(calls).toBe(1))
    // The image is still being kept: the whole journalling is not over, the settled record is.
    expect(put).toHaveBeenCalledOnce()
    let over = false
    void all.then(() => (over = true))
    await Promise.resolve()
    expect(over).toBe(false)
    stuck.resolve()
    await vi.waitFor(() => expect(pending.length).toBeGreaterThan(0))
    for (const resolve of pending.splice(0)) resolve()
    await all
    expect(calls).toBe(1)
  })
})
