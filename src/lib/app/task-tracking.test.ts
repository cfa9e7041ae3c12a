import { afterEach, describe, expect, it, vi } from 'vitest'
import { type TaskHandle, type TaskRequest, type TaskResult, toTaskId } from '../orchestrator/index.ts'
import { SETTLED_SAVE_WAIT_MS, taskTracking } from './task-tracking.ts'

/** A handle whose events and end the test drives. */
function fakeHandle(id: string) {
  const listeners: Array<(e: unknown) => void> = []
  const { promise, resolve, reject } = Promise.withResolvers<TaskResult>()
  promise.catch(() => {})
  const handle: TaskHandle = {
    id: toTaskId(id),
    done: promise,
    on: ((_event: string, l: (e: unknown) => void) => {
      listeners.push(l)
      return () => {}
    }) as TaskHandle['on'],
    cancel: () => {}
  }
  return {
    handle,
    emit: () => {
      for (const l of listeners) l({})
    },
    succeed: () => resolve({} as TaskResult),
    fail: () => reject(new Error('x'))
  }
}

const settle = async (): Promise<void> => {
  await new Promise((r) => setTimeout(r, 0))
}

function setup(keepFinished?: number) {
  const fakes = new Map<string, ReturnType<typeof fakeHandle>>()
  const journaled: Array<[string, TaskRequest]> = []
  let changes = 0
  let n = 0
  const tracking = taskTracking({ keepFinished })({
    orchestrator: {
      submit: () => {
        const f = fakeHandle(`t-task${String(++n).padStart(4, '0')}`)
        fakes.set(f.handle.id, f)
        return f.handle
      }
    },
    journal: {
      record: async (h, r, opts) => {
        journaled.push([h.id, r])
        // The settled record is saved as soon as the task settles (the journal's own timing is tested in task-journal).
        await h.done.catch(() => {})
        opts.onSettledSaved()
      }
    },
    changes: { changed: () => changes++ }
  })
  return { tracking, fakes, journaled, changes: () => changes }
}

describe('taskTracking', () => {
  it('journals each task, keeps its handle, and tells of every event and of the end', async () => {
    const { tracking, fakes, journaled, changes } = setup()
    const h = tracking.submit({ description: 'd' })
    expect(tracking.task(h.id)).toBe(h)
    expect(journaled).toEqual([[h.id, { description: 'd' }]])
    const f = fakes.get(h.id)!
    f.emit()
    f.emit()
    expect(changes()).toBe(4) // two events, each heard as 'step' and 'progress' by the fake
    f.succeed()
    await settle()
    expect(changes()).toBe(5)
    expect(tracking.completed).toBe(1)
    expect(tracking.task('unknown')).toBeUndefined()
  })

  it('counts only successes as completed', async () => {
    const { tracking, fakes } = setup()
    const a = tracking.submit({ description: 'a' })
    const b = tracking.submit({ description: 'b' })
    fakes.get(a.id)!.fail()
    fakes.get(b.id)!.succeed()
    await settle()
    expect(tracking.completed).toBe(1)
  })

  it('keeps the last keepFinished finished handles and every running one', async () => {
    const { tracking, fakes } = setup(2)
    const running = tracking.submit({ description: 'still running' })
    const done = [1, 2, 3].map(() => tracking.submit({ description: 'x' }))
    for (const h of done) fakes.get(h.id)!.succeed()
    await settle()
    expect(done.map((h) => tracking.task(h.id) != null)).toEqual([false, true, true])
    expect(tracking.task(running.id)).toBe(running)
  })
})

describe('taskTracking: done waits for the settled record (a reload right after it finds the task finished)', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  function slowJournal() {
    const saves = new Map<string, () => void>()
    const tracking = taskTracking()({
      orchestrator: {
        submit: () => {
          const f = fakeHandle(`t-slow${String(saves.size + 1).padStart(4, '0')}`)
          fakes.set(f.handle.id, f)
          return f.handle
        }
      },
      journal: {
        record: (h, _r, opts) =>
          new Promise<void>((resolve) => {
            saves.set(h.id, () => {
              opts.onSettledSaved()
              resolve()
            })
          })
      },
      changes: { changed: () => {} }
    })
    const fakes = new Map<string, ReturnType<typeof fakeHandle>>()
    return { tracking, fakes, saves }
  }

  const state = async (p: Promise<unknown>): Promise<string> => {
    let s = 'pending'
    p.then(
      () => (s = 'resolved'),
      () => (s = 'rejected')
    )
    await settle()
    return s
  }

  it('a succeeded task’s done resolves only once its settled record is saved', async () => {
    const { tracking, fakes, saves } = slowJournal()
    const h = tracking.submit({ description: 'd' })
    expect(tracking.task(h.id)).toBe(h)
    fakes.get(h.id)!.succeed()
    expect(await state(h.done)).toBe('pending')
    saves.get(h.id)!()
    expect(await state(h.done)).toBe('resolved')
  })

  it('a failed task’s done rejects with its own error once its record is saved', async () => {
    const { tracking, fakes, saves } = slowJournal()
    const h = tracking.submit({ description: 'd' })
    fakes.get(h.id)!.fail()
    expect(await state(h.done)).toBe('pending')
    saves.get(h.id)!()
    await expect(h.done).rejects.toThrow('x')
  })

  it('a save that never ends delays done by SETTLED_SAVE_WAIT_MS at most', async () => {
    vi.useFakeTimers()
    const { tracking, fakes } = slowJournal()
    const h = tracking.submit({ description: 'd' })
    fakes.get(h.id)!.succeed()
    await vi.advanceTimersByTimeAsync(SETTLED_SAVE_WAIT_MS - 1)
    let resolved = false
    void h.done.then(() => (resolved = true))
    await vi.advanceTimersByTimeAsync(0)
    expect(resolved).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(resolved).toBe(true)
  })
})
