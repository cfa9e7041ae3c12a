/**
 * The orchestrator facade (API.md): submit → plan → route → dispatch → result.
 */
import { serveAgentFetch } from './donor/index.ts'
import * as v from 'valibot'
import type { AgentBlobStore, AgentCatalog, LocalExecutor, OutcomeSink, PeerDirectory, ReputationSource, RoutingTrust } from './components.ts'
import {
  dispatcher as createDispatcher,
  type Dispatcher,
  type DispatcherInit,
  type StepEvent,
  type StepRecord,
  type TokenEvent,
  type TransferEvent
} from './dispatch/index.ts'
import { type DonorService, type DonorServiceComponents, type DonorServiceInit, donorService } from './donor/index.ts'
import { InvalidTaskRequestError, OrchestratorError, TaskCancelledError, UnknownAgentError, toError } from './errors.ts'
import { newTaskId, type TaskId } from './ids.ts'
import { TypedEventEmitter, listen, logger, settledWithin, type Tracer } from '../core/index.ts'
import type { Plan } from './plan/index.ts'
import { capabilityCatalog, describeInput, plannerChain, type PlanRequest, type Planner } from './plan/index.ts'
import { deterministicPlanner } from './plan/index.ts'
import { resolvePreferences, type RoutingPreferences } from './route/index.ts'
import {
  CapacityBook,
  LlmSpeedBook,
  router as createRouterService,
  teeOutcomes,
  type PeerWindowsInit,
  type RouteLearning,
  type Router,
  type RouterInit
} from './route/index.ts'
import type { TaskTransport } from './dispatch/index.ts'
import { validatePlan } from './plan/index.ts'
import { ToolScopeSchema, type ToolScope } from '../runtime/index.ts'
import { parseVerificationMode, verificationFactor, type SpendGuard, type StepVerifier, type VerificationMode } from './trust/index.ts'

const log = logger('orchestrator')

/** A task as submitted (API.md). */
export const TaskRequestSchema = v.object({
  description: v.pipe(v.string(), v.minLength(1, 'describe the task'), v.maxLength(4000)),
  input: v.optional(v.unknown()),
  /** Run this agent (by id or name) instead of planning. */
  agent: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(128))),
  capabilities: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(64))), v.maxLength(16))),
  preferences: v.optional(v.record(v.string(), v.unknown())),
  /** What the task's agents may touch through tools (issue 14), e.g. `{ memory: ['notes'] }`. */
  tools: v.optional(ToolScopeSchema)
})
/** A task as submitted. */
export interface TaskRequest {
  description: string
  input?: unknown
  agent?: string
  capabilities?: string[]
  preferences?: RoutingPreferences & { verification?: VerificationMode }
  /** What the task's agents may touch through tools (issue 14): the memory namespaces `memory.get` / `memory.set` may use. */
  tools?: ToolScope
}

/** The result of a task (API.md). */
export interface TaskResult {
  id: string
  status: 'succeeded' | 'failed'
  /** The output of the last step, or `{ [stepId]: output }` when several steps end the plan. */
  output: unknown
  steps: Array<{ id: string; agent: string; peer: string; ms: number; status: string; output?: unknown; verification?: StepRecord['verification'] }>
  cost: number
  plan: Plan
}

/** Progress of a task. */
export interface ProgressEvent {
  taskId: string
  phase: 'planning' | 'planned' | 'running' | 'succeeded' | 'failed' | 'cancelled'
  planner?: string
  stepsDone: number
  steps: number
  message?: string
  /** The validated plan, on the 'planned' event (so a UI can draw the whole DAG before steps run). */
  plan?: Plan
  /** On 'running' events while a large input or output crosses the mesh: bytes so far of one step's transfer. */
  transfer?: TransferEvent
  /** On 'running' events while an llm-prompt step generates: the next piece of its text (issue 14). */
  tokens?: TokenEvent
}

/** The events of one task, as its handle's `on()` delivers them (their `detail`). */
export interface TaskEvents {
  progress: CustomEvent<ProgressEvent>
  step: CustomEvent<StepEvent>
}

/** A submitted task (API.md). */
export interface TaskHandle {
  id: TaskId
  /** Resolves with the result; rejects with an `OrchestratorError` subclass that says what failed. */
  done: Promise<TaskResult>
  on(event: 'progress', listener: (e: ProgressEvent) => void): () => void
  on(event: 'step', listener: (e: StepEvent) => void): () => void
  cancel(): void
}

/** One line of `tasks()`. */
export interface TaskSummary {
  id: TaskId
  description: string
  status: 'planning' | 'running' | 'succeeded' | 'failed' | 'cancelled'
  planner?: string
  steps: number
  stepsDone: number
  cost: number
  createdAt: number
  finishedAt?: number
  error?: string
}

/** The longest a task waits for the catalog's first fill (OrchestratorComponents.catalogReady) before it is planned. */
export const TASK_CATALOG_WAIT_MS = 30_000

/** Everything the orchestrator needs from the app. */
export interface OrchestratorComponents {
  catalog: AgentCatalog
  /**
   * Resolves once the catalog holds what this peer has of its own (the bundled agents, the
   * registry's saved entries). A task submitted before (a script calling submit as the page
   * opens, a peer just started) waits for it, at most TASK_CATALOG_WAIT_MS, rather than failing
   * with "No agent … is known" or "No agent offers …". Default: nothing to wait for.
   */
  catalogReady?: Promise<unknown>
  peers: PeerDirectory
  reputation?: ReputationSource
  transport: TaskTransport
  /** This peer's runtime: needed to donate and to run steps locally. */
  executor?: LocalExecutor
  blobs?: AgentBlobStore
  outcomes?: OutcomeSink
  /** Planners in order (e.g. WebLLM, remote). The deterministic planner is always appended. */
  planners?: Planner[]
  /** Verification, reputation and credits (trust/); without it results are accepted as they come. */
  trust?: StepVerifier
  /** What the router reads of trust (verified quality, run times, users' reputation): usually the same trust service. */
  routing?: RoutingTrust
  /** Routing's learning (bandit, A/B, anomalies): the router reads it and every step outcome feeds it. */
  learning?: RouteLearning
  /** Spans of runs and of the steps this peer serves (core/trace); tracing is off without it. */
  tracer?: Tracer
  /** The profile's spending limits (balance + allowance, daily budget): a task over them is refused before it runs. */
  spending?: SpendGuard
  /** Told of every step this peer served as a donor (the app's audit log). */
  served?: DonorServiceComponents['served']
  /** Resolves once a planned task's record is durable (the app's journal): awaited before its first step is offered. */
  durable?: (taskId: TaskId) => Promise<void>
}

/** Options, with defaults. */
export interface OrchestratorInit {
  router?: RouterInit
  dispatcher?: DispatcherInit
  /** Serve offers from other peers (needs an executor). Default false; see `donate()`. */
  donate?: boolean
  donor?: DonorServiceInit
  /** Finished tasks kept in `tasks()`. Default 200. */
  historySize?: number
}

/** The orchestrator. */
export interface Orchestrator {
  submit(request: TaskRequest): TaskHandle
  tasks(): TaskSummary[]
  /** Start or stop serving offers from other peers. */
  donate(enabled: boolean): Promise<void>
  start(): Promise<void>
  stop(): Promise<void>
  readonly router: Router
  stats(): Record<string, number>
  /** Run a validated plan through this orchestrator's dispatcher: the path workflows take (same routing, retries, budgets). */
  runPlan: Dispatcher['run']
  /**
   * Check `estimate` credits of agent prices (verification replicas counted as `runPlan` counts them) against the
   * profile's spending limits: throws CreditLimitError or DailyBudgetExceededError naming `what` and the figures,
   * else holds it until the returned release (workflows check a whole run with it before its first step).
   */
  authorizeSpend(estimate: number, what: string, verification?: VerificationMode): () => void
  /** Plan a request with the planner chain, the plan validated against the catalog (a workflow's `plan:` steps). */
  planTask(request: PlanRequest, opts: { signal: AbortSignal }): Promise<Plan>
}

/**
 * The orchestrator as a service (`orchestratorService(init)(components)`, the js-libp2p
 * factory shape every service here follows).
 */
export function orchestratorService(init: OrchestratorInit = {}): (components: OrchestratorComponents) => Orchestrator {
  return (components) => createOrchestrator(components, init)
}

/** Create the orchestrator; the same as `orchestratorService(init)(components)`, kept for existing callers. */
export function createOrchestrator(components: OrchestratorComponents, init: OrchestratorInit = {}): Orchestrator {
  // Capacity donors have shown: the dispatcher's windows write it, the router reads it (issue 11 item 6).
  const capacity = new CapacityBook()
  // Donors' generation speed as measured here (issue 14): the dispatcher writes it, the router prefers the faster by it.
  const llmSpeed = new LlmSpeedBook()
  const router = createRouterService(init.router)({ ...components, capacity, llmSpeed })
  // The dispatcher hands `window` to its PeerWindows as is.
  const window: PeerWindowsInit = { ...init.dispatcher?.window, capacity }
  const dispatch: Dispatcher = createDispatcher({ ...init.dispatcher, window })({
    transport: components.transport,
    router,
    executor: components.executor,
    outcomes: components.learning == null ? components.outcomes : teeOutcomes(components.outcomes, components.learning),
    trust: components.trust,
    tracer: components.tracer,
    llmSpeed,
    ...(components.peers.self != null ? { self: () => components.peers.self?.() } : {})
  })
  const chain = plannerChain([...(components.planners ?? []), deterministicPlanner()])
  const history = new Map<TaskId, TaskSummary>()
  let donor: DonorService | undefined
  let started = false
  let stopServingAgents: (() => void) | undefined

  async function donate(enabled: boolean): Promise<void> {
    if (enabled && donor == null) {
      if (components.executor == null) throw new OrchestratorError('This peer has no agent runtime, so it cannot donate')
      donor = donorService({ ...init.donor, serveAgentFetch: false })({
        transport: components.transport,
        executor: components.executor,
        blobs: components.blobs,
        users: components.trust,
        tracer: components.tracer,
        served: components.served
      })
      await donor.start()
    } else if (!enabled && donor != null) {
      await donor.stop()
      donor = undefined
    }
  }

  function trim(): void {
    const max = init.historySize ?? 200
    for (const [id, s] of history) {
      if (history.size <= max) break
      if (s.finishedAt != null) history.delete(id)
    }
  }

  function submit(request: TaskRequest): TaskHandle {
    const id = newTaskId()
    const controller = new AbortController()
    const events = new TypedEventEmitter<TaskEvents>()
    const summary: TaskSummary = {
      id,
      description: String(request?.description ?? '').slice(0, 200),
      status: 'planning',
      steps: 0,
      stepsDone: 0,
      cost: 0,
      createdAt: Date.now()
    }
    history.set(id, summary)
    trim()
    const emit = <K extends keyof TaskEvents>(kind: K, detail: TaskEvents[K]['detail']): void => {
      events.safeDispatchEvent(kind, { detail })
    }
    const progress = (phase: ProgressEvent['phase'], message?: string, plan?: Plan): void => {
      emit('progress', {
        taskId: id,
        phase,
        planner: summary.planner,
        steps: summary.steps,
        stepsDone: summary.stepsDone,
        ...(message != null ? { message } : {}),
        ...(plan != null ? { plan } : {})
      })
    }

    /** The plan once made, and each step's latest state: a cancel ends every step not finished. */
    let planned: Plan | undefined
    /** Frees the estimate the spending guard holds for this task (when it finishes, either way). */
    let release: (() => void) | undefined
    const stepState = new Map<string, StepEvent>()
    const done = (async (): Promise<TaskResult> => {
      await Promise.resolve() // let the caller attach listeners first
      const parsed = v.safeParse(TaskRequestSchema, request)
      if (!parsed.success) {
        const i = parsed.issues[0]
        throw new InvalidTaskRequestError(`The task request is not valid: ${i.path?.map((p) => String(p.key)).join('.') ?? ''} ${i.message}`.trim())
      }
      const prefs = resolvePreferences(request.preferences, (m) => new InvalidTaskRequestError(m))
      const verification = parseVerificationMode(request.preferences?.verification, (m) => new InvalidTaskRequestError(m))
      // Verification replicas are paid from max_cost too: the estimate counts them (issue 12).
      const limits = { ...prefs, resultsPerStep: components.trust == null ? 1 : verificationFactor(verification) }
      progress('planning')
      if (components.catalogReady != null) {
        await settledWithin(components.catalogReady, TASK_CATALOG_WAIT_MS, controller.signal)
        controller.signal.throwIfAborted()
      }
      let plan: Plan
      const pinned = new Map<string, string>()
      if (request.agent != null) {
        const agent =
          components.catalog.list().find((a) => a.id === request.agent) ??
          components.catalog
            .list()
            .filter((a) => a.name === request.agent)
            .sort((a, b) => b.version.localeCompare(a.version, undefined, { numeric: true }))[0]
        if (agent == null) throw new UnknownAgentError(`No agent with id or name "${request.agent}" is known: check the name or publish it`)
        plan = validatePlan(
          {
            subtasks: [
              {
                id: 's1',
                description: request.description,
                capabilities: [agent.capabilities[0]],
                dependencies: [],
                input: { from: 'task.input' },
                estimated_cost: agent.price
              }
            ],
            execution_mode: 'sequential',
            total_estimated_cost: agent.price,
            planner: 'direct'
          },
          components.catalog,
          limits
        )
        pinned.set('s1', agent.id)
      } else {
        plan = await chain.plan(
          {
            description: request.description,
            capabilities: request.capabilities,
            hasInput: hasInput(request.input),
            ...(llmInput(request.input) ?? {})
          },
          capabilityCatalog(components.catalog),
          (p) => validatePlan(p, components.catalog, limits),
          { signal: controller.signal }
        )
      }
      planned = plan
      summary.planner = plan.planner
      summary.steps = plan.subtasks.length
      summary.status = 'running'
      progress('planned', undefined, plan)
      controller.signal.throwIfAborted()
      // Refused here, before any step runs, when the estimate would pass the allowance or today's budget.
      release = components.spending?.authorize(plan.total_estimated_cost, `The task "${summary.description.slice(0, 60)}"`)
      // A tab that carries the task on after a reload or crash starts from this record: saved before any step is
      // offered. The dispatcher routes and opens the stream to the donor meanwhile, and sends the offer once it is.
      const ready = components.durable?.(id)
      ready?.catch(() => {})
      const run = await dispatch.run(plan, {
        ...(ready != null ? { ready } : {}),
        taskId: id,
        input: request.input,
        prefs,
        signal: controller.signal,
        pinned,
        verification,
        ...(parsed.output.tools != null ? { tools: parsed.output.tools } : {}),
        onTransfer: (transfer) => {
          emit('progress', { taskId: id, phase: 'running', planner: summary.planner, steps: summary.steps, stepsDone: summary.stepsDone, transfer })
        },
        onTokens: (tokens) => {
          emit('progress', { taskId: id, phase: 'running', planner: summary.planner, steps: summary.steps, stepsDone: summary.stepsDone, tokens })
        },
        onStep: (e) => {
          stepState.set(e.stepId, e)
          if (e.status === 'succeeded') {
            summary.stepsDone++
            progress('running')
          }
          emit('step', e)
        }
      })
      const sinks = plan.subtasks.filter((s) => !plan.subtasks.some((o) => o.dependencies.includes(s.id)))
      const output = sinks.length === 1 ? run.outputs.get(sinks[0].id) : Object.fromEntries(sinks.map((s) => [s.id, run.outputs.get(s.id)]))
      summary.cost = run.cost
      return {
        id,
        status: 'succeeded',
        output,
        steps: run.steps.map((s) => ({
          id: s.id,
          agent: s.agent,
          peer: s.peer,
          ms: s.ms,
          status: s.status,
          output: s.output,
          ...(s.verification != null ? { verification: s.verification } : {})
        })),
        cost: run.cost,
        plan
      }
    })().then(
      (r) => {
        release?.()
        summary.status = 'succeeded'
        summary.finishedAt = Date.now()
        progress('succeeded')
        return r
      },
      (err: unknown) => {
        release?.()
        const cause = toError(err)
        let e: Error = cause
        if (controller.signal.aborted && !(cause instanceof TaskCancelledError)) e = new TaskCancelledError(undefined, { cause })
        else if (!(cause instanceof OrchestratorError)) e = new OrchestratorError(`The task failed: ${cause.message}`, { cause })
        summary.status = e instanceof TaskCancelledError ? 'cancelled' : 'failed'
        if (summary.status === 'cancelled') {
          // Steps the dispatcher never reached (cancelled between planning and dispatch) are cancelled too.
          for (const s of planned?.subtasks ?? []) {
            const last = stepState.get(s.id)
            if (last?.status === 'succeeded' || last?.status === 'cancelled') continue
            emit('step', { taskId: id, stepId: s.id, status: 'cancelled', attempt: last?.attempt ?? 0, agent: last?.agent ?? '', peer: last?.peer ?? '' })
          }
        }
        summary.error = e.message
        summary.finishedAt = Date.now()
        progress(summary.status === 'cancelled' ? 'cancelled' : 'failed', e.message)
        throw e
      }
    )
    // A caller that never awaits `done` must not crash the page with an unhandled rejection.
    done.catch(() => {})

    return {
      id,
      done,
      on(event: keyof TaskEvents, listener: (e: never) => void) {
        return listen(
          events,
          event,
          (e) => {
            ;(listener as (detail: unknown) => void)(e.detail)
          },
          {
            onError: (err) => {
              log.error('a %s listener threw: %s', event, toError(err).message)
            }
          }
        )
      },
      cancel() {
        controller.abort(new TaskCancelledError())
      }
    }
  }

  return {
    submit,
    tasks: () => [...history.values()].map((s) => ({ ...s })),
    donate,
    router,
    async start() {
      if (started) return
      started = true
      await components.transport.start()
      await dispatch.start()
      // A holder serves agent bytes whether or not it donates compute.
      if (components.blobs != null) stopServingAgents = serveAgentFetch(components.transport, components.blobs)
      if (init.donate === true) await donate(true)
    },
    async stop() {
      if (!started) return
      started = false
      stopServingAgents?.()
      stopServingAgents = undefined
      await donate(false)
      await dispatch.stop()
      await components.transport.stop()
    },
    authorizeSpend(estimate, what, verification) {
      const per = components.trust == null ? 1 : verificationFactor(verification)
      return components.spending?.authorize(Math.round(estimate * per * 1e6) / 1e6, what) ?? (() => {})
    },
    async runPlan(plan, opts) {
      // Plans run outside submit (workflow steps, resumed tasks) are held to the same spending limits, replicas counted:
      // refused with CreditLimitError or DailyBudgetExceededError before the plan's first step.
      const per = components.trust == null ? 1 : verificationFactor(opts.verification)
      const estimate = Math.round(plan.subtasks.reduce((n, s) => n + s.estimated_cost, 0) * per * 1e6) / 1e6
      const steps = plan.subtasks.map((s) => `"${s.id.slice(0, 40)}"`).join(', ')
      const release = components.spending?.authorize(estimate, `${plan.subtasks.length === 1 ? 'Step' : 'Steps'} ${steps} of ${opts.taskId.slice(0, 60)}`)
      try {
        return await dispatch.run(plan, opts)
      } finally {
        release?.()
      }
    },
    planTask: (request, opts) =>
      chain.plan(
        request,
        capabilityCatalog(components.catalog),
        (p) =>
          validatePlan(
            p,
            components.catalog,
            resolvePreferences(undefined, (m) => new InvalidTaskRequestError(m))
          ),
        opts
      ),
    stats: () => ({ ...dispatch.stats(), ...Object.fromEntries(Object.entries(donor?.stats() ?? {}).map(([k, n]) => [`donor.${k}`, n])) })
  }
}

/** The input's preview for LLM planners, as a spreadable field (none when there is no input). */
function llmInput(input: unknown): { inputPreview: string } | undefined {
  const preview = describeInput(input)
  return preview == null ? undefined : { inputPreview: preview }
}

/** Whether a request carries an input a step can run on (an empty string or empty bytes is none). */
function hasInput(input: unknown): boolean {
  if (input == null) return false
  if (typeof input === 'string') return input.trim() !== ''
  if (input instanceof Uint8Array) return input.byteLength > 0
  return true
}
