/**
 * Traces of the tasks this tab submits (issue 15): the run's root span and its planning span,
 * bound by task id so the dispatcher hangs steps under them, and `trace(taskId)` /
 * `exportTrace(taskId)` (API.md) over the tab's tracer, donors' verified spans included.
 * It also logs each task's course at info level (module `app:task`), so the Logs page lists
 * a task's records with its trace and span ids, and lets the logger map any record naming a
 * task (or a step's request id) to that task's trace.
 */
import { type ActiveSpan, logger, setLogContextResolver, type Span, type Tracer, toOtlp, withLogContext } from '../core/index.ts'
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
  /**
   * Record the root span of a workflow run just started ('workflow.run', bound to the run id at once, so the
   * dispatcher hangs every step's spans under it: the engine runs each step's plan under the run's id).
   * Call before the handle's first await; ended when the run settles.
   */
  trackRun<H extends { id: string; done: Promise<unknown> }>(handle: H): H
  trace(taskId: string): Promise<TaskTrace>
  exportTrace(taskId: string): Promise<unknown>
}

/** A task id with no trace on this tab. */
export class UnknownTraceError extends OrchestratorError {
  static override readonly defaultMessage: string = 'This tab has no trace of that task'
  override readonly name: string = 'UnknownTraceError'
}

const log = logger('app:task')

/** `taskTracing(tracer)`: the tab's tracer also names the traces of log records (one tracer per tab). */
export function taskTracing(tracer: Tracer): TaskTracing {
  setLogContextResolver((taskId, stepId) => {
    const ctx = (stepId != null ? tracer.scope(`${taskId}/${stepId}`) : undefined) ?? tracer.scope(taskId)
    return ctx != null ? { traceId: ctx.traceId, spanId: ctx.spanId, taskId } : undefined
  })
  /** Log under a span of the task (its run, or a step's when bound). */
  const note = (level: 'info' | 'warn', taskId: string, scope: string, fmt: string, ...args: unknown[]): void => {
    const ctx = tracer.scope(scope) ?? tracer.scope(taskId)
    if (ctx == null) log[level](fmt, ...args)
    else withLogContext({ traceId: ctx.traceId, spanId: ctx.spanId, taskId }, () => log[level](fmt, ...args))
  }
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
      let submittedAt: number | undefined
      const id = handle.id
      const finish = (status: 'ok' | 'error', error?: string): void => {
        const attrs = error != null ? { error: error.slice(0, 200) } : undefined
        plan?.end(status, attrs)
        root?.end(status, attrs)
        if (status === 'ok') note('info', id, id, 'task %s done in %d ms', id, Math.round(performance.now() - (submittedAt ?? performance.now())))
        else note('warn', id, id, 'task %s failed: %s', id, error ?? '')
      }
      handle.on('progress', (e) => {
        if (e.phase === 'planning' && submittedAt == null) {
          submittedAt = performance.now()
          // Tracing off (setObservability): the task is logged, not traced.
          if (tracer.enabled) {
            root = tracer.start('task.run', undefined, { 'task.id': id })
            tracer.bind(id, root)
            plan = tracer.start('plan', root)
          }
          note('info', id, id, 'task %s submitted', id)
        } else if (e.phase === 'planned') {
          plan?.end('ok', { planner: e.planner ?? '', steps: e.steps })
          note('info', id, id, 'task %s planned by %s: %d steps', id, e.planner ?? 'the planner', e.steps ?? 0)
        }
      })
      handle.on('step', (e) => {
        const scope = `${id}/${e.stepId}`
        if (e.status === 'succeeded') note('info', id, scope, 'task %s step %s done by %s on %s', id, e.stepId, e.agent.slice(0, 12), e.peer)
        else if (e.status === 'failed' || e.status === 'retrying')
          note('warn', id, scope, 'task %s step %s %s (attempt %d on %s): %s', id, e.stepId, e.status, e.attempt, e.peer, e.error ?? '')
      })
      handle.done.then(
        () => finish('ok'),
        (err: unknown) => finish('error', err instanceof Error ? err.message : String(err))
      )
      return handle
    },
    trackRun(handle) {
      const id = handle.id
      const root = tracer.enabled ? tracer.start('workflow.run', undefined, { 'task.id': id }) : undefined
      if (root != null) tracer.bind(id, root)
      note('info', id, id, 'workflow run %s started', id)
      handle.done.then(
        () => {
          root?.end('ok')
          note('info', id, id, 'workflow run %s done', id)
        },
        (err: unknown) => {
          const error = err instanceof Error ? err.message : String(err)
          root?.end('error', { error: error.slice(0, 200) })
          note('warn', id, id, 'workflow run %s failed: %s', id, error)
        }
      )
      return handle
    },
    trace: get,
    exportTrace: async (taskId) => toOtlp((await get(taskId)).spans)
  }
}
