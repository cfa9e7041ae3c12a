/**
 * Task history: this profile's past tasks, read back from the private `journal`
 * doc that `task-journal.ts` writes. `tasks()` merges them with the live ones,
 * `task(id)` gives a past task a read-only handle that replays what was recorded,
 * and `taskRequest(id)` is what "Run again" resubmits.
 */
import type { TaskRecord } from '../memory/index.ts'
import type { Plan, ProgressEvent, StepEvent, TaskHandle, TaskId, TaskRequest, TaskResult, TaskSummary } from '../orchestrator/index.ts'
import { OrchestratorError } from '../orchestrator/index.ts'
import { INPUT_MEDIA_KEY, splitOptionsLine, type KeptMedia, type TaskMediaStore } from './task-media.ts'

/** What the history needs: the journal's read side. */
export interface TaskHistorySource {
  list(): TaskRecord[]
  get(id: string): TaskRecord | undefined
  /** Changes whenever the records do (the history re-reads only then). */
  readonly version?: number
}

/** Past tasks `tasks()` lists at most (newest first), like the orchestrator's own 200. */
export const HISTORY_LIMIT = 200

/** A past task's handle: `done` settles with the recorded outcome; `on()` replays the recorded events; nothing runs. */
export interface PastTaskHandle extends TaskHandle {
  /** Always true: this handle replays the journal, it does not follow a running task. */
  readonly past: true
  /** Outputs the history did not keep, each with the sentence saying why (too big, not saved). */
  readonly notKept: ReadonlyArray<{ stepId: string; reason: string }>
  /** The task's byte input (a file or image) as kept beside the journal, when it was (issue 14). */
  readonly input?: Promise<KeptInput | undefined>
  /** Why its byte input was not kept (over the cap, or the save failed). */
  readonly inputNotKept?: string
}

/** A task's byte input as the history kept it: all its bytes (what "Run again" sends), and the file they hold after any options line. */
export interface KeptInput extends KeptMedia {
  /** The file itself (the bytes after the Submit page's options line, if any). */
  file: Uint8Array
  /** The options line the Submit page put before the file (one JSON object), if any. */
  options?: string
}

/** The sentence for a JSON output over the journal's cap. */
export const JSON_NOT_KEPT = 'This output was larger than the 16 KB of JSON the task history keeps, so it was not saved: it was shown while the task ran.'

/** The request a past task was submitted with, as far as the journal kept it. */
export interface PastTaskRequest extends TaskRequest {
  /** True when the input was too large (or bytes) to journal: "Run again" has no input for it. */
  inputDropped?: boolean
}

/** The error a past failed task's `done` rejects with (its message is the recorded error). */
export class PastTaskFailedError extends OrchestratorError {
  override readonly name: string = 'PastTaskFailedError'
  static override readonly defaultMessage = 'This task failed in an earlier session'
  /** The recorded status ('failed' or 'cancelled'). */
  readonly status: string
  constructor(message: string | undefined, status: string) {
    super(message)
    this.status = status
  }
}

const STATUSES = new Set<TaskSummary['status']>(['planning', 'running', 'succeeded', 'failed', 'cancelled'])
const FINAL = new Set(['succeeded', 'failed', 'cancelled'])

function obj(x: unknown): Record<string, unknown> {
  return x != null && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : {}
}

function planOf(r: TaskRecord): Plan | undefined {
  const p = obj(r.data).plan
  return p != null && typeof p === 'object' && Array.isArray((p as Plan).subtasks) ? (p as Plan) : undefined
}

/** One `tasks()` line from a journal record. */
export function summaryFromRecord(r: TaskRecord): TaskSummary {
  const data = obj(r.data)
  const status: TaskSummary['status'] = STATUSES.has(r.status as TaskSummary['status'])
    ? (r.status as TaskSummary['status'])
    : r.status === 'planned'
      ? 'running'
      : 'failed'
  const plan = planOf(r)
  return {
    id: r.id as TaskId,
    description: r.description ?? '',
    status,
    ...(plan?.planner != null ? { planner: plan.planner } : {}),
    steps: plan?.subtasks.length ?? r.steps.length,
    stepsDone: r.steps.filter((s) => s.status === 'succeeded').length,
    cost: typeof data.cost === 'number' ? data.cost : 0,
    createdAt: r.createdAt,
    ...(FINAL.has(status) ? { finishedAt: r.updatedAt } : {}),
    ...(typeof data.error === 'string' ? { error: data.error } : {})
  }
}

/** Live summaries and journalled ones, one line per task (the live one wins), newest first. */
export function mergeTasks(live: readonly TaskSummary[], records: readonly TaskRecord[]): TaskSummary[] {
  const byId = new Map<string, TaskSummary>()
  for (const r of records) byId.set(r.id, summaryFromRecord(r))
  for (const t of live) byId.set(t.id, t)
  return [...byId.values()].sort((a, b) => b.createdAt - a.createdAt)
}

/** The request to resubmit for a past task ("Run again"). */
export function requestFromRecord(r: TaskRecord): PastTaskRequest {
  const data = obj(r.data)
  return {
    description: r.description ?? '',
    ...(data.input !== undefined ? { input: data.input } : {}),
    ...(data.inputDropped === true ? { inputDropped: true } : {}),
    ...(typeof data.agent === 'string' ? { agent: data.agent } : {}),
    ...(Array.isArray(data.capabilities) ? { capabilities: data.capabilities.filter((c): c is string => typeof c === 'string') } : {}),
    ...(data.preferences != null && typeof data.preferences === 'object' ? { preferences: data.preferences as TaskRequest['preferences'] } : {})
  }
}

/** The recorded result of a succeeded past task (output: the last step's, or `{ stepId: output }` for several ends). */
function resultOf(r: TaskRecord, plan: Plan | undefined): TaskResult {
  const data = obj(r.data)
  const ms = new Map<string, number>(Array.isArray(data.ms) ? (data.ms as Array<[string, number]>) : [])
  const steps = r.steps.map((s) => ({
    id: s.id,
    agent: s.agent ?? '',
    peer: s.peer ?? '',
    ms: ms.get(s.id) ?? (s.endedAt != null && s.startedAt != null ? s.endedAt - s.startedAt : 0),
    status: s.status,
    output: s.output
  }))
  const ends =
    plan != null ? plan.subtasks.filter((t) => !plan.subtasks.some((o) => o.dependencies.includes(t.id))).map((t) => t.id) : steps.map((s) => s.id).slice(-1)
  const byId = new Map(steps.map((s) => [s.id, s.output]))
  const output = ends.length === 1 ? byId.get(ends[0]) : Object.fromEntries(ends.map((id) => [id, byId.get(id)]))
  return { id: r.id, status: 'succeeded', output, steps, cost: typeof data.cost === 'number' ? data.cost : 0, plan: plan as Plan }
}

/**
 * A read-only handle over a journal record. `on('progress')` and `on('step')` replay
 * the recorded plan and each step's last state (with its route) on the next microtask;
 * `done` resolves with the recorded result, or rejects with `PastTaskFailedError`
 * (the recorded error) for a failed or cancelled task, and never settles for a task
 * the journal saw still running (it ran in a session that ended before it finished).
 * `cancel()` does nothing.
 */
export function pastTask(r: TaskRecord, media?: TaskMediaStore): PastTaskHandle {
  const plan = planOf(r)
  const data = obj(r.data)
  const routes = obj(data.routes)
  const summary = summaryFromRecord(r)
  const kept = obj(data.media)
  const refused = obj(data.mediaNotKept)
  const notKept = [
    ...Object.entries(refused).map(([stepId, x]) => ({ stepId, reason: String(obj(x).reason ?? 'This output was not saved.') })),
    ...(Array.isArray(data.outputsDropped) ? (data.outputsDropped as unknown[]) : [])
      .filter((id): id is string => typeof id === 'string' && !(id in kept) && !(id in refused))
      .map((stepId) => ({ stepId, reason: JSON_NOT_KEPT }))
  ]
  let done: Promise<TaskResult>
  if (summary.status === 'succeeded' && media != null && Object.keys(kept).length > 0) {
    // Byte outputs (images, audio, files) are kept beside the journal: put back in the recorded steps.
    done = media.get(r.id).then((found) => {
      const withMedia = { ...r, steps: r.steps.map((s) => (found.has(s.id) ? { ...s, output: found.get(s.id)!.bytes } : s)) }
      return resultOf(withMedia, plan)
    })
  } else if (summary.status === 'succeeded') done = Promise.resolve(resultOf(r, plan))
  else if (summary.status === 'failed' || summary.status === 'cancelled') {
    const err = new PastTaskFailedError(typeof data.error === 'string' ? data.error : undefined, summary.status)
    if (summary.status === 'cancelled') Object.defineProperty(err, 'name', { value: 'TaskCancelledError' })
    done = Promise.reject(err)
    done.catch(() => {})
  } else done = new Promise<TaskResult>(() => {})
  const progress: ProgressEvent = {
    taskId: r.id,
    phase: summary.status === 'running' ? 'running' : summary.status,
    ...(plan?.planner != null ? { planner: plan.planner } : {}),
    steps: summary.steps,
    stepsDone: summary.stepsDone
  }
  const stepEvents: StepEvent[] = r.steps
    .filter((s) => s.status !== 'pending')
    .map((s) => {
      const route = obj(routes[s.id])
      return {
        taskId: r.id,
        stepId: s.id,
        status: s.status as StepEvent['status'],
        attempt: 1,
        agent: s.agent ?? '',
        peer: s.peer ?? '',
        ...(typeof route.reasoning === 'string' ? { reasoning: route.reasoning } : {}),
        ...(route.route != null ? { route: route.route as StepEvent['route'] } : {}),
        ...(s.error != null && s.status !== 'succeeded' ? { error: s.error } : {})
      }
    })
  function on(event: 'progress', listener: (e: ProgressEvent) => void): () => void
  function on(event: 'step', listener: (e: StepEvent) => void): () => void
  function on(event: 'progress' | 'step', listener: ((e: ProgressEvent) => void) | ((e: StepEvent) => void)): () => void {
    let off = false
    queueMicrotask(() => {
      if (off) return
      if (event === 'progress') {
        if (plan != null) (listener as (e: ProgressEvent) => void)({ ...progress, phase: 'planned', plan })
        ;(listener as (e: ProgressEvent) => void)(progress)
      } else for (const e of stepEvents) (listener as (e: StepEvent) => void)(e)
    })
    return () => {
      off = true
    }
  }
  const inputKept = data.inputMedia != null && typeof data.inputMedia === 'object'
  const input =
    inputKept && media != null
      ? media.get(r.id).then((found): KeptInput | undefined => {
          const m = found.get(INPUT_MEDIA_KEY)
          return m == null ? undefined : { ...m, ...splitOptionsLine(m.bytes) }
        })
      : undefined
  input?.catch(() => {})
  const inputNotKept = typeof obj(data.inputNotKept).reason === 'string' ? String(obj(data.inputNotKept).reason) : undefined
  return {
    id: r.id as TaskId,
    done,
    on,
    cancel: () => {},
    past: true,
    notKept,
    ...(input != null ? { input } : {}),
    ...(inputNotKept != null ? { inputNotKept } : {})
  }
}

/** The history over a journal: `tasks(live)`, `task(id)`, `request(id)`. */
export function taskHistory(
  journal: TaskHistorySource,
  opts: { media?: TaskMediaStore } = {}
): {
  tasks(live: readonly TaskSummary[]): TaskSummary[]
  task(id: string): PastTaskHandle | undefined
  request(id: string): PastTaskRequest | undefined
} {
  // Records are parsed and validated on read: read them again only when the journal changed.
  let seen: number | undefined
  let records: TaskRecord[] = []
  let requests = new Map<string, PastTaskRequest | undefined>()
  const fresh = (): void => {
    const v = journal.version
    if (v != null && v === seen) return
    seen = v
    records = journal.list().slice(0, HISTORY_LIMIT)
    requests = new Map()
  }
  return {
    tasks: (live) => {
      fresh()
      return mergeTasks(live, records)
    },
    task: (id) => {
      const r = journal.get(id)
      return r != null ? pastTask(r, opts.media) : undefined
    },
    request: (id) => {
      fresh()
      if (!requests.has(id)) {
        const r = journal.get(id)
        requests.set(id, r != null ? requestFromRecord(r) : undefined)
      }
      return requests.get(id)
    }
  }
}
