/**
 * Traces of the tasks this tab submits (issue 15): the run's root span and its planning span,
 * bound by task id so the dispatcher hangs steps under them, and `trace(taskId)` /
 * `exportTrace(taskId)` (API.md) over the tab's tracer, donors' verified spans included.
 */
import { type ActiveSpan, type Span, type Tracer, toOtlp } from '../core/index.ts'
import { OrchestratorError, type TaskHandle } from '../orchestrator/index.ts'

/** How long reading a trace waits for donors' seals still on their way (a donor seals within ~50 ms). */
export const SEAL_READ_WAIT_MS = 1500

/** What `trace(taskId)` returns. */
export interface TaskTrace {
  traceId: string
  spans: Span[]
}

/** The trace side of the app: wrap each submitted handle, read traces back. */
export interface TaskTracing {
  /** Record the run and planning spans of a task just submitted (call before the handle's first await). */
  track<H extends TaskHandle>(handle: H): H
  trace(taskId: string): Promise<TaskTrace>
  exportTrace(taskId: string): Promise<unknown>
}

/** A task id with no trace on this tab. */
export class UnknownTraceError extends OrchestratorError {
  static override readonly defaultMessage: string = 'This tab has no trace of that task'
  override readonly name: string = 'UnknownTraceError'
}

/** `taskTracing(tracer)`. */
export function taskTracing(tracer: Tracer): TaskTracing {
  const get = async (taskId: string): Promise<TaskTrace> => {
    const ctx = tracer.scope(taskId)
    if (ctx == null)
      throw new UnknownTraceError(`This tab has no trace of task ${String(taskId).slice(0, 80)} (traces are kept for the latest tasks of this tab)`)
    // Donors' spans are verified here, not on the task's path; seals still on their way are waited for a moment.
    await tracer.settle(ctx.traceId, SEAL_READ_WAIT_MS)
    return { traceId: ctx.traceId, spans: tracer.spans(ctx.traceId) }
  }
  return {
    track(handle) {
      let root: ActiveSpan | undefined
      let plan: ActiveSpan | undefined
      const finish = (status: 'ok' | 'error', error?: string): void => {
        const attrs = error != null ? { error: error.slice(0, 200) } : undefined
        plan?.end(status, attrs)
        root?.end(status, attrs)
      }
      handle.on('progress', (e) => {
        if (e.phase === 'planning' && root == null) {
          root = tracer.start('task.run', undefined, { 'task.id': handle.id })
          tracer.bind(handle.id, root)
          plan = tracer.start('plan', root)
        } else if (e.phase === 'planned') plan?.end('ok', { planner: e.planner ?? '', steps: e.steps })
      })
      handle.done.then(
        () => finish('ok'),
        (err: unknown) => finish('error', err instanceof Error ? err.message : String(err))
      )
      return handle
    },
    trace: get,
    exportTrace: async (taskId) => toOtlp((await get(taskId)).spans)
  }
}
