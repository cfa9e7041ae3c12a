/**
 * Plain `submit` tasks are durable too: a task this profile submitted that was still running
 * when its tab went away is carried on by the next tab that gets its lock (the same Web Lock
 * as workflow runs, held by the submitting tab while the task runs). Its journal record holds
 * the plan, the input and every finished step's output: the steps that finished are kept, the
 * rest run through the orchestrator's dispatcher under the same task id, so each step keeps
 * its idempotency key (`<taskId>/<stepId>`). A task whose plan, input or a finished step's
 * output was not kept cannot be carried on: it ends failed with a sentence saying to run it again.
 */
import { TypedEventEmitter, listen, logger, settledWithin } from '../../core/index.ts'
import type { TaskRecord } from '../../memory/index.ts'
import {
  InvalidTaskRequestError,
  OrchestratorError,
  TaskCancelledError,
  resolveInput,
  resolvePreferences,
  toError,
  type AgentCatalog,
  type Orchestrator,
  type Plan,
  type TaskEvents,
  type TaskHandle,
  type TaskId,
  type TaskRequest,
  type TaskResult
} from '../../orchestrator/index.ts'
import { requestFromRecord } from '../task-history.ts'
import type { JournalTaskOptions } from '../task-journal.ts'
import { savedHandle } from '../task-tracking.ts'
import { type RunLease, type RunLocks, runLockName } from './run-locks.ts'
import { CATALOG_WAIT_MS } from './workflow-runs.ts'

const log = logger('app:task-resume')
const UNFINISHED = new Set(['planning', 'planned', 'running'])
/** An interrupted task older than this is not carried on (it ends failed: run it again). */
export const RESUME_WITHIN_MS = 24 * 60 * 60 * 1000

/** What carrying tasks on needs. */
export interface TaskResumeComponents {
  journal: { list(): TaskRecord[]; get(id: string): TaskRecord | undefined; put(record: TaskRecord): Promise<void> }
  locks: RunLocks
  orchestrator: Pick<Orchestrator, 'runPlan'>
  catalog: AgentCatalog
  /** Journal the carried-on task as it progresses (`journalTask`), from its record's createdAt and finished steps. */
  record(handle: TaskHandle, request: TaskRequest, opts?: JournalTaskOptions): Promise<void>
  changes: { changed(): void }
  /** Resolves once the catalog holds the bundled agents: a task pinned to one is carried on only then (at most `CATALOG_WAIT_MS`). */
  catalogReady?: Promise<unknown>
}

/** Carrying on interrupted tasks. */
export interface TaskResume {
  /** Queue for the lock of every unfinished task of the journal; carry on those this tab gets. */
  resumeAll(): void
  /** Hold a task's lock while this tab runs it (submit), until `saved` (its final journal record is written). */
  hold(handle: TaskHandle, saved: Promise<unknown>): void
  /** The live handle of a task this tab carries on. */
  task(id: string): TaskHandle | undefined
  /** Tasks this tab carried on since it started. */
  resumed(): number
  stop(): void
}

/** The plan still to run: unfinished steps, inputs from finished ones resolved to literals. */
export function remainingPlan(plan: Plan, outputs: ReadonlyMap<string, unknown>, input: unknown): Plan | undefined {
  const left = plan.subtasks.filter((s) => !outputs.has(s.id))
  const subtasks = []
  for (const s of left) {
    const m = s.input
    const refs =
      'template' in m ? [...m.template.matchAll(/\{\{\s*steps\.([A-Za-z0-9_-]+)\.output/g)].map((x) => x[1]) : 'step' in m && m.from === 'step' ? [m.step] : []
    const finished = refs.filter((r) => outputs.has(r))
    // A template that reads a finished and an unfinished step cannot be split: run the task whole.
    if (finished.length > 0 && finished.length < refs.length) return undefined
    const mapping = finished.length > 0 ? { value: resolveInput(m, input, outputs) } : m
    subtasks.push({ ...s, input: mapping, dependencies: s.dependencies.filter((d) => !outputs.has(d)) })
  }
  return { ...plan, subtasks } as Plan
}

/** `taskResume()(components)`. */
export function taskResume(): (components: TaskResumeComponents) => TaskResume {
  return ({ journal, locks, orchestrator, catalog, record, changes, catalogReady }) => {
    const stopping = new AbortController()
    const queued = new Set<string>()
    const leases = new Map<string, RunLease>()
    const handles = new Map<string, TaskHandle>()
    let resumedCount = 0

    function fail(r: TaskRecord, message: string): void {
      const data = (r.data ?? {}) as Record<string, unknown>
      void journal.put({ ...r, status: 'failed', updatedAt: Date.now(), data: { ...data, error: message } }).catch(() => {})
      changes.changed()
    }

    function carryOn(r: TaskRecord, lease: RunLease): void {
      const request = requestFromRecord(r)
      const data = (r.data ?? {}) as Record<string, unknown>
      const plan = data.plan as Plan | undefined
      if (Date.now() - r.updatedAt > RESUME_WITHIN_MS) {
        fail(r, 'This task was interrupted more than a day ago: run it again')
        lease.release()
        return
      }
      if (plan == null || !Array.isArray(plan.subtasks)) {
        fail(r, 'This task was interrupted before it was planned (the tab closed): run it again')
        lease.release()
        return
      }
      if (request.inputDropped === true) {
        fail(r, 'This task was interrupted and its input was too large to keep: run it again with its input')
        lease.release()
        return
      }
      const outputs = new Map<string, unknown>()
      for (const s of r.steps) if (s.status === 'succeeded' && s.output !== undefined) outputs.set(s.id, s.output)
      const rest = remainingPlan(plan, outputs, request.input) ?? plan
      const kept = rest === plan ? new Map<string, unknown>() : outputs
      const id = r.id as TaskId
      const controller = new AbortController()
      const events = new TypedEventEmitter<TaskEvents>()
      const emit = <K extends keyof TaskEvents>(kind: K, detail: TaskEvents[K]['detail']): void => {
        events.safeDispatchEvent(kind, { detail })
      }
      let stepsDone = kept.size
      const done = (async (): Promise<TaskResult> => {
        await Promise.resolve()
        const prefs = resolvePreferences(request.preferences, (m) => new InvalidTaskRequestError(m))
        const pinned = new Map<string, string>()
        if (request.agent != null) {
          const agent = catalog.list().find((a) => a.id === request.agent || a.name === request.agent)
          if (agent == null) throw new OrchestratorError(`The agent "${request.agent}" this task was pinned to is not known any more: run it again`)
          for (const s of rest.subtasks) pinned.set(s.id, agent.id)
        }
        emit('progress', { taskId: id, phase: 'planned', planner: plan.planner, steps: plan.subtasks.length, stepsDone, plan })
        for (const [stepId] of kept) {
          const prev = r.steps.find((s) => s.id === stepId)
          emit('step', { taskId: id, stepId, status: 'succeeded', attempt: 1, agent: prev?.agent ?? '', peer: prev?.peer ?? '', output: kept.get(stepId) })
        }
        emit('progress', { taskId: id, phase: 'running', planner: plan.planner, steps: plan.subtasks.length, stepsDone })
        const run = await orchestrator.runPlan(rest, {
          taskId: id,
          input: request.input,
          prefs,
          signal: AbortSignal.any([controller.signal, stopping.signal]),
          pinned,
          onStep: (e) => {
            if (e.status === 'succeeded') stepsDone++
            emit('step', e)
          }
        })
        const all = new Map<string, unknown>([...kept, ...run.outputs])
        const sinks = plan.subtasks.filter((s) => !plan.subtasks.some((o) => o.dependencies.includes(s.id)))
        const output = sinks.length === 1 ? all.get(sinks[0].id) : Object.fromEntries(sinks.map((s) => [s.id, all.get(s.id)]))
        const previous = [...kept.keys()].map((stepId) => {
          const s = r.steps.find((x) => x.id === stepId)
          return { id: stepId, agent: s?.agent ?? '', peer: s?.peer ?? '', ms: 0, status: 'succeeded', output: kept.get(stepId) }
        })
        return {
          id,
          status: 'succeeded',
          output,
          steps: [...previous, ...run.steps.map((s) => ({ id: s.id, agent: s.agent, peer: s.peer, ms: s.ms, status: s.status, output: s.output }))],
          cost: run.cost + (typeof data.cost === 'number' ? data.cost : 0),
          plan
        }
      })()
      done.then(
        () => {
          emit('progress', { taskId: id, phase: 'succeeded', planner: plan.planner, steps: plan.subtasks.length, stepsDone })
        },
        (err: unknown) => {
          const e = toError(err)
          emit('progress', {
            taskId: id,
            phase: controller.signal.aborted ? 'cancelled' : 'failed',
            planner: plan.planner,
            steps: plan.subtasks.length,
            stepsDone,
            message: e.message
          })
        }
      )
      done.catch(() => {})
      const handle: TaskHandle = {
        id,
        done,
        on(event: keyof TaskEvents, listener: (e: never) => void) {
          return listen(events, event, (e) => {
            ;(listener as (detail: unknown) => void)(e.detail)
          })
        },
        cancel() {
          controller.abort(new TaskCancelledError())
        }
      } as TaskHandle
      // The journal record follows this handle from here (kept steps are in its result); the lock goes
      // once its final state is saved, and the handle's `done` waits for its end to be saved (as a submitted one's).
      const { handle: durable, saved } = savedHandle(handle, (o) =>
        record(handle, request, { createdAt: r.createdAt, steps: r.steps.filter((s) => kept.has(s.id)), ...o })
      )
      handles.set(id, durable)
      resumedCount++
      log('carrying on task %s (%d of %d steps kept)', id, kept.size, plan.subtasks.length)
      const finish = (): void => {
        lease.release()
        changes.changed()
      }
      saved.then(finish, finish)
      changes.changed()
    }

    function queue(id: string): void {
      if (queued.has(id) || leases.has(id) || handles.has(id) || stopping.signal.aborted) return
      queued.add(id)
      locks
        .acquire(runLockName(id), { signal: stopping.signal })
        .then(async (lease) => {
          // Right after a reload the bundled agents may not be listed yet: their steps would find no agent.
          await settledWithin(catalogReady, CATALOG_WAIT_MS)
          return lease
        })
        .then(
          (lease) => {
            queued.delete(id)
            const r = journal.get(id)
            if (stopping.signal.aborted || r == null || !UNFINISHED.has(r.status)) {
              lease.release()
              return
            }
            try {
              carryOn(r, lease)
            } catch (err) {
              log.error('could not carry on task %s: %s', id, toError(err).message)
              lease.release()
            }
          },
          () => {
            queued.delete(id)
          }
        )
    }

    return {
      resumeAll() {
        for (const r of journal.list()) if (UNFINISHED.has(r.status)) queue(r.id)
      },
      hold(handle, saved) {
        void locks.tryAcquire(runLockName(handle.id)).then((lease) => {
          if (lease == null) return
          leases.set(handle.id, lease)
          const release = (): void => {
            leases.delete(handle.id)
            lease.release()
          }
          // Only once the final record is saved: a tab that gets the lock next must read it finished.
          saved.then(release, release)
        })
      },
      task: (id) => handles.get(id),
      resumed: () => resumedCount,
      stop() {
        stopping.abort(new OrchestratorError('this tab is closing'))
        for (const l of leases.values()) l.release()
        leases.clear()
      }
    }
  }
}
