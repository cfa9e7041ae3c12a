/**
 * A run as a person reads it, projected from its journal events alone (so every tab of the
 * profile, and the history after a reload, sees the same thing): each document step with its
 * state, and each unit of work under it (for_each item, loop iteration, debate or reflection
 * round, planned child) with agent, peer, time, cost and output; the approval waiting, if any.
 */
import type { WorkflowEvent } from '../../orchestrator/index.ts'

/** State of a step or unit as drawn. */
export type RunUnitState = 'pending' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'skipped' | 'cancelled'

/** One unit of work (an agent call, an item, a round…). */
export interface RunUnitView {
  /** The unit id as journalled (`step`, `step.3`, `step.l2`, `step.d1.0`, `step.r1.critic`…). */
  id: string
  /** What the unit is, in words ("item 3", "iteration 2", "round 1, agent 1", "critic, round 1"). */
  label: string
  state: RunUnitState
  attempts: number
  agent?: string
  peer?: string
  ms?: number
  cost?: number
  output?: unknown
  error?: string
  startedAt?: number
  endedAt?: number
}

/** One document step. */
export interface RunStepView {
  id: string
  state: RunUnitState
  /** Its units, in the order they started (empty for a step that is one agent call). */
  units: RunUnitView[]
  agent?: string
  peer?: string
  ms?: number
  cost: number
  output?: unknown
  error?: string
  reason?: string
  /** The plan a `plan:` step was decomposed into. */
  plan?: unknown
  approval?: { prompt: string; show?: unknown; requestedAt: number; decided?: { approved: boolean; comment?: string; value?: unknown } }
}

/** A run as a person reads it. */
export interface RunView {
  id: string
  name: string
  status: 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled'
  startedAt?: number
  finishedAt?: number
  input?: unknown
  yaml?: string
  docHash?: string
  /** Times the run was resumed (after a reload, a crash, or in another tab). */
  resumes: number
  steps: Record<string, RunStepView>
  output?: unknown
  error?: { name: string; message: string }
  cost: number
  /** Approvals waiting now. */
  waiting: Array<{ stepId: string; prompt: string; show?: unknown; requestedAt: number }>
}

/** The document step a unit id belongs to (the part before the first dot). */
export function stepOfUnit(unitId: string): string {
  const i = unitId.indexOf('.')
  return i < 0 ? unitId : unitId.slice(0, i)
}

const UNIT_WORDS: Array<[RegExp, (m: RegExpExecArray) => string]> = [
  [/^(\d+)$/, (m) => `item ${Number(m[1]) + 1}`],
  [/^l(\d+)$/, (m) => `iteration ${Number(m[1]) + 1}`],
  [/^d(\d+)\.(\d+)$/, (m) => `round ${Number(m[1])}, agent ${Number(m[2]) + 1}`],
  [/^judge$/, () => 'judge'],
  [/^r(\d+)\.critic$/, (m) => `critic, round ${Number(m[1]) + 1}`],
  [/^r(\d+)$/, (m) => `answer, round ${Number(m[1]) + 1}`],
  [/^p\.(.+)$/, (m) => `planned step ${m[1]}`],
  [/^w\.(.+)$/, (m) => `sub-workflow: ${m[1]}`]
]

/** A unit id in words. */
export function unitLabel(unitId: string): string {
  const rest = unitId.slice(stepOfUnit(unitId).length + 1)
  if (rest === '') return 'the step'
  for (const [re, say] of UNIT_WORDS) {
    const m = re.exec(rest)
    if (m != null) return say(m)
  }
  return rest
}

/** Fold journal events into a view (`prev` to continue from, for events appended since). */
export function projectRun(id: string, events: readonly WorkflowEvent[], prev?: RunView): RunView {
  const view: RunView = prev ?? { id, name: id, status: 'running', resumes: 0, steps: {}, cost: 0, waiting: [] }
  const step = (stepId: string): RunStepView => {
    let s = view.steps[stepId]
    if (s == null) {
      s = { id: stepId, state: 'pending', units: [], cost: 0 }
      view.steps[stepId] = s
    }
    return s
  }
  const unit = (unitId: string): RunUnitView | undefined => {
    const s = step(stepOfUnit(unitId))
    if (unitId === s.id) return undefined
    let u = s.units.find((x) => x.id === unitId)
    if (u == null) {
      u = { id: unitId, label: unitLabel(unitId), state: 'pending', attempts: 0 }
      s.units.push(u)
    }
    return u
  }
  for (const e of events) {
    switch (e.type) {
      case 'run-started':
        view.name = e.name
        view.startedAt = e.at
        view.input = e.input
        view.yaml = e.yaml ?? view.yaml
        view.docHash = e.docHash
        break
      case 'run-resumed':
        view.resumes++
        break
      case 'step-started': {
        const u = unit(e.stepId)
        const s = step(stepOfUnit(e.stepId))
        if (s.state === 'pending' || s.state === 'failed') s.state = 'running'
        if (u != null) {
          u.state = 'running'
          u.attempts = Math.max(u.attempts, e.attempt)
          u.startedAt ??= e.at
          u.error = undefined
        }
        break
      }
      case 'step-finished': {
        const s = step(stepOfUnit(e.stepId))
        const u = e.step === true ? undefined : unit(e.stepId)
        const target = u ?? s
        target.state = 'succeeded'
        target.output = e.output
        target.agent = e.agent ?? target.agent
        target.peer = e.peer ?? target.peer
        target.ms = e.ms ?? target.ms
        target.error = undefined
        if (u != null) {
          u.cost = e.cost
          u.endedAt = e.at
          if (e.cost != null) s.cost += e.cost
        } else if (e.cost != null && s.units.length === 0) s.cost = e.cost
        break
      }
      case 'step-failed': {
        const s = step(stepOfUnit(e.stepId))
        const u = e.step === true ? undefined : unit(e.stepId)
        const target = u ?? s
        target.state = 'failed'
        target.error = e.error.message
        target.agent = e.agent ?? target.agent
        target.peer = e.peer ?? target.peer
        if (u != null) u.endedAt = e.at
        break
      }
      case 'step-skipped': {
        const s = step(stepOfUnit(e.stepId))
        const u = e.step === true ? undefined : unit(e.stepId)
        const target = u ?? s
        target.state = 'skipped'
        if (u == null) s.reason = e.reason
        break
      }
      case 'plan-made':
        step(stepOfUnit(e.stepId)).plan = e.plan
        break
      case 'approval-requested': {
        const s = step(e.stepId)
        s.state = 'waiting'
        s.approval = { prompt: e.prompt, show: e.show, requestedAt: e.at }
        view.waiting = [...view.waiting.filter((w) => w.stepId !== e.stepId), { stepId: e.stepId, prompt: e.prompt, show: e.show, requestedAt: e.at }]
        break
      }
      case 'approval-decided': {
        const s = step(e.stepId)
        if (s.approval != null)
          s.approval.decided = {
            approved: e.approved,
            ...(e.comment != null ? { comment: e.comment } : {}),
            ...(e.value !== undefined ? { value: e.value } : {})
          }
        if (s.state === 'waiting') s.state = 'running'
        view.waiting = view.waiting.filter((w) => w.stepId !== e.stepId)
        break
      }
      case 'run-finished':
        view.status = e.status
        view.finishedAt = e.at
        view.output = e.output
        view.error = e.error
        view.cost = e.cost
        view.waiting = []
        if (e.status === 'cancelled') for (const s of Object.values(view.steps)) if (s.state === 'running' || s.state === 'waiting') s.state = 'cancelled'
        break
    }
  }
  if (view.finishedAt == null) view.status = view.waiting.length > 0 ? 'waiting' : 'running'
  if (view.finishedAt == null) view.cost = Object.values(view.steps).reduce((a, s) => a + s.cost, 0)
  return view
}
