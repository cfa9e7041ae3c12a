/**
 * The tasks this tab submitted: their live handles (`task(id)`), their journal
 * records, the count of completed ones, and a change notice on every event.
 */
import { settledWithin } from '../core/index.ts'
import type { TaskHandle, TaskRequest } from '../orchestrator/index.ts'

/**
 * The longest a submitted task's `done` waits for its settled journal record to be saved (a slow or
 * broken disk delays the answer by this much at most, never withholds it).
 */
export const SETTLED_SAVE_WAIT_MS = 2000

/** Options of task tracking. */
export interface TaskTrackingInit {
  /**
   * Finished handles kept for `task(id)`, oldest dropped first. Default 200, what the
   * orchestrator keeps in `tasks()`: a handle holds its result (up to the 10 MiB output
   * cap), so keeping every one would grow without bound in a busy tab.
   */
  keepFinished?: number
}

/** What task tracking needs. */
export interface TaskTrackingComponents {
  orchestrator: { submit(request: TaskRequest): TaskHandle }
  /**
   * Journal a task as it progresses (`journalTask` over this profile's journal); `onSettledSaved` once
   * its settled record is saved (before byte outputs kept beside it), the promise once all is.
   */
  journal: { record(handle: TaskHandle, request: TaskRequest, opts: { onSettledSaved: () => void }): Promise<void> }
  changes: { changed(): void }
  /** Holds each task's run lock while this tab runs it, until its journal record is saved (so no other tab carries it on). */
  locks?: { hold(handle: TaskHandle, saved: Promise<unknown>): void }
}

/** Task tracking. */
export interface TaskTracking {
  submit(request: TaskRequest): TaskHandle
  /** The live handle of a task submitted here, while it is kept. */
  task(id: string): TaskHandle | undefined
  /** Tasks submitted here that succeeded. */
  readonly completed: number
}

/**
 * `inner` as journalled by `record`: a handle whose `done` settles once the task's end is saved too (at
 * most {@link SETTLED_SAVE_WAIT_MS} later), so a script that reloads or closes the tab the moment a task
 * is done finds it finished, never "running" and carried on by the next tab. `saved`: all is saved
 * (byte outputs kept beside the journal included). `record` must journal `inner`, not this handle.
 */
export function savedHandle(inner: TaskHandle, record: (opts: { onSettledSaved: () => void }) => Promise<void>): { handle: TaskHandle; saved: Promise<void> } {
  const settledSaved = Promise.withResolvers<void>()
  const saved = record({ onSettledSaved: () => settledSaved.resolve() })
  saved.then(settledSaved.resolve, settledSaved.resolve)
  // `finally` waits for the save (settledWithin never rejects) and keeps the task's own result or error.
  const done = inner.done.finally(() => settledWithin(settledSaved.promise, SETTLED_SAVE_WAIT_MS))
  done.catch(() => {})
  return { handle: { id: inner.id, done, on: inner.on.bind(inner), cancel: inner.cancel.bind(inner) }, saved }
}

/** `taskTracking(init)(components)`. */
export function taskTracking(init: TaskTrackingInit = {}): (components: TaskTrackingComponents) => TaskTracking {
  const keepFinished = init.keepFinished ?? 200
  return ({ orchestrator, journal, changes, locks }) => {
    const handles = new Map<string, TaskHandle>()
    /** Finished task ids, oldest first. */
    const finished = new Set<string>()
    let completed = 0
    const changed = (): void => {
      changes.changed()
    }
    const settle = (id: string): void => {
      finished.add(id)
      for (const old of finished) {
        if (finished.size <= keepFinished) break
        finished.delete(old)
        handles.delete(old)
      }
      changed()
    }
    return {
      submit(request) {
        const inner = orchestrator.submit(request)
        const { handle, saved } = savedHandle(inner, (opts) => journal.record(inner, request, opts))
        handles.set(handle.id, handle)
        locks?.hold(handle, saved)
        handle.on('step', changed)
        handle.on('progress', changed)
        handle.done.then(
          () => {
            completed++
            settle(handle.id)
          },
          () => {
            settle(handle.id)
          }
        )
        return handle
      },
      task: (id) => handles.get(id),
      get completed() {
        return completed
      }
    }
  }
}
