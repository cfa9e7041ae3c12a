/**
 * Live state of one task for the task page: the plan's steps with their latest
 * state, progress and the result. Built from the handle's events (history that
 * the API does not keep), so it is attached as soon as the task is submitted —
 * `trackTask()` returns the same tracker to the page that navigates there next.
 */
import type { Plan, ProgressEvent, StepEvent, TaskHandle, TaskResult } from '$lib/index'
import { errorText } from './format'

/** A step as the task page draws it. */
export interface StepView {
  id: string
  description?: string
  capabilities: string[]
  dependencies: string[]
  state: 'pending' | StepEvent['status']
  attempt: number
  agent?: string
  peer?: string
  ms?: number
  /** Estimated by the plan until the result says what it cost. */
  cost?: number
  costIsEstimate: boolean
  /** Why the router chose the route this step ran (or runs) on: the last attempt's. */
  reasoning?: string
  /** That route's score breakdown (per criterion) and what the router counted. */
  route?: StepEvent['route']
  /** The error of a failed or retrying step (a succeeded step has none). */
  error?: string
  /** A succeeded step's earlier attempt failed with this. */
  earlierError?: string
  output?: unknown
  /** How the accepted result was verified (issue 12): results gathered, how many agreed, from which peers. */
  verification?: StepEvent['verification']
  /** Order of first dispatch, to place steps before the plan is known. */
  seq: number
}

/** Live state of a task. */
export class TaskTracker {
  readonly id: string
  #steps = $state.raw<Record<string, StepView>>({})
  #plan = $state.raw<Plan | undefined>()
  #progress = $state.raw<ProgressEvent | undefined>()
  #result = $state.raw<TaskResult | undefined>()
  #error = $state<string | undefined>()
  #errorName = $state<string | undefined>()
  #started = new Map<string, number>()
  #seq = 0
  readonly #handle: TaskHandle

  constructor(handle: TaskHandle) {
    this.id = handle.id
    this.#handle = handle
    handle.on('progress', (e) => {
      this.#onProgress(e)
    })
    handle.on('step', (e) => {
      this.#onStep(e)
    })
    handle.done.then(
      (r) => {
        this.#onResult(r)
      },
      (err: unknown) => {
        this.#error = errorText(err)
        this.#errorName = err instanceof Error ? err.name : undefined
      }
    )
  }

  get steps(): StepView[] {
    return Object.values(this.#steps)
  }
  get plan(): Plan | undefined {
    return this.#plan
  }
  get progress(): ProgressEvent | undefined {
    return this.#progress
  }
  get result(): TaskResult | undefined {
    return this.#result
  }
  get error(): string | undefined {
    return this.#error
  }
  get errorName(): string | undefined {
    return this.#errorName
  }
  get finished(): boolean {
    return this.#result != null || this.#error != null
  }

  /** Stop the task (the page's Cancel button). */
  cancel(): void {
    this.#handle.cancel()
  }

  #onProgress(e: ProgressEvent): void {
    this.#progress = e
    // Forward compatible: a 'planned' event that carries the plan lets the DAG appear before any step runs.
    const plan = (e as ProgressEvent & { plan?: Plan }).plan
    if (plan != null && this.#plan == null) this.#setPlan(plan)
    if (e.phase === 'cancelled') {
      // Every step that had not finished is cancelled (the step events say so too; this covers any missed).
      const next = { ...this.#steps }
      let changed = false
      for (const [id, st] of Object.entries(next)) {
        if (st.state === 'succeeded' || st.state === 'cancelled') continue
        next[id] = { ...st, state: 'cancelled' }
        changed = true
      }
      if (changed) this.#steps = next
    }
  }

  #setPlan(plan: Plan): void {
    this.#plan = plan
    const next: Record<string, StepView> = {}
    for (const s of plan.subtasks) {
      const known = this.#steps[s.id]
      next[s.id] = {
        ...(known ?? { state: 'pending', attempt: 0, seq: Number.MAX_SAFE_INTEGER, costIsEstimate: true }),
        id: s.id,
        description: s.description,
        capabilities: s.capabilities,
        dependencies: s.dependencies,
        cost: known?.costIsEstimate === false ? known.cost : s.estimated_cost,
        costIsEstimate: known?.costIsEstimate ?? true
      }
    }
    this.#steps = next
  }

  #onStep(e: StepEvent): void {
    const now = performance.now()
    const prev = this.#steps[e.stepId]
    if (e.status === 'dispatched' && (!this.#started.has(e.stepId) || prev?.state === 'retrying')) this.#started.set(e.stepId, now)
    const started = this.#started.get(e.stepId)
    const step: StepView = {
      ...(prev ?? { id: e.stepId, capabilities: [], dependencies: [], costIsEstimate: true, seq: this.#seq++ }),
      state: e.status,
      attempt: e.attempt,
      agent: e.agent !== '' ? e.agent : prev?.agent,
      peer: e.peer !== '' ? e.peer : prev?.peer,
      reasoning: e.reasoning ?? prev?.reasoning,
      route: e.route ?? prev?.route,
      error: e.status === 'failed' || e.status === 'retrying' ? (e.error ?? prev?.error) : e.status === 'succeeded' ? undefined : prev?.error,
      earlierError: e.status === 'succeeded' ? (prev?.error ?? prev?.earlierError) : prev?.earlierError,
      ms: (e.status === 'succeeded' || e.status === 'failed' || e.status === 'cancelled') && started != null ? now - started : prev?.ms,
      verification: e.verification ?? prev?.verification
    }
    if (prev != null && prev.seq === Number.MAX_SAFE_INTEGER) step.seq = this.#seq++
    this.#steps = { ...this.#steps, [e.stepId]: step }
  }

  #onResult(r: TaskResult): void {
    if (r.plan != null) this.#setPlan(r.plan)
    const next = { ...this.#steps }
    for (const s of r.steps) {
      const prev = next[s.id]
      const cost = (s as { cost?: unknown }).cost
      next[s.id] = {
        ...(prev ?? { id: s.id, capabilities: [], dependencies: [], attempt: 1, seq: this.#seq++, costIsEstimate: true }),
        state: s.status === 'succeeded' ? 'succeeded' : s.status === 'failed' ? 'failed' : (prev?.state ?? 'succeeded'),
        agent: s.agent,
        peer: s.peer,
        ms: s.ms,
        output: s.output,
        ...(s.verification != null ? { verification: s.verification } : {}),
        ...(s.status === 'succeeded' && prev?.error != null ? { error: undefined, earlierError: prev.error } : {}),
        ...(typeof cost === 'number' ? { cost, costIsEstimate: false } : {})
      }
    }
    this.#steps = next
    this.#result = r
  }
}

const trackers = new Map<string, TaskTracker>()
const MAX_TRACKERS = 50

/** The tracker of a task, created (and attached to its events) on first call. */
export function trackTask(handle: TaskHandle): TaskTracker {
  let t = trackers.get(handle.id)
  if (t == null) {
    t = new TaskTracker(handle)
    trackers.set(handle.id, t)
    for (const id of trackers.keys()) {
      if (trackers.size <= MAX_TRACKERS) break
      trackers.delete(id)
    }
  }
  return t
}
