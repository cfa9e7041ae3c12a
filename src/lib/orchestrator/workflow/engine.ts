/**
 * The workflow engine (WORKFLOWS.md). It walks the document's DAG (steps start
 * when their dependencies are done) and sends every agent call through the
 * orchestrator's dispatcher, as a one-step plan whose step id is the unit's id:
 * so a workflow gets the router, fallbacks, retries, idempotency keys
 * (`<runId>/<unitId>`) and per-call budgets that `submit` has.
 *
 * Every decision is journalled before it acts (event sourcing): starting an
 * engine over a journal that holds a run replays what is recorded — a finished
 * unit never runs again, an in-flight one is re-offered with the same
 * idempotency key, a pending approval stays pending — and carries on.
 */
import canonicalize from 'canonicalize'
import { abortableSleep, logger } from '../../core/index.ts'
import type { AgentCandidate } from '../components.ts'
import { Budget, BudgetExceededError, type StepEvent } from '../dispatch/index.ts'
import { NoEligibleAgentError, OrchestratorError, StepFailedError, TaskCancelledError, UnknownAgentError, toError } from '../errors.ts'
import { resolveInput, type Plan } from '../plan/index.ts'
import { resolvePreferences, type RoutingPreferences } from '../route/index.ts'
import { bareExpression, compileExpression, interpolate } from './cel.ts'
import {
  ApprovalRejectedError,
  LoopLimitError,
  WorkflowApprovalError,
  WorkflowExpressionError,
  WorkflowInputError,
  WorkflowResumeError,
  WorkflowTimeoutError,
  WorkflowValidationError
} from './errors.ts'
import { capabilitiesProblem, estimateCost, findAgent, parseWorkflow, validateWorkflowInput } from './parser.ts'
import { estimateRun } from './spend.ts'
import { compactDocument } from './stored-doc.ts'
import type {
  WorkflowApprovalRequest,
  WorkflowDocument,
  WorkflowEngine,
  WorkflowEngineComponents,
  WorkflowEngineInit,
  WorkflowError,
  WorkflowEvent,
  WorkflowResult,
  WorkflowRun,
  WorkflowRunStatus,
  WorkflowStartOptions,
  WorkflowStep,
  WorkflowStepResult
} from './types.ts'

const log = logger('orchestrator:workflow')

type Scope = Record<string, unknown>
type Finished = Extract<WorkflowEvent, { type: 'step-finished' }>
type Failed = Extract<WorkflowEvent, { type: 'step-failed' }>
type Skipped = Extract<WorkflowEvent, { type: 'step-skipped' }>

/** A document step's state, as `steps.<id>` shows it. */
interface StepState {
  status: 'succeeded' | 'failed' | 'skipped'
  output: unknown
  agent: string
  peer: string
  ms: number
  cost: number
  /** Journal position of its end (the last to finish is the default output). */
  seq: number
  /** Skipped because a step it needs failed (fallback_strategy: skip). */
  failedUpstream?: boolean
}

/** What a unit (one agent call) returned. */
interface UnitResult {
  output: unknown
  agent: string
  peer: string
  ms: number
  cost: number
}

/** A failure the journal holds, thrown again when replayed. */
class ReplayedStepError extends StepFailedError {
  override readonly name: string = 'StepFailedError'
  static override readonly defaultMessage: string = 'A step failed'
  readonly recordedName: string
  constructor(stepId: string, recorded: { name: string; message: string }) {
    super(stepId, recorded.message)
    this.recordedName = recorded.name
  }
}

/** `createWorkflowEngine(components, init)`. */
export function createWorkflowEngine(
  components: WorkflowEngineComponents,
  init: WorkflowEngineInit = {}
): WorkflowEngine & { stats(): Record<string, number> } {
  const defaultMaxParallel = init.defaultMaxParallel ?? 16
  const maxDepth = init.maxDepth ?? 4
  const counters = {
    runsStarted: 0,
    runsResumed: 0,
    runsRefused: 0,
    runsSucceeded: 0,
    runsFailed: 0,
    runsCancelled: 0,
    unitsDispatched: 0,
    unitsReplayed: 0,
    unitsRetried: 0,
    budgetStops: 0,
    approvalsRequested: 0
  }

  function check(doc: WorkflowDocument): WorkflowError[] {
    const errors: WorkflowError[] = []
    const aliases = new Set(doc.agents.map((a) => a.name))
    const pos = (path: string) => doc.positions[path] ?? doc.positions[path.slice(0, path.lastIndexOf('.'))] ?? { line: 1, column: 1, endLine: 1, endColumn: 2 }
    const ref = (name: string | undefined, path: string): void => {
      if (name == null || aliases.has(name) || findAgent(components.catalog, name) != null) return
      errors.push({
        kind: 'unknown-agent',
        ...pos(path),
        path,
        message: `No alias or registry agent is named "${name}": add it under \`agents:\`, publish it, or route by \`capabilities:\``
      })
    }
    const caps = (list: readonly string[] | undefined, path: string): void => {
      const message = list == null ? undefined : capabilitiesProblem(components.catalog, list)
      if (message != null) errors.push({ kind: 'unknown-capability', ...pos(path), path, message })
    }
    doc.agents.forEach((a, i) => {
      if (a.agent != null) ref(a.agent, `agents.${i}.agent`)
      caps(a.capabilities, `agents.${i}.capabilities`)
    })
    doc.steps.forEach((s, i) => {
      ref(s.agent, `steps.${i}.agent`)
      caps(s.capabilities, `steps.${i}.capabilities`)
      s.debate?.agents.forEach((a, k) => {
        ref(a, `steps.${i}.debate.agents.${k}`)
      })
      ref(s.debate?.judge, `steps.${i}.debate.judge`)
      ref(s.reflect?.critic, `steps.${i}.reflect.critic`)
      if (s.workflow != null && components.workflows?.get(s.workflow) == null)
        errors.push({
          kind: 'unknown-workflow',
          ...pos(`steps.${i}.workflow`),
          path: `steps.${i}.workflow`,
          message: `No saved workflow is named "${s.workflow}": save it first or fix the name`
        })
    })
    if (errors.length === 0 && doc.execution.max_cost != null) {
      const est = estimateCost(doc.steps, new Map(doc.agents.map((a) => [a.name, a])), components.catalog)
      if (est > doc.execution.max_cost + 1e-9)
        errors.push({
          kind: 'over-budget',
          ...pos('execution.max_cost'),
          path: 'execution.max_cost',
          message: `The cheapest agents for these steps cost at least ${Math.round(est * 1e6) / 1e6} credits, above max_cost ${doc.execution.max_cost}: raise max_cost or use cheaper agents`
        })
    }
    return errors
  }

  /**
   * Refuse a new run as a whole when its estimate (spend.ts) cannot fit: the least it must spend above
   * `max_cost` (WorkflowValidationError, at max_cost's line), or the most it may spend above the profile's
   * allowance or daily budget (CreditLimitError, DailyBudgetExceededError from `authorizeSpend`). The
   * limits are checked, not held: each call still holds its own estimate as it runs.
   */
  function checkSpend(doc: WorkflowDocument, input: unknown): void {
    const est = estimateRun(doc, input, components.catalog, components.workflows)
    const max = doc.execution.max_cost
    if (max != null && est.least > max + 1e-9) {
      const pos = doc.positions['execution.max_cost'] ?? { line: 1, column: 1, endLine: 1, endColumn: 2 }
      throw new WorkflowValidationError([
        {
          kind: 'over-budget',
          ...pos,
          path: 'execution.max_cost',
          message: `With this input the run needs at least ${round(est.least)} credits (its cheapest agents, every item of its for_each steps), above max_cost ${max}: raise max_cost, give fewer items or use cheaper agents`
        }
      ])
    }
    if (components.authorizeSpend == null || !(est.most > 0)) return
    const note = est.unbounded.length > 0 ? `; counted low: ${est.unbounded.join(', ')}` : ''
    const release = components.authorizeSpend(est.most, `The workflow "${doc.name.slice(0, 60)}" (${est.calls} agent calls${note})`)
    release()
  }

  function start(doc: WorkflowDocument, input: unknown, opts: WorkflowStartOptions): WorkflowRun {
    const { runId, journal } = opts
    const listeners = new Set<(e: WorkflowEvent) => void>()
    const stepListeners = new Set<(e: StepEvent) => void>()
    let status: WorkflowRunStatus = 'running'
    const cancelCtl = new AbortController()
    const failCtl = new AbortController()
    const timeCtl = new AbortController()
    const detach = opts.signal ?? new AbortController().signal
    const signal = AbortSignal.any([detach, cancelCtl.signal, failCtl.signal, timeCtl.signal])

    // Journal indices (rebuilt from the events at start, kept as events are appended).
    const finished = new Map<string, Finished & { seq: number }>()
    const failed = new Map<string, Failed>()
    const skipped = new Map<string, Skipped & { seq: number }>()
    const stepEnds = new Map<string, { e: Finished | Failed | Skipped; seq: number }>()
    const starts = new Map<string, number>()
    const plans = new Map<string, Plan>()
    const requested = new Map<string, WorkflowApprovalRequest>()
    const decided = new Map<string, Extract<WorkflowEvent, { type: 'approval-decided' }>>()
    const waiters = new Map<string, () => void>()
    let seq = 0
    const index = (e: WorkflowEvent): void => {
      seq++
      switch (e.type) {
        case 'step-started':
          starts.set(e.stepId, Math.max(starts.get(e.stepId) ?? 0, e.attempt))
          break
        case 'step-finished':
          if (e.step === true) stepEnds.set(e.stepId, { e, seq })
          else finished.set(e.stepId, { ...e, seq })
          break
        case 'step-failed':
          if (e.step === true) stepEnds.set(e.stepId, { e, seq })
          else failed.set(e.stepId, e)
          break
        case 'step-skipped':
          if (e.step === true) stepEnds.set(e.stepId, { e, seq })
          else skipped.set(e.stepId, { ...e, seq })
          break
        case 'plan-made':
          plans.set(e.stepId, e.plan)
          break
        case 'approval-requested':
          status = status === 'running' ? 'waiting' : status
          requested.set(e.stepId, {
            runId,
            stepId: e.stepId,
            prompt: e.prompt,
            show: e.show,
            requestedAt: e.at,
            ...(e.timeoutMs != null ? { timeoutMs: e.timeoutMs } : {})
          })
          break
        case 'approval-decided':
          decided.set(e.stepId, e)
          if (status === 'waiting' && [...requested.keys()].every((k) => decided.has(k))) status = 'running'
          waiters.get(e.stepId)?.()
          break
      }
    }
    for (const e of journal.events()) index(e)

    const append = async (e: WorkflowEvent): Promise<void> => {
      await journal.append(e)
      index(e)
      for (const l of listeners) {
        try {
          l(e)
        } catch (err) {
          log.error('a workflow listener threw: %s', toError(err).message)
        }
      }
    }
    const refreshStatus = (): void => {
      if (status === 'running' || status === 'waiting') status = [...requested.keys()].some((k) => !decided.has(k)) ? 'waiting' : 'running'
    }

    let budget = new Budget(Infinity)
    let deadlineTimer: ReturnType<typeof setTimeout> | undefined
    let runInput: unknown = input

    const done = (async (): Promise<WorkflowResult> => {
      await Promise.resolve() // let the caller subscribe first
      const prior = journal.events()
      const begun = prior.find((e): e is Extract<WorkflowEvent, { type: 'run-started' }> => e.type === 'run-started')
      let startedAt: number
      if (begun != null) {
        if (begun.runId !== runId) throw new WorkflowResumeError(`The journal holds run ${begun.runId}, not ${runId}`)
        if (opts.hash != null && opts.hash !== '' && begun.docHash !== '' && begun.docHash !== opts.hash)
          throw new WorkflowResumeError(
            `The journal's run was started from another version of "${begun.name}" (its hash differs): run the new version as a new run`
          )
        const end = prior.find((e): e is Extract<WorkflowEvent, { type: 'run-finished' }> => e.type === 'run-finished')
        if (end != null) {
          status = end.status
          if (end.status === 'succeeded') return { id: runId, status: 'succeeded', output: end.output, steps: stepResults(), cost: end.cost }
          if (end.status === 'cancelled') throw new TaskCancelledError(end.error?.message)
          throw new ReplayedStepError('', end.error ?? { name: 'StepFailedError', message: 'The workflow failed' })
        }
        runInput = begun.input
        startedAt = begun.at
        counters.runsResumed++
        await append({ type: 'run-resumed', at: Date.now() })
      } else {
        const problems = check(doc)
        if (problems.length > 0) {
          counters.runsRefused++
          throw new WorkflowValidationError(problems)
        }
        const bad = validateWorkflowInput(doc, input)
        if (bad.length > 0) {
          counters.runsRefused++
          throw new WorkflowInputError(bad)
        }
        // The whole run against max_cost and the profile's spending limits, before anything is journalled or paid.
        try {
          checkSpend(doc, input)
        } catch (err) {
          counters.runsRefused++
          throw err
        }
        counters.runsStarted++
        startedAt = Date.now()
        runInput = input === undefined ? null : input
        await append({
          type: 'run-started',
          at: startedAt,
          runId,
          name: doc.name,
          docHash: opts.hash ?? '',
          input: input === undefined ? null : input,
          ...(opts.yaml != null ? { yaml: opts.yaml, ...compactDocument(doc) } : {})
        })
      }
      refreshStatus()
      budget = new Budget(doc.execution.max_cost ?? Infinity)
      let spent = 0
      for (const f of finished.values()) spent += f.cost ?? 0
      if (spent > 0) budget.commit('journal', spent)
      if (doc.execution.timeout != null) {
        const left = startedAt + doc.execution.timeout - Date.now()
        const fire = (): void => {
          timeCtl.abort(new WorkflowTimeoutError(undefined, `The workflow ran out of time (execution.timeout ${doc.execution.timeout} ms)`))
        }
        if (left <= 0) fire()
        else deadlineTimer = setTimeout(fire, left)
      }
      const out = await runDoc(doc, runInput, '', 0)
      return { id: runId, status: 'succeeded', output: out, steps: stepResults(), cost: budget.spent }
    })().then(
      async (r) => {
        clearTimeout(deadlineTimer)
        if (status === 'succeeded') return r
        if (detach.aborted) throw new TaskCancelledError('This engine stopped (the tab went away); the run resumes from its journal')
        await append({ type: 'run-finished', at: Date.now(), status: 'succeeded', output: r.output, cost: r.cost })
        status = 'succeeded'
        counters.runsSucceeded++
        return r
      },
      async (err: unknown) => {
        clearTimeout(deadlineTimer)
        let e = toError(err)
        if (status === 'failed' || status === 'cancelled') throw e
        if (detach.aborted) throw new TaskCancelledError('This engine stopped (the tab went away); the run resumes from its journal', { cause: e })
        if (cancelCtl.signal.aborted) e = new TaskCancelledError()
        else if (timeCtl.signal.aborted) e = timeCtl.signal.reason as Error
        else if (!(e instanceof OrchestratorError)) e = new OrchestratorError(`The workflow failed: ${e.message}`, { cause: e })
        const begun = journal.events().some((x) => x.type === 'run-started')
        if (begun) {
          const final = e instanceof TaskCancelledError ? 'cancelled' : 'failed'
          await append({ type: 'run-finished', at: Date.now(), status: final, error: { name: e.name, message: e.message }, cost: budget.spent }).catch(() => {})
          status = final
          if (final === 'cancelled') counters.runsCancelled++
          else counters.runsFailed++
        } else status = 'failed'
        throw e
      }
    )
    done.catch(() => {})

    function stepResults(): WorkflowStepResult[] {
      const out: WorkflowStepResult[] = []
      for (const e of journal.events()) {
        if ('step' in e && e.step === true) continue
        if (e.type === 'step-finished')
          out.push({
            id: e.stepId,
            step: e.stepId.split('.')[0],
            status: 'succeeded',
            agent: e.agent ?? '',
            peer: e.peer ?? '',
            ms: e.ms ?? 0,
            cost: e.cost ?? 0,
            output: e.output
          })
        else if (e.type === 'step-failed')
          out.push({
            id: e.stepId,
            step: e.stepId.split('.')[0],
            status: 'failed',
            agent: e.agent ?? '',
            peer: e.peer ?? '',
            ms: 0,
            cost: 0,
            error: e.error.message
          })
        else if (e.type === 'step-skipped') out.push({ id: e.stepId, step: e.stepId.split('.')[0], status: 'skipped', agent: '', peer: '', ms: 0, cost: 0 })
      }
      return out
    }

    // ------------------------------------------------------------ the DAG

    async function runDoc(d: WorkflowDocument, task: unknown, prefix: string, depth: number): Promise<unknown> {
      const states = new Map<string, StepState>()
      const scope = (): Scope => {
        const s: Scope = {
          task,
          steps: Object.fromEntries(
            [...states].map(([id, st]) => [id, { status: st.status, output: st.output, agent: st.agent, peer: st.peer, ms: st.ms, cost: st.cost }])
          )
        }
        for (const step of d.steps) {
          const st = states.get(step.id)
          if (st != null) s[step.output] = st.output
        }
        return s
      }
      const local = new AbortController()
      const sig = AbortSignal.any([signal, local.signal])
      await new Promise<void>((resolve, reject) => {
        const startedSteps = new Set<string>()
        let stopped = false
        const fail = (err: Error): void => {
          if (stopped) return
          stopped = true
          local.abort(err)
          if (prefix === '') failCtl.abort(err)
          reject(err)
        }
        const launch = (): void => {
          if (stopped) return
          if (states.size === d.steps.length) {
            stopped = true
            resolve()
            return
          }
          for (const step of d.steps) {
            if (startedSteps.has(step.id)) continue
            const deps = d.dependencies[step.id] ?? []
            if (!deps.every((x) => states.has(x))) continue
            startedSteps.add(step.id)
            const upstreamFailed = d.execution.fallback_strategy === 'skip' && deps.some((x) => states.get(x)?.failedUpstream === true)
            runDocStep(d, step, prefix, depth, scope(), sig, upstreamFailed).then(
              (st) => {
                states.set(step.id, st)
                launch()
              },
              (err: unknown) => {
                fail(toError(err))
              }
            )
          }
        }
        launch()
      })
      if (d.output !== undefined) return evalTemplate(d.output, scope(), `${prefix}output`)
      let last: StepState | undefined
      for (const st of states.values()) if (st.status === 'succeeded' && (last == null || st.seq > last.seq)) last = st
      return last?.output ?? null
    }

    /** One document step: replayed from the journal if it ended, else run; its end is journalled. */
    async function runDocStep(
      d: WorkflowDocument,
      step: WorkflowStep,
      prefix: string,
      depth: number,
      scope: Scope,
      sig: AbortSignal,
      upstreamFailed: boolean
    ): Promise<StepState> {
      const unit = prefix + step.id
      const ended = stepEnds.get(unit)
      if (ended != null) return stateOf(ended.e, ended.seq)
      const skip = async (reason: string, failedUpstream = false): Promise<StepState> => {
        await append({ type: 'step-skipped', at: Date.now(), stepId: unit, step: true, reason })
        return { status: 'skipped', output: null, agent: '', peer: '', ms: 0, cost: 0, seq, ...(failedUpstream ? { failedUpstream } : {}) }
      }
      if (upstreamFailed) return await skip('a step it depends on failed (fallback_strategy: skip)', true)
      const t0 = Date.now()
      const units: UnitResult[] = []
      try {
        if (step.when != null) {
          const ok = evalExpr(step.when, scope, unit, 'when')
          if (ok !== true) return await skip(`when is ${JSON.stringify(ok)}`)
        }
        const stepSig = step.timeout != null ? AbortSignal.any([sig, AbortSignal.timeout(step.timeout)]) : sig
        const ctx: StepCtx = { d, step, prefix, depth, sig: stepSig, units }
        let output: unknown
        try {
          if (step.for_each != null) {
            const list = evalExpr(step.for_each, scope, unit, 'for_each')
            if (!Array.isArray(list))
              throw new WorkflowExpressionError(unit, `for_each of step "${step.id}" gave ${typeof list}, not a list: make it an expression giving a list`)
            if (step.max_items != null && list.length > step.max_items)
              throw new WorkflowExpressionError(
                unit,
                `for_each of step "${step.id}" gave ${list.length} items, more than its max_items ${step.max_items}: raise max_items or give fewer items`
              )
            output = await mapLimit(
              list,
              step.max_parallel ?? defaultMaxParallel,
              stepSig,
              async (item, i) => await runBody(ctx, `${unit}.${i}`, { ...scope, item, index: i })
            )
          } else output = await runBody(ctx, unit, scope)
        } catch (err) {
          if (step.timeout != null && stepSig.aborted && !sig.aborted)
            throw new WorkflowTimeoutError(unit, `Step "${step.id}" ran out of time (timeout ${step.timeout} ms)`, { cause: err })
          throw err
        }
        if (output instanceof SkipStep) return await skip(output.reason)
        const agent = units.length === 1 ? units[0].agent : ''
        const peer = units.length === 1 ? units[0].peer : ''
        const cost = units.reduce((n, u) => n + u.cost, 0)
        await append({ type: 'step-finished', at: Date.now(), stepId: unit, step: true, output, agent, peer, ms: Date.now() - t0, cost })
        return { status: 'succeeded', output, agent, peer, ms: Date.now() - t0, cost, seq }
      } catch (err) {
        const e = toError(err)
        if (sig.aborted) throw e
        await append({ type: 'step-failed', at: Date.now(), stepId: unit, step: true, error: { name: e.name, message: e.message } })
        if (step.continue_on_error || d.execution.fallback_strategy === 'degraded')
          return { status: 'failed', output: null, agent: '', peer: '', ms: Date.now() - t0, cost: 0, seq }
        if (d.execution.fallback_strategy === 'skip')
          return { status: 'failed', output: null, agent: '', peer: '', ms: Date.now() - t0, cost: 0, seq, failedUpstream: true }
        throw e
      }
    }

    function stateOf(e: Finished | Failed | Skipped, at: number): StepState {
      if (e.type === 'step-finished')
        return { status: 'succeeded', output: e.output, agent: e.agent ?? '', peer: e.peer ?? '', ms: e.ms ?? 0, cost: e.cost ?? 0, seq: at }
      const st: StepState = { status: e.type === 'step-failed' ? 'failed' : 'skipped', output: null, agent: '', peer: '', ms: 0, cost: 0, seq: at }
      if (e.type === 'step-failed') {
        // Replaying: a failure that did not stop the run then does not stop it now.
        const d = doc
        const id = e.stepId.split('.').pop() ?? e.stepId
        const step = d.steps.find((s) => s.id === id)
        if (step != null && !step.continue_on_error && d.execution.fallback_strategy === 'fail') throw new ReplayedStepError(e.stepId, e.error)
        if (d.execution.fallback_strategy === 'skip' && !(step?.continue_on_error ?? false)) st.failedUpstream = true
      }
      if (e.type === 'step-skipped' && e.reason.startsWith('a step it depends on failed')) st.failedUpstream = true
      return st
    }

    interface StepCtx {
      d: WorkflowDocument
      step: WorkflowStep
      prefix: string
      depth: number
      sig: AbortSignal
      units: UnitResult[]
    }

    /** A step body once (or per item): with its loop around it when it has one. */
    async function runBody(ctx: StepCtx, unit: string, scope: Scope): Promise<unknown> {
      const { step } = ctx
      if (step.loop == null) return await runKind(ctx, unit, scope)
      let previous: unknown = null
      let last: unknown = null
      for (let n = 0; n < step.loop.max_iterations; n++) {
        const loop = { index: n, previous }
        last = await runKind(ctx, `${unit}.l${n}`, { ...scope, loop })
        if (evalExpr(step.loop.until, { ...scope, loop, [step.output]: last }, unit, 'loop.until') === true) return last
        previous = last
      }
      if (step.loop.on_max === 'accept') return last
      throw new LoopLimitError(
        unit,
        `Step "${step.id}" reached max_iterations (${step.loop.max_iterations}) before \`until\` held: raise max_iterations, fix until, or set on_max: accept`
      )
    }

    async function runKind(ctx: StepCtx, unit: string, scope: Scope): Promise<unknown> {
      const { step } = ctx
      switch (step.kind) {
        case 'agent': {
          if (step.reflect != null) return await runReflect(ctx, unit, scope)
          const input = step.input === undefined ? scope.task : evalTemplate(step.input, scope, unit)
          return (await callAgent(ctx, unit, step.agent, step.capabilities, input)).output
        }
        case 'approval':
          return await runApproval(ctx, unit, scope)
        case 'debate':
          return await runDebate(ctx, unit, scope)
        case 'plan':
          return await runPlanStep(ctx, unit, scope)
        case 'workflow':
          return await runSubWorkflow(ctx, unit, scope)
      }
    }

    // ------------------------------------------------------------ one agent call

    /** One agent call through the dispatcher (or its journalled result). */
    async function callAgent(
      ctx: StepCtx,
      unit: string,
      ref: string | undefined,
      capabilities: readonly string[] | undefined,
      input: unknown
    ): Promise<UnitResult> {
      const rec = finished.get(unit)
      if (rec != null) {
        counters.unitsReplayed++
        const r = { output: rec.output, agent: rec.agent ?? '', peer: rec.peer ?? '', ms: rec.ms ?? 0, cost: rec.cost ?? 0 }
        ctx.units.push(r)
        return r
      }
      const gone = failed.get(unit)
      if (gone != null) throw new ReplayedStepError(unit, gone.error)
      ctx.sig.throwIfAborted()
      const target = resolveRef(ctx.d, ref, capabilities)
      const candidates =
        target.pinned != null
          ? [target.pinned]
          : components.catalog.list(target.capabilities[0]).filter((a) => target.capabilities.every((c) => a.capabilities.includes(c)))
      if (candidates.length === 0) throw new NoEligibleAgentError(target.capabilities[0])
      const prices = candidates.map((a) => a.price)
      const min = Math.min(...prices)
      const max = Math.max(...prices)
      let hold = Infinity
      if (budget.limit !== Infinity) {
        const left = budget.available()
        if (min > left + 1e-9) {
          const e = new BudgetExceededError(
            unit,
            `Step "${unit}" needs at least ${round(min)} credits but only ${round(left)} of max_cost ${budget.limit} are left (${round(budget.spent)} spent, ${round(budget.reserved)} held by steps running now): stopped before it`
          )
          counters.budgetStops++
          await append({ type: 'step-failed', at: Date.now(), stepId: unit, error: { name: e.name, message: e.message } })
          throw e
        }
        hold = Math.min(max, left)
        budget.reserve(unit, hold)
      }
      const attempt = (starts.get(unit) ?? 0) + 1
      const idempotencyKey = `${runId}/${unit}`
      const policyAttempts = ctx.d.execution.retry_failed ? (ctx.step.retry ?? 3) : 1
      let prefs: ReturnType<typeof resolvePreferences>
      try {
        prefs = resolvePreferences(
          {
            ...opts.preferences,
            ...target.preferences,
            ...ctx.step.preferences,
            ...(hold !== Infinity ? { max_cost: hold } : {}),
            retry_policy: { ...opts.preferences?.retry_policy, max_attempts: policyAttempts }
          } as RoutingPreferences,
          (m) => new WorkflowExpressionError(unit, `The preferences of step "${ctx.step.id}" are not valid: ${m}`)
        )
      } catch (err) {
        budget.release(unit)
        throw err
      }
      const plan: Plan = {
        subtasks: [
          {
            id: unit,
            description: `${ctx.d.name}: ${ctx.step.id}`,
            capabilities: [...target.capabilities],
            dependencies: [],
            input: { from: 'task.input' },
            estimated_cost: min
          }
        ],
        execution_mode: 'sequential',
        total_estimated_cost: min,
        planner: 'direct'
      }
      let tries = 0
      for (;;) {
        tries++
        try {
          return await dispatchOnce(ctx, unit, plan, prefs, target.pinned, input, tries === 1 ? attempt : (starts.get(unit) ?? 0) + 1, idempotencyKey)
        } catch (err) {
          const e = toError(err)
          // retry_failed: the step is tried again by its retry policy (the dispatcher already tried every other choice).
          if (ctx.sig.aborted || !(e instanceof StepFailedError) || e instanceof BudgetExceededError || tries >= policyAttempts) {
            budget.release(unit)
            if (!ctx.sig.aborted) await append({ type: 'step-failed', at: Date.now(), stepId: unit, error: { name: e.name, message: e.message } })
            throw e
          }
          counters.unitsRetried++
          await sleep(prefs.retry_policy.backoff_ms * prefs.retry_policy.backoff_multiplier ** (tries - 1), ctx.sig)
          if (hold !== Infinity && !budget.reserve(unit, hold)) {
            const b = new BudgetExceededError(unit, `Step "${unit}" cannot be retried within max_cost ${budget.limit}: stopped before it`)
            await append({ type: 'step-failed', at: Date.now(), stepId: unit, error: { name: b.name, message: b.message } })
            throw b
          }
        }
      }
    }

    async function dispatchOnce(
      ctx: StepCtx,
      unit: string,
      plan: Plan,
      prefs: ReturnType<typeof resolvePreferences>,
      pinned: AgentCandidate | undefined,
      input: unknown,
      attempt: number,
      idempotencyKey: string
    ): Promise<UnitResult> {
      {
        counters.unitsDispatched++
        await append({ type: 'step-started', at: Date.now(), stepId: unit, attempt, idempotencyKey })
        const run = await components.runPlan(plan, {
          taskId: runId,
          input,
          prefs,
          signal: ctx.sig,
          ...(pinned != null ? { pinned: new Map([[unit, pinned.id]]) } : {}),
          onStep: (e) => {
            for (const l of stepListeners) {
              try {
                l(e)
              } catch (err) {
                log.error('a step listener threw: %s', toError(err).message)
              }
            }
          }
        })
        const s = run.steps[0]
        budget.commit(unit, run.cost)
        const r: UnitResult = { output: s.output, agent: s.agent, peer: s.peer, ms: s.ms, cost: run.cost }
        await append({ type: 'step-finished', at: Date.now(), stepId: unit, output: s.output, agent: s.agent, peer: s.peer, ms: s.ms, cost: run.cost })
        ctx.units.push(r)
        return r
      }
    }

    /** An alias, a registry agent, or capabilities. */
    function resolveRef(
      d: WorkflowDocument,
      ref: string | undefined,
      capabilities: readonly string[] | undefined
    ): { capabilities: readonly string[]; pinned?: AgentCandidate; preferences?: RoutingPreferences } {
      if (ref == null) {
        if (capabilities == null || capabilities.length === 0) throw new UnknownAgentError('The step names no agent and no capabilities')
        return { capabilities }
      }
      const alias = d.agents.find((a) => a.name === ref)
      const pinnedRef = alias != null ? alias.agent : ref
      if (alias?.capabilities != null) return { capabilities: alias.capabilities, ...(alias.preferences != null ? { preferences: alias.preferences } : {}) }
      const agent = pinnedRef != null ? findAgent(components.catalog, pinnedRef) : undefined
      if (agent == null) throw new UnknownAgentError(`No alias or registry agent is named "${ref}": check the name or publish it`)
      return { capabilities: [agent.capabilities[0]], pinned: agent, ...(alias?.preferences != null ? { preferences: alias.preferences } : {}) }
    }

    // ------------------------------------------------------------ patterns

    async function runReflect(ctx: StepCtx, unit: string, scope: Scope): Promise<unknown> {
      const { step } = ctx
      const r = step.reflect!
      let previous: unknown = null
      let critique: unknown = null
      let answer: unknown = null
      for (let round = 0; round < r.max_rounds; round++) {
        const reflection = { round, previous, critique }
        const sc = { ...scope, reflection }
        const input = step.input === undefined ? scope.task : evalTemplate(step.input, sc, unit)
        answer = (await callAgent(ctx, `${unit}.r${round}`, step.agent, step.capabilities, input)).output
        if (round === r.max_rounds - 1) break
        critique = (await callAgent(ctx, `${unit}.r${round}.critic`, r.critic, undefined, { input, output: answer })).output
        if (evalExpr(r.until, { ...scope, reflection: { round, previous, critique }, [step.output]: answer }, unit, 'reflect.until') === true) break
        previous = answer
      }
      return answer
    }

    async function runDebate(ctx: StepCtx, unit: string, scope: Scope): Promise<unknown> {
      const db = ctx.step.debate!
      const input = ctx.step.input === undefined ? scope.task : evalTemplate(ctx.step.input, scope, unit)
      const proposals: Array<{ agent: string; round: number; output: unknown }> = []
      let lastRound: Array<{ agent: string; round: number; output: unknown }> = []
      for (let round = 1; round <= db.rounds; round++) {
        const given = round === 1 ? input : { input, proposals: lastRound }
        const outs = await Promise.all(db.agents.map(async (a, k) => (await callAgent(ctx, `${unit}.d${round}.${k}`, a, undefined, given)).output))
        lastRound = outs.map((output, k) => ({ agent: db.agents[k], round, output }))
        proposals.push(...lastRound)
      }
      const groups = new Map<string, { output: unknown; count: number; agents: string[]; first: number }>()
      lastRound.forEach((p, k) => {
        const key = canonicalize(p.output) ?? 'null'
        const g = groups.get(key) ?? { output: p.output, count: 0, agents: [], first: k }
        g.count++
        g.agents.push(p.agent)
        groups.set(key, g)
      })
      const votes = [...groups.values()].sort((a, b) => b.count - a.count || a.first - b.first).map(({ output, count, agents }) => ({ output, count, agents }))
      let decision: unknown = votes[0]?.output ?? null
      if (db.decide === 'judge') decision = (await callAgent(ctx, `${unit}.judge`, db.judge, undefined, { input, proposals: lastRound })).output
      return { decision, proposals, votes }
    }

    async function runApproval(ctx: StepCtx, unit: string, scope: Scope): Promise<unknown> {
      const a = ctx.step.approval!
      if (!requested.has(unit)) {
        counters.approvalsRequested++
        const prompt = evalTemplate(a.prompt, scope, unit)
        const show = a.show === undefined ? undefined : evalTemplate(a.show, scope, unit)
        await append({
          type: 'approval-requested',
          at: Date.now(),
          stepId: unit,
          prompt: typeof prompt === 'string' ? prompt : JSON.stringify(prompt),
          ...(show !== undefined ? { show } : {}),
          ...(a.timeout != null ? { timeoutMs: a.timeout } : {})
        })
      }
      refreshStatus()
      const req = requested.get(unit)!
      if (!decided.has(unit)) {
        ctx.sig.throwIfAborted()
        await new Promise<void>((resolve, reject) => {
          let timer: ReturnType<typeof setTimeout> | undefined
          const end = (): void => {
            clearTimeout(timer)
            waiters.delete(unit)
            ctx.sig.removeEventListener('abort', onAbort)
          }
          const onAbort = (): void => {
            end()
            reject(toError(ctx.sig.reason ?? new TaskCancelledError()))
          }
          waiters.set(unit, () => {
            end()
            resolve()
          })
          ctx.sig.addEventListener('abort', onAbort, { once: true })
          if (a.timeout != null) {
            timer = setTimeout(
              () => {
                if (!decided.has(unit)) append({ type: 'approval-decided', at: Date.now(), stepId: unit, approved: false, comment: 'timed out' }).catch(reject)
              },
              Math.max(0, req.requestedAt + a.timeout - Date.now())
            )
          }
        })
      }
      refreshStatus()
      const dec = decided.get(unit)!
      if (dec.approved) return { approved: true, comment: dec.comment ?? null, value: dec.value ?? null }
      if (a.on_reject === 'skip') return new SkipStep(`the approval was rejected${dec.comment != null ? `: ${dec.comment}` : ''}`)
      throw new ApprovalRejectedError(
        unit,
        `The approval "${req.prompt.slice(0, 80)}" was rejected${dec.comment != null ? `: ${dec.comment}` : ''}, so the workflow stopped (on_reject: fail)`
      )
    }

    async function runPlanStep(ctx: StepCtx, unit: string, scope: Scope): Promise<unknown> {
      let plan = plans.get(unit)
      const input = ctx.step.input === undefined ? scope.task : evalTemplate(ctx.step.input, scope, unit)
      if (plan == null) {
        if (components.planTask == null) throw new OrchestratorError('This engine has no planner, so `plan:` steps cannot run')
        const text = evalTemplate(ctx.step.plan!, scope, unit)
        plan = await components.planTask({ description: typeof text === 'string' ? text : JSON.stringify(text), hasInput: input != null }, { signal: ctx.sig })
        await append({ type: 'plan-made', at: Date.now(), stepId: unit, plan })
      }
      const p = plan
      const outputs = new Map<string, unknown>()
      const done = new Set<string>()
      const runChild = async (id: string): Promise<void> => {
        const sub = p.subtasks.find((s) => s.id === id)!
        const r = await callAgent(ctx, `${unit}.p.${id}`, undefined, sub.capabilities, resolveInput(sub.input, input, outputs))
        outputs.set(id, r.output)
        done.add(id)
      }
      // The planned children as a DAG (ready children run at once).
      const pending = new Set(p.subtasks.map((s) => s.id))
      while (pending.size > 0) {
        const ready = [...pending].filter((id) => p.subtasks.find((s) => s.id === id)!.dependencies.every((x) => done.has(x)))
        if (ready.length === 0) throw new OrchestratorError('The plan has a dependency cycle')
        for (const id of ready) pending.delete(id)
        if (p.execution_mode === 'sequential') for (const id of ready) await runChild(id)
        else await Promise.all(ready.map(runChild))
      }
      const sinks = p.subtasks.filter((s) => !p.subtasks.some((o) => o.dependencies.includes(s.id)))
      return sinks.length === 1 ? outputs.get(sinks[0].id) : Object.fromEntries(sinks.map((s) => [s.id, outputs.get(s.id)]))
    }

    async function runSubWorkflow(ctx: StepCtx, unit: string, scope: Scope): Promise<unknown> {
      const name = ctx.step.workflow!
      if (ctx.depth + 1 > maxDepth)
        throw new WorkflowValidationError([], `Sub-workflows nest deeper than ${maxDepth} at "${unit}": a workflow may be including itself`)
      const yaml = components.workflows?.get(name)
      if (yaml == null) throw new WorkflowValidationError([], `No saved workflow is named "${name}": save it first or fix the name`)
      const parsed = parseWorkflow(yaml, { catalog: components.catalog })
      if (!parsed.ok)
        throw new WorkflowValidationError(
          parsed.errors,
          `The saved workflow "${name}" is not valid: line ${parsed.errors[0].line}, column ${parsed.errors[0].column}: ${parsed.errors[0].message}`
        )
      const input = ctx.step.input === undefined ? scope.task : evalTemplate(ctx.step.input, scope, unit)
      const bad = validateWorkflowInput(parsed.doc, input)
      if (bad.length > 0) throw new WorkflowInputError(bad, `The input of sub-workflow "${name}" does not match its inputs: ${bad[0].message}`)
      return await runDoc(parsed.doc, input, `${unit}.w.`, ctx.depth + 1)
    }

    // ------------------------------------------------------------ the handle

    return {
      id: runId,
      get status() {
        return status
      },
      events: () => journal.events(),
      subscribe(listener) {
        listeners.add(listener)
        return () => {
          listeners.delete(listener)
        }
      },
      onStep(listener) {
        stepListeners.add(listener)
        return () => {
          stepListeners.delete(listener)
        }
      },
      pendingApprovals: () => [...requested.values()].filter((r) => !decided.has(r.stepId)),
      approve(stepId, decision = {}) {
        decide(stepId, true, decision.comment, decision.value)
      },
      reject(stepId, reason) {
        decide(stepId, false, reason)
      },
      cancel() {
        cancelCtl.abort(new TaskCancelledError())
      },
      done
    }

    function decide(stepId: string, approved: boolean, comment?: string, value?: unknown): void {
      if (!requested.has(stepId) || decided.has(stepId)) throw new WorkflowApprovalError(`Step "${stepId}" is not waiting for an approval`)
      if (status !== 'waiting' && status !== 'running') throw new WorkflowApprovalError(`The run is ${status}: nothing is waiting for an approval`)
      append({
        type: 'approval-decided',
        at: Date.now(),
        stepId,
        approved,
        ...(comment != null ? { comment } : {}),
        ...(value !== undefined ? { value } : {})
      }).catch((err: unknown) => {
        log.error('journalling the approval of %s failed: %s', stepId, toError(err).message)
      })
    }
  }

  return { start, check, stats: () => ({ ...counters }) }
}

/** An approval rejected with `on_reject: skip`: the step ends skipped. */
class SkipStep {
  constructor(readonly reason: string) {}
}

function evalExpr(text: string, scope: Scope, unit: string, what: string): unknown {
  const b = bareExpression(text)
  try {
    return compileExpression(b.expr).evaluate(scope)
  } catch (err) {
    throw new WorkflowExpressionError(unit, `The ${what} of step "${unit}" (${b.expr.trim().slice(0, 80)}) could not be evaluated: ${toError(err).message}`)
  }
}

function evalTemplate(value: unknown, scope: Scope, unit: string): unknown {
  try {
    return interpolate(value, scope)
  } catch (err) {
    throw new WorkflowExpressionError(unit, `An expression in the input of "${unit}" could not be evaluated: ${toError(err).message}`)
  }
}

/** Run fn over items with at most `limit` at once; results in item order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, signal: AbortSignal, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  let failed: Error | undefined
  const worker = async (): Promise<void> => {
    while (next < items.length && failed == null) {
      signal.throwIfAborted()
      const i = next++
      try {
        out[i] = await fn(items[i], i)
      } catch (err) {
        failed ??= toError(err)
        throw err
      }
    }
  }
  const results = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  if (failed != null) throw failed
  for (const r of results) if (r.status === 'rejected') throw r.reason
  return out
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> => abortableSleep(ms, signal, toError)

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6
}
