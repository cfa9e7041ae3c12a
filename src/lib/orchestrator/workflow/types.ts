/**
 * The public shapes of workflows (WORKFLOWS.md): the parsed document, its
 * validation errors, the graph drawn from it, the run journal (event-sourced,
 * so a run resumes from it) and the engine's run handle.
 */
import type { AgentCatalog } from '../components.ts'
import type { RunPlanOptions, StepEvent, StepRecord } from '../dispatch/index.ts'
import type { Plan, PlanRequest } from '../plan/index.ts'
import type { RoutingPreferences } from '../route/index.ts'

/** Durations are milliseconds once parsed (`500ms`, `30s`, `5m`, `1h`, `1d` in the YAML). */
export type Milliseconds = number

/** An alias in `agents:` that steps name. */
export interface WorkflowAgentAlias {
  name: string
  /** Routed by capability (the router picks agent and peer)… */
  capabilities?: string[]
  /** …or pinned to a registry agent, by name or id. */
  agent?: string
  preferences?: RoutingPreferences
}

/** What a step does; every step has exactly one. */
export type WorkflowStepKind = 'agent' | 'plan' | 'workflow' | 'debate' | 'approval'

/** `loop:` of a step (pattern 4). */
export interface WorkflowLoop {
  /** CEL; the step's output variable and `loop.*` are bound. */
  until: string
  max_iterations: number
  /** `fail` (default): reaching max_iterations fails the step; `accept` keeps the last output. */
  on_max: 'fail' | 'accept'
}

/** `debate:` of a step (pattern 7). */
export interface WorkflowDebate {
  /** Aliases, registry agent names or ids. */
  agents: string[]
  rounds: number
  decide: 'majority' | 'judge'
  judge?: string
}

/** `reflect:` of a step (pattern 8). */
export interface WorkflowReflect {
  critic: string
  /** Answers at most (the first included). */
  max_rounds: number
  /** CEL; default `reflection.critique.ok == true`. */
  until: string
}

/** `approval:` of a step (human in the loop). */
export interface WorkflowApproval {
  /** Template (`${}` allowed). */
  prompt: string
  /** Template: what the person should look at. */
  show?: unknown
  timeout?: Milliseconds
  on_reject: 'fail' | 'skip'
}

/** A validated step. Keys keep their YAML spelling. */
export interface WorkflowStep {
  id: string
  kind: WorkflowStepKind
  /** An alias, a registry agent's name or id (kind `agent`). */
  agent?: string
  /** Capabilities to route by (kind `agent`, when no `agent`). */
  capabilities?: string[]
  /** Any YAML value; strings may hold `${expr}`. */
  input?: unknown
  /** The variable that holds the result (default: the id). */
  output: string
  /** Explicit dependencies only (reads add theirs: see `WorkflowDocument.dependencies`). */
  depends_on: string[]
  when?: string
  continue_on_error: boolean
  timeout?: Milliseconds
  /** Attempts of each agent call, the first included. */
  retry?: number
  preferences?: RoutingPreferences
  /** CEL giving a list (pattern 5). */
  for_each?: string
  /** Items run at once (`parallel: false` → 1). */
  max_parallel?: number
  /** Most items a `for_each` may give (more fail the step); the bound the run's cost estimate counts when the list is not known at start. */
  max_items?: number
  loop?: WorkflowLoop
  /** Template the planner decomposes at run time (kind `plan`). */
  plan?: string
  /** A saved workflow's name (kind `workflow`). */
  workflow?: string
  debate?: WorkflowDebate
  reflect?: WorkflowReflect
  approval?: WorkflowApproval
}

/** `execution:` with defaults applied. */
export interface WorkflowExecution {
  mode: 'dag' | 'sequential'
  timeout?: Milliseconds
  max_cost?: number
  retry_failed: boolean
  fallback_strategy: 'fail' | 'degraded' | 'skip'
}

/** A parsed, validated workflow document. Plain data (structured-clone safe). */
export interface WorkflowDocument {
  name: string
  description?: string
  /** JSON Schema of the workflow input (`task`). */
  inputs?: Record<string, unknown>
  agents: WorkflowAgentAlias[]
  steps: WorkflowStep[]
  execution: WorkflowExecution
  /** Template; default: the output of the last step to finish. */
  output?: string
  /** Every step's dependencies: `depends_on`, plus the steps whose variables it reads, plus the previous step in `sequential` mode. */
  dependencies: Record<string, string[]>
  /** The steps whose variables each step reads (a subset of `dependencies`). */
  reads: Record<string, string[]>
  /** Where each node is in the YAML, by path (`steps.2.agent`), so later checks can point at it. */
  positions: Record<string, WorkflowPosition>
}

/** A node's place in the YAML (1-based; the end column is exclusive). */
export interface WorkflowPosition {
  line: number
  column: number
  endLine: number
  endColumn: number
}

/** What kind of mistake an error is about (one test per kind). */
export type WorkflowErrorKind =
  | 'yaml-syntax'
  | 'unknown-key'
  | 'missing-key'
  | 'invalid-value'
  | 'duplicate-step'
  | 'unknown-agent'
  | 'unknown-capability'
  | 'unknown-workflow'
  | 'unknown-variable'
  | 'unknown-step'
  | 'cycle'
  | 'cel-syntax'
  | 'over-budget'
  | 'invalid-input'

/** One thing wrong with a document, where it is (1-based) and what to do. */
export interface WorkflowError extends WorkflowPosition {
  kind: WorkflowErrorKind
  /** A sentence that says what is wrong and what to do. */
  message: string
  /** Where in the document (`steps.2.when`). */
  path: string
}

/** What `parseWorkflow` returns. */
export type ParseWorkflowResult =
  | { ok: true; doc: WorkflowDocument /** sha-256 hex of the YAML text (the journal pins it). */; hash: string }
  | { ok: false; errors: WorkflowError[] }

/** Checks `parseWorkflow` can do when given the world it will run in. */
export interface ParseWorkflowOptions {
  /** Check agent names and ids (and the estimated cost against max_cost). */
  catalog?: AgentCatalog
  /** Check `workflow:` names. */
  workflows?: WorkflowLibrary
}

/** Saved workflows, for `workflow:` steps. */
export interface WorkflowLibrary {
  get(name: string): string | undefined
}

/** The DAG for drawing. */
export interface WorkflowGraph {
  nodes: Array<{
    id: string
    kind: WorkflowStepKind
    label: string /** for_each, loop, reflect modifiers */
    modifiers: Array<'for_each' | 'loop' | 'reflect' | 'when'>
  }>
  /** `depends_on`: written; `reads`: the step reads the other's variable; `sequence`: sequential mode order. */
  edges: Array<{ from: string; to: string; kind: 'depends_on' | 'reads' | 'sequence' }>
}

// ---------------------------------------------------------------- the journal

/** Final state of a unit (one agent call, an item, a round…) or a step. */
export type WorkflowStepStatus = 'succeeded' | 'failed' | 'skipped'

/**
 * One event of a run's journal. `stepId` names a unit of work: a step's id, or for
 * its parts `<id>.<index>` (for_each item), `<id>.l<n>` (loop iteration),
 * `<id>.d<round>.<k>` / `<id>.judge` (debate), `<id>.r<n>` / `<id>.r<n>.critic`
 * (reflection), `<id>.p.<sub>` (planned child), `<id>.w.<unit>` (sub-workflow).
 * A step's own `step-finished`/`step-failed`/`step-skipped` (with `step: true`) ends the step.
 */
export type WorkflowEvent =
  | {
      type: 'run-started'
      at: number
      runId: string
      name: string
      docHash: string
      input: unknown /** The document's YAML, when the caller gave it (to resume from the journal alone). */
      yaml?: string
      /**
       * The parsed document (positions left out), so a resume after a reload need not parse the YAML
       * again (tens of ms for 100 steps); read it back with `storedDocument`. Absent when large.
       */
      doc?: WorkflowDocument
      /** The shape version of `doc` ({@link WORKFLOW_DOC_FORMAT}): another version is parsed from `yaml` instead. */
      docFormat?: number
    }
  | { type: 'run-resumed'; at: number }
  | { type: 'step-started'; at: number; stepId: string; attempt: number; idempotencyKey: string }
  | {
      type: 'step-finished'
      at: number
      stepId: string
      /** true: the event ends a document step (not one of its units). */
      step?: boolean
      output: unknown
      agent?: string
      peer?: string
      ms?: number
      cost?: number
    }
  | { type: 'step-failed'; at: number; stepId: string; step?: boolean; error: { name: string; message: string }; agent?: string; peer?: string }
  | { type: 'step-skipped'; at: number; stepId: string; step?: boolean; reason: string }
  | { type: 'plan-made'; at: number; stepId: string; plan: Plan }
  | { type: 'approval-requested'; at: number; stepId: string; prompt: string; show?: unknown; timeoutMs?: number }
  | { type: 'approval-decided'; at: number; stepId: string; approved: boolean; comment?: string; value?: unknown }
  | {
      type: 'run-finished'
      at: number
      status: 'succeeded' | 'failed' | 'cancelled'
      output?: unknown
      error?: { name: string; message: string }
      cost: number
    }

/**
 * Where a run's events are kept. The engine appends in order and awaits each
 * append before it acts on it (a step-started is durable before the offer goes out).
 * Starting an engine over a journal that already holds a run resumes it.
 */
export interface WorkflowJournal {
  append(event: WorkflowEvent): void | Promise<void>
  events(): readonly WorkflowEvent[]
}

// ---------------------------------------------------------------- the engine

/** What the engine needs from the orchestrator (the same path `submit` runs plans through). */
export interface WorkflowEngineComponents {
  catalog: AgentCatalog
  /** The orchestrator's dispatcher: routes, offers, retries with idempotency keys (`Dispatcher.run`). */
  runPlan(plan: Plan, opts: RunPlanOptions): Promise<{ steps: StepRecord[]; outputs: Map<string, unknown>; cost: number }>
  /** The planner chain, validated against the catalog (for `plan:` steps). */
  planTask?(request: PlanRequest, opts: { signal: AbortSignal }): Promise<Plan>
  /** Saved workflows (for `workflow:` steps). */
  workflows?: WorkflowLibrary
  /**
   * The profile's spending limits (balance + allowance, daily budget), as `Orchestrator.authorizeSpend`:
   * a new run whose estimate (`estimateRun`: every call's cheapest price, verification replicas counted
   * there) passes them is refused with CreditLimitError or DailyBudgetExceededError before its first step.
   */
  authorizeSpend?(estimate: number, what: string): () => void
}

/** Options of the engine, with defaults. */
export interface WorkflowEngineInit {
  /** Items of a for_each run at once when the step says nothing. Default 16. */
  defaultMaxParallel?: number
  /** Sub-workflows nested at most this deep. Default 4. */
  maxDepth?: number
}

/** How to start (or resume) a run. */
export interface WorkflowStartOptions {
  runId: string
  journal: WorkflowJournal
  /** Aborting stops this engine's work WITHOUT ending the run (the tab goes away): the journal stays resumable. Use `cancel()` to end it. */
  signal?: AbortSignal
  /** The YAML text, kept in run-started so a run can be resumed from the journal alone. */
  yaml?: string
  /** The document's hash (from parseWorkflow); a journal pinned to another hash is not resumed. */
  hash?: string
  /** Routing preferences for every step (a step's or alias's own win). */
  preferences?: RoutingPreferences
}

/** A run's state. */
export type WorkflowRunStatus = 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled'

/** An approval waiting for a person. */
export interface WorkflowApprovalRequest {
  runId: string
  stepId: string
  prompt: string
  show?: unknown
  requestedAt: number
  timeoutMs?: number
}

/** One unit of work in the result. */
export interface WorkflowStepResult {
  /** The unit's id (see WorkflowEvent). */
  id: string
  /** The document step it belongs to. */
  step: string
  status: WorkflowStepStatus
  agent: string
  peer: string
  ms: number
  cost: number
  output?: unknown
  error?: string
}

/** The result of a run that succeeded. */
export interface WorkflowResult {
  id: string
  status: 'succeeded'
  output: unknown
  steps: WorkflowStepResult[]
  cost: number
}

/** A running (or resumed) workflow. */
export interface WorkflowRun {
  readonly id: string
  readonly status: WorkflowRunStatus
  /** The journal's events so far. */
  events(): readonly WorkflowEvent[]
  /** Every event appended from now on; returns the unsubscribe. */
  subscribe(listener: (e: WorkflowEvent) => void): () => void
  /** The dispatcher's live step events (dispatched, accepted, retrying…; `stepId` is the unit id). */
  onStep(listener: (e: StepEvent) => void): () => void
  /** Approvals waiting now. */
  pendingApprovals(): WorkflowApprovalRequest[]
  /** Approve a waiting approval step. Throws `WorkflowApprovalError` when it is not waiting. */
  approve(stepId: string, decision?: { comment?: string; value?: unknown }): void
  /** Reject a waiting approval step (its `on_reject` says what follows). */
  reject(stepId: string, reason?: string): void
  /** End the run as cancelled (journalled: it is not resumed). */
  cancel(): void
  /** Resolves with the result; rejects with an OrchestratorError subclass saying what failed. */
  readonly done: Promise<WorkflowResult>
}

/** The engine. */
export interface WorkflowEngine {
  /** Start a run, or resume it when `journal` already holds it. Problems are reported through `done`, before any step runs. */
  start(doc: WorkflowDocument, input: unknown, opts: WorkflowStartOptions): WorkflowRun
  /** What the engine would refuse in this document before running (unknown agents, workflows, cost over max_cost). */
  check(doc: WorkflowDocument): WorkflowError[]
  /**
   * Counters: runsStarted, runsResumed, runsRefused (document or input refused before any step),
   * runsSucceeded, runsFailed, runsCancelled, unitsDispatched, unitsReplayed (answered from the
   * journal), unitsRetried, budgetStops, approvalsRequested.
   */
  stats?(): Record<string, number> // optional so test stubs need not implement it; createWorkflowEngine always does
}
