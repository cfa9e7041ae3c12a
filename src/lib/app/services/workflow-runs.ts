/**
 * Workflow runs of this profile: `runWorkflow(yaml, input)`, their handles, approvals, and
 * the resume of every unfinished run when a tab starts (WORKFLOWS.md "Durability").
 *
 * Each run is journalled in the private journal doc (run-store.ts) and run by exactly one
 * tab: the one holding its Web Lock (run-locks.ts). A starting tab queues for the lock of
 * every unfinished run; whoever gets it re-reads the journal and, if the run is still not
 * finished, starts the engine over that journal, which skips every finished step and
 * re-offers in-flight ones under their idempotency keys. The handle a tab gives out follows
 * the journal, so it is live in every tab, whichever one runs the workflow; an approval
 * taken in a tab that does not run it is recorded as a decision the running tab applies.
 */
import { logger, settledWithin } from '../../core/index.ts'
import {
  OrchestratorError,
  storedDocument,
  TaskCancelledError,
  TASK_CATALOG_WAIT_MS,
  WorkflowInputError,
  WorkflowValidationError,
  type TaskId,
  type WorkflowDocument,
  type WorkflowEngine,
  type WorkflowEngineComponents,
  type WorkflowError,
  type WorkflowEvent,
  type WorkflowJournal,
  type WorkflowModule,
  type WorkflowRun,
  type WorkflowStepResult
} from '../../orchestrator/index.ts'
import { type RunLease, type RunLocks, runLockName } from './run-locks.ts'
import { projectRun, type RunView } from './run-view.ts'
import { RUN_LIMITS, isFinished, type RunMeta, type RunStore } from './run-store.ts'
import { small } from '../task-journal.ts'

const log = logger('app:workflows')

/** What a workflow run's `done` resolves with (API.md's TaskResult, with every unit of work in `steps`). */
export interface WorkflowTaskResult {
  id: string
  status: 'succeeded'
  output: unknown
  steps: WorkflowStepResult[]
  cost: number
}

/** The `approval` event: a step waits for a person. */
export interface ApprovalEvent {
  taskId: string
  stepId: string
  prompt: string
  show?: unknown
}

/** Progress of a workflow run. */
export interface WorkflowProgressEvent {
  taskId: string
  phase: 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled'
  steps: number
  stepsDone: number
  message?: string
}

/** A unit of work changed state (journal-level: started, succeeded, failed, skipped). */
export interface WorkflowStepEvent {
  taskId: string
  stepId: string
  status: 'dispatched' | 'succeeded' | 'failed' | 'skipped'
  attempt: number
  agent: string
  peer: string
  error?: string
}

/** The handle of a workflow run (`runWorkflow`, `task(id)`): the same in every tab of the profile. */
export interface WorkflowHandle {
  id: TaskId
  readonly kind: 'workflow'
  done: Promise<WorkflowTaskResult>
  on(event: 'progress', listener: (e: WorkflowProgressEvent) => void): () => void
  on(event: 'step', listener: (e: WorkflowStepEvent) => void): () => void
  on(event: 'approval', listener: (e: ApprovalEvent) => void): () => void
  /** Every journal event (replayed from the start to a new listener). */
  on(event: 'event', listener: (e: WorkflowEvent) => void): () => void
  /** The run as a person reads it (projected from its journal). */
  view(): RunView
  /** Decide a waiting approval. */
  approve(stepId: string, decision: { approved: boolean; comment?: string; value?: unknown }): Promise<void>
  cancel(): void
  /** True while this tab is the one running it. */
  readonly local: boolean
}

/** The error a run's `done` rejects with when it failed in another tab or an earlier session (its recorded name and message). */
export class WorkflowRunFailedError extends OrchestratorError {
  override readonly name: string = 'WorkflowRunFailedError'
  static override readonly defaultMessage = 'The workflow failed'
}

/** Options of workflow runs. */
export interface WorkflowRunsInit {
  /** The workflow chunk (parser + engine), loaded on first use. */
  load: () => Promise<WorkflowModule>
}

/** What workflow runs need. */
export interface WorkflowRunsComponents {
  store: RunStore
  locks: RunLocks
  /** The engine's view of the orchestrator (catalog, runPlan, planTask, saved workflows). */
  engine: WorkflowEngineComponents
  changes: { changed(): void }
  /**
   * Resolves once the agent catalog holds what this tab knows at start (the bundled agents).
   * A document names agents the catalog must know: parsed too early (a resume right after a
   * reload, a run started as the page loads) it would be refused for "no agent named
   * summarize" and a durable run would end failed. Waited for at most `CATALOG_WAIT_MS`.
   */
  catalogReady?: Promise<unknown>
}

/** The performance mark set when a tab first looks for unfinished runs to resume. */
export const RESUME_MARK = 'zerostate:workflows:resume'
/** The performance mark set when the workflow chunk is loaded and the catalog ready (the engine exists). */
export const ENGINE_MARK = 'zerostate:workflows:engine'

/** The longest a parse waits for the catalog (`catalogReady`); past it the document is checked against what is there. The same bound as a fresh task's. */
export const CATALOG_WAIT_MS = TASK_CATALOG_WAIT_MS

/** Workflow runs. */
export interface WorkflowRuns {
  run(yaml: string, input?: unknown): WorkflowHandle
  /** Queue for every unfinished run's lock and resume those this tab gets. Idempotent. */
  resumeAll(): void
  /** A run's handle (this tab's, another tab's, or a past one), or undefined. */
  task(id: string): WorkflowHandle | undefined
  approve(taskId: string, stepId: string, decision: { approved: boolean; comment?: string; value?: unknown }): Promise<void>
  /** Validate a document (lazy-loads the parser). */
  validate(yaml: string): Promise<{ ok: boolean; errors: WorkflowError[] }>
  /** Run ids this tab runs now. */
  running(): string[]
  /** Runs this tab resumed since it started. */
  resumed(): number
  /** Let every run go (their locks too) without ending them: another tab or a later start resumes them. */
  stop(): void
}

type Listener = (e: never) => void
/** A handle, with what the service itself calls on it. */
type Handle = WorkflowHandle & { settle(): void; fail(err: unknown): void }

/** `workflowRuns(init)(components)`. */
export function workflowRuns(init: WorkflowRunsInit): (components: WorkflowRunsComponents) => WorkflowRuns {
  return ({ store, locks, engine: engineComponents, changes, catalogReady }) => {
    const stopping = new AbortController()
    /** Runs this tab runs: the engine's run and the lock it holds. */
    const local = new Map<string, { run?: WorkflowRun; lease: RunLease; offDecisions: () => void }>()
    const handles = new Map<string, Handle>()
    const queued = new Set<string>()
    let resumedCount = 0
    let markedResume = false
    let engine: Promise<{ mod: WorkflowModule; engine: WorkflowEngine }> | undefined
    const loadEngine = (): Promise<{ mod: WorkflowModule; engine: WorkflowEngine }> => {
      // The catalog first: every parse and every step's agent is checked against it.
      engine ??= Promise.all([init.load(), settledWithin(catalogReady, CATALOG_WAIT_MS)]).then(([mod]) => {
        globalThis.performance?.mark?.(ENGINE_MARK)
        return { mod, engine: mod.createWorkflowEngine(engineComponents) }
      })
      engine.catch(() => {
        engine = undefined
      })
      return engine
    }

    /** The engine's journal over the run store; keeps the run's summary in step with it. */
    function journalOf(id: string): WorkflowJournal {
      const runLog = store.log<WorkflowEvent>(id)
      return {
        events: () => runLog.events(),
        append(event: WorkflowEvent): void | Promise<void> {
          runLog.append(event)
          switch (event.type) {
            case 'run-started':
              // The journal holds them from here: the summary (read by every tasks() call) drops its copies.
              if (store.get(id)?.yaml != null) store.update(id, { yaml: undefined, input: undefined })
              return undefined
            case 'step-finished':
              if (event.step === true) store.update(id, { stepsDone: (store.get(id)?.stepsDone ?? 0) + 1 })
              // A finished step must survive a crash: the engine awaits this before it goes on.
              return store.saved()
            case 'approval-requested':
              store.update(id, { status: 'waiting' })
              return store.saved()
            case 'approval-decided':
              store.update(id, { status: 'running' })
              return store.saved()
            case 'run-finished':
              store.update(id, {
                status: event.status,
                cost: event.cost,
                ...(event.error != null ? { error: event.error.message.slice(0, 4000) } : {}),
                ...(small(event.output) !== undefined ? { output: small(event.output) } : {})
              })
              return store.saved()
          }
          return undefined
        }
      }
    }

    /** Start (or resume) the engine for a run this tab holds the lock of. */
    async function startLocal(id: string, lease: RunLease, doc: WorkflowDocument, input: unknown, yaml: string, hash: string): Promise<void> {
      const { engine: e } = await loadEngine()
      const entry = local.get(id)
      if (entry == null || stopping.signal.aborted) return
      const run = e.start(doc, input, { runId: id, journal: journalOf(id), signal: stopping.signal, yaml, hash })
      entry.run = run
      // Decisions taken in any tab, before (a reload while waiting) or after this start.
      const apply = (stepId: string): void => {
        const d = store.decision(id, stepId)
        if (d == null || !run.pendingApprovals().some((p) => p.stepId === stepId)) return
        try {
          if (d.approved) run.approve(stepId, { comment: d.comment, value: d.value })
          else run.reject(stepId, d.comment)
        } catch (err) {
          log('decision on %s/%s not applied: %s', id, stepId, (err as Error).message)
        }
      }
      entry.offDecisions = store.onDecision(id, (d) => {
        apply(d.stepId)
      })
      const offEvents = run.subscribe((ev) => {
        if (ev.type === 'approval-requested') queueMicrotask(() => apply(ev.stepId))
      })
      for (const p of run.pendingApprovals()) apply(p.stepId)
      changes.changed()
      const finish = (): void => {
        offEvents()
        entry.offDecisions()
        local.delete(id)
        // Let the lock go only once the final events are saved, so a tab that gets it next reads them.
        void store
          .saved()
          .catch(() => {})
          .finally(() => {
            lease.release()
          })
        handles.get(id)?.settle()
        changes.changed()
      }
      run.done.then(finish, (err: unknown) => {
        // Refused before it started (over the spending limits, say): nothing is journalled, so the summary and the handle say why.
        if (
          !store
            .log<WorkflowEvent>(id)
            .events()
            .some((e) => e.type === 'run-started')
        ) {
          const e = err instanceof Error ? err : new OrchestratorError(String(err))
          handles.get(id)?.fail(e)
          store.update(id, { status: 'failed', error: e.message.slice(0, 4000) })
        }
        finish()
      })
    }

    /** Resume a run whose lock this tab just got. */
    async function resume(id: string, lease: RunLease): Promise<void> {
      const meta = store.get(id)
      // The journal read once (every read parses each event).
      const events = meta == null || isFinished(meta.status) ? [] : store.log<WorkflowEvent>(id).events()
      if (meta == null || isFinished(meta.status) || events.some((e) => e.type === 'run-finished')) {
        lease.release()
        return
      }
      local.set(id, { lease, offDecisions: () => {} })
      try {
        const started = events.find((e): e is Extract<WorkflowEvent, { type: 'run-started' }> => e.type === 'run-started')
        const yaml = started?.yaml ?? meta.yaml
        if (yaml == null) throw new OrchestratorError('This run cannot be resumed: its workflow document was not kept')
        if (started == null && meta.inputDropped === true)
          throw new OrchestratorError('This run was interrupted before it started and its input was too large to keep: run it again with its input')
        const input = started != null ? started.input : meta.input
        const { mod } = await loadEngine()
        // The document as parsed when the run started, kept in its journal: no second parse (most of a resume's time).
        const stored = started != null ? storedDocument(started) : undefined
        const parsed =
          stored != null
            ? { ok: true as const, ...stored }
            : mod.parseWorkflow(yaml, { catalog: engineComponents.catalog, workflows: engineComponents.workflows })
        if (!parsed.ok) throw new WorkflowValidationError(parsed.errors)
        store.update(id, { resumes: (meta.resumes ?? 0) + 1 })
        log('resuming workflow run %s (%s)', id, meta.name)
        resumedCount++
        await startLocal(id, lease, parsed.doc, input, yaml, parsed.hash)
      } catch (err) {
        log.error('could not resume workflow run %s: %s', id, (err as Error).message)
        local.delete(id)
        endWithError(id, err as Error)
        lease.release()
      }
    }

    /** Journal a run that ends before the engine could take it. */
    function endWithError(id: string, err: Error): void {
      try {
        store
          .log<WorkflowEvent>(id)
          .append({ type: 'run-finished', at: Date.now(), status: 'failed', error: { name: err.name, message: err.message }, cost: 0 })
      } catch {
        /* the summary below still says it */
      }
      store.update(id, { status: 'failed', error: err.message.slice(0, 4000) })
      handles.get(id)?.settle()
      changes.changed()
    }

    function queue(id: string): void {
      if (queued.has(id) || local.has(id) || stopping.signal.aborted) return
      queued.add(id)
      locks.acquire(runLockName(id), { signal: stopping.signal }).then(
        (lease) => {
          queued.delete(id)
          if (stopping.signal.aborted) {
            lease.release()
            return
          }
          void resume(id, lease)
        },
        () => {
          queued.delete(id)
        }
      )
    }

    /** A handle that follows the run's journal (live in any tab); `done` settles on run-finished. */
    function handleOf(id: string): Handle {
      const existing = handles.get(id)
      if (existing != null) return existing
      const listeners = { progress: new Set<Listener>(), step: new Set<Listener>(), approval: new Set<Listener>(), event: new Set<Listener>() }
      let seen = 0
      /** Every event read so far (late listeners get them replayed). */
      const all: WorkflowEvent[] = []
      let view: RunView = projectRun(id, [])
      const done = Promise.withResolvers<WorkflowTaskResult>()
      done.promise.catch(() => {})
      let settled = false
      const steps = (): number => store.get(id)?.steps ?? Object.keys(view.steps).length
      const emit = (kind: keyof typeof listeners, e: unknown): void => {
        for (const l of listeners[kind]) {
          try {
            ;(l as (e: unknown) => void)(e)
          } catch (err) {
            log.error('a %s listener threw: %s', kind, (err as Error).message)
          }
        }
      }
      const progress = (): WorkflowProgressEvent => ({
        taskId: id,
        phase: view.status,
        steps: steps(),
        stepsDone: Object.values(view.steps).filter((s) => s.state === 'succeeded' || s.state === 'skipped').length,
        ...(view.error != null ? { message: view.error.message } : {})
      })
      const stepEvent = (e: WorkflowEvent): WorkflowStepEvent | undefined => {
        if (e.type === 'step-started') return { taskId: id, stepId: e.stepId, status: 'dispatched', attempt: e.attempt, agent: '', peer: '' }
        if (e.type === 'step-finished') return { taskId: id, stepId: e.stepId, status: 'succeeded', attempt: 1, agent: e.agent ?? '', peer: e.peer ?? '' }
        if (e.type === 'step-failed')
          return { taskId: id, stepId: e.stepId, status: 'failed', attempt: 1, agent: e.agent ?? '', peer: e.peer ?? '', error: e.error.message }
        if (e.type === 'step-skipped') return { taskId: id, stepId: e.stepId, status: 'skipped', attempt: 1, agent: '', peer: '' }
        return undefined
      }
      const settle = (): void => {
        if (settled) return
        const { events: fresh, next } = store.log<WorkflowEvent>(id).read(seen)
        if (next > seen) {
          seen = next
          all.push(...fresh)
          view = projectRun(id, fresh, view)
          for (const e of fresh) {
            emit('event', e)
            const s = stepEvent(e)
            if (s != null) emit('step', s)
            if (e.type === 'approval-requested') emit('approval', { taskId: id, stepId: e.stepId, prompt: e.prompt, show: e.show } satisfies ApprovalEvent)
          }
          emit('progress', progress())
        }
        const finished = all.find((e): e is Extract<WorkflowEvent, { type: 'run-finished' }> => e.type === 'run-finished')
        const meta = store.get(id)
        if (finished == null && (meta == null || !isFinished(meta.status))) return
        settled = true
        off()
        const status = finished?.status ?? meta?.status
        if (status === 'succeeded') {
          done.resolve({ id, status: 'succeeded', output: finished?.output ?? meta?.output, steps: resultSteps(view), cost: finished?.cost ?? meta?.cost ?? 0 })
        } else {
          const message = finished?.error?.message ?? meta?.error ?? (status === 'cancelled' ? 'The workflow was cancelled' : 'The workflow failed')
          const err = status === 'cancelled' ? new TaskCancelledError(message) : new WorkflowRunFailedError(message)
          const name = finished?.error?.name
          if (name != null && status !== 'cancelled') Object.defineProperty(err, 'name', { value: name })
          done.reject(err)
        }
      }
      const off = store.observe(id, () => {
        settle()
        changes.changed()
      })
      const fail = (err: unknown): void => {
        if (settled) return
        settled = true
        off()
        done.reject(err)
      }
      function on(event: keyof typeof listeners, listener: Listener): () => void {
        listeners[event].add(listener)
        // A late listener (the task page after a reload) first gets what happened so far.
        const past = all
        if (event === 'event') for (const e of past) (listener as (e: WorkflowEvent) => void)(e)
        else if (event === 'step')
          for (const e of past) {
            const s = stepEvent(e)
            if (s != null) (listener as (e: WorkflowStepEvent) => void)(s)
          }
        else if (event === 'approval') for (const w of view.waiting) (listener as (e: ApprovalEvent) => void)({ taskId: id, ...w })
        else if (seen > 0) (listener as (e: WorkflowProgressEvent) => void)(progress())
        return () => {
          listeners[event].delete(listener)
        }
      }
      const handle: Handle = {
        id: id as TaskId,
        kind: 'workflow',
        done: done.promise,
        on: on as WorkflowHandle['on'],
        view: () => {
          settle()
          return view
        },
        approve: (stepId, decision) => approve(id, stepId, decision),
        cancel() {
          const l = local.get(id)
          if (l?.run != null) l.run.cancel()
          else if (!settled) {
            // Not running here: journal the end; the tab running it (if any) stops at its next step.
            endWithError(id, new TaskCancelledError())
            store.update(id, { status: 'cancelled' })
          }
        },
        get local() {
          return local.has(id)
        },
        settle,
        fail
      }
      handles.set(id, handle)
      settle()
      return handle
    }

    async function approve(taskId: string, stepId: string, decision: { approved: boolean; comment?: string; value?: unknown }): Promise<void> {
      const meta = store.get(taskId)
      if (meta == null) throw new OrchestratorError(`No workflow run ${taskId} is known to this profile`)
      if (isFinished(meta.status)) throw new OrchestratorError(`The workflow run ${taskId} has already ${meta.status}`)
      const view = handleOf(taskId).view()
      if (!view.waiting.some((w) => w.stepId === stepId)) throw new OrchestratorError(`Step ${stepId} of run ${taskId} is not waiting for an approval`)
      // Recorded for whichever tab runs it (this one applies it through the same path).
      store.decide({ runId: taskId, stepId, approved: decision.approved, comment: decision.comment, value: small(decision.value), at: Date.now() })
      await store.saved()
    }

    return {
      run(yaml, input) {
        const id = `wf-${crypto.randomUUID()}`
        const now = Date.now()
        const text = typeof yaml === 'string' ? yaml : ''
        const handle = handleOf(id)
        void (async () => {
          // The lock before the summary: a tab starting now must not take the new run for an abandoned one.
          const lease = await locks.tryAcquire(runLockName(id))
          if (lease == null) throw new OrchestratorError('Another tab holds this run')
          local.set(id, { lease, offDecisions: () => {} })
          // The document and input go into the summary at once (and are saved now, not after the
          // batch window): a tab reloaded before the engine journals run-started still resumes it.
          const kept = small(input)
          store.put({
            id,
            kind: 'workflow',
            name: /^name:\s*(.{1,200})$/m.exec(text)?.[1]?.trim() ?? 'workflow',
            status: 'running',
            createdAt: now,
            updatedAt: now,
            ...(text.length <= RUN_LIMITS.maxDocumentBytes ? { yaml: text } : {}),
            ...(kept !== undefined ? { input: kept } : input !== undefined ? { inputDropped: true } : {})
          })
          void store.saved().catch(() => {})
          changes.changed()
          const { mod } = await loadEngine()
          if (typeof yaml !== 'string') throw new WorkflowValidationError([], 'runWorkflow(yaml, input) takes the YAML document as a string')
          const parsed = mod.parseWorkflow(yaml, { catalog: engineComponents.catalog, workflows: engineComponents.workflows })
          if (!parsed.ok) throw new WorkflowValidationError(parsed.errors)
          const inputErrors = mod.validateWorkflowInput(parsed.doc, input)
          if (inputErrors.length > 0) throw new WorkflowInputError(inputErrors)
          store.update(id, { name: parsed.doc.name, steps: parsed.doc.steps.length })
          await startLocal(id, lease, parsed.doc, input, yaml, parsed.hash)
        })().catch((err: unknown) => {
          const e = err instanceof Error ? err : new OrchestratorError(String(err))
          // The handle first: the summary's update below would settle it with a less precise error.
          handle.fail(e)
          local.get(id)?.lease.release()
          local.delete(id)
          if (store.get(id) != null) store.update(id, { status: 'failed', error: e.message.slice(0, 4000) })
          else
            store.put({
              id,
              kind: 'workflow',
              name: /^name:\s*(.{1,200})$/m.exec(text)?.[1]?.trim() ?? 'workflow',
              status: 'failed',
              createdAt: now,
              updatedAt: Date.now(),
              error: e.message.slice(0, 4000)
            })
          changes.changed()
        })
        return handle
      },
      resumeAll() {
        // When this tab first looked for runs to resume (bench:workflows times a resume from here).
        if (!markedResume) {
          markedResume = true
          globalThis.performance?.mark?.(RESUME_MARK)
        }
        for (const m of store.unfinished()) if (m.kind === 'workflow') queue(m.id)
      },
      task(id) {
        const m = store.get(id)
        if (m == null || m.kind !== 'workflow') return handles.get(id)
        return handleOf(id)
      },
      approve,
      async validate(yaml) {
        const { mod } = await loadEngine()
        const parsed = mod.parseWorkflow(yaml, { catalog: engineComponents.catalog, workflows: engineComponents.workflows })
        return parsed.ok ? { ok: true, errors: [] } : { ok: false, errors: parsed.errors }
      },
      running: () => [...local.keys()],
      resumed: () => resumedCount,
      stop() {
        stopping.abort(new OrchestratorError('this tab is closing'))
        for (const [, l] of local) {
          l.offDecisions()
          l.lease.release()
        }
        local.clear()
      }
    }
  }
}

/** Every unit of work that finished, for `TaskResult.steps`. */
function resultSteps(view: RunView): WorkflowStepResult[] {
  const out: WorkflowStepResult[] = []
  for (const s of Object.values(view.steps)) {
    const units = s.units.length > 0 ? s.units : [{ ...s, id: s.id }]
    for (const u of units) {
      if (u.state !== 'succeeded' && u.state !== 'failed' && u.state !== 'skipped') continue
      out.push({
        id: u.id,
        step: s.id,
        status: u.state,
        agent: u.agent ?? '',
        peer: u.peer ?? '',
        ms: u.ms ?? 0,
        cost: u.cost ?? 0,
        ...(u.output !== undefined ? { output: u.output } : {}),
        ...(u.error != null ? { error: u.error } : {})
      })
    }
  }
  return out
}

/** The summary line of a run for `tasks()`. */
export function runSummary(m: RunMeta): {
  id: TaskId
  kind: 'workflow' | 'task'
  name: string
  description: string
  status: RunMeta['status']
  steps: number
  stepsDone: number
  cost: number
  createdAt: number
  finishedAt?: number
  error?: string
} {
  return {
    id: m.id as TaskId,
    kind: m.kind,
    name: m.name,
    description: m.name,
    status: m.status,
    steps: m.steps ?? 0,
    stepsDone: m.stepsDone ?? 0,
    cost: m.cost ?? 0,
    createdAt: m.createdAt,
    ...(isFinished(m.status) ? { finishedAt: m.updatedAt } : {}),
    ...(m.error != null ? { error: m.error } : {})
  }
}
