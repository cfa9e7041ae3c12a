/**
 * The workflows part of the API (WORKFLOWS.md "API"), composed from the run store, the
 * run locks, workflow runs and templates. The parser and engine are one chunk loaded on
 * demand (`loadWorkflows`), so yaml and CEL stay out of the main bundle; `ready` resolves
 * once it is here, and the synchronous `validate`/`inspect` need it.
 */
import type * as Y from 'yjs'
import { settledWithin } from '../../core/index.ts'
import {
  OrchestratorError,
  loadWorkflows,
  workflowGraph,
  type AgentCatalog,
  type Orchestrator,
  type WorkflowError,
  type WorkflowEvent,
  type WorkflowGraph,
  type WorkflowModule
} from '../../orchestrator/index.ts'
import { MemoryRunLocks, WebRunLocks, type RunLocks } from './run-locks.ts'
import { RunStore } from './run-store.ts'
import { CATALOG_WAIT_MS, runSummary, workflowRuns, type WorkflowHandle, type WorkflowRuns } from './workflow-runs.ts'
import { workflowTemplates, type WorkflowTemplates, type WorkflowTemplatesComponents } from './workflow-templates.ts'

/** The workflow chunk is not loaded yet: await `workflows.ready` (or use `check`). */
export class WorkflowsNotLoadedError extends OrchestratorError {
  override readonly name: string = 'WorkflowsNotLoadedError'
  static override readonly defaultMessage = 'The workflow parser is still loading: await zerostate.workflows.ready and try again'
}

/** What `inspect` says of a document: its errors, and when it is valid, its graph. */
export interface WorkflowInspection {
  ok: boolean
  errors: WorkflowError[]
  name?: string
  description?: string
  /** The JSON Schema of the input, when the document has one. */
  inputs?: Record<string, unknown>
  graph?: WorkflowGraph
}

/** `zerostate.workflows`. */
export interface WorkflowsApi {
  /** Resolves once the parser and engine are loaded (they load on first use, or shortly after start). */
  readonly ready: Promise<void>
  /** Validate a document; needs the parser loaded (`ready`), else throws `WorkflowsNotLoadedError`. */
  validate(yaml: string): { ok: boolean; errors: Array<{ line: number; column: number; message: string }> }
  /** Like `validate`, loading the parser first. */
  check(yaml: string): Promise<{ ok: boolean; errors: WorkflowError[] }>
  /** Errors, and for a valid document its name, input schema and DAG (the Workflows page draws it). Needs `ready`. */
  inspect(yaml: string): WorkflowInspection
  /** Save a template in shared memory (namespace `workflows`): the team sees it. */
  save(name: string, yaml: string): Promise<void>
  list(): Array<{ name: string; description?: string; savedAt?: number }>
  get(name: string): string | undefined
  /** The document and input a run of this profile started with ("Run again"). */
  request(runId: string): { yaml: string; input: unknown } | undefined
}

/** What the workflows part needs. */
export interface WorkflowsComponents {
  /** The profile's private journal doc. */
  journalDoc: Y.Doc
  saved: () => Promise<void>
  catalog: AgentCatalog
  orchestrator: Pick<Orchestrator, 'runPlan' | 'planTask'> & Partial<Pick<Orchestrator, 'authorizeSpend'>>
  memory: WorkflowTemplatesComponents['memory']
  publicKey?: string
  changes: { changed(): void }
  /** Locks shared by the profile's tabs; default Web Locks, else in-memory (Node). */
  locks?: RunLocks
  /** Resolves once the catalog holds the bundled agents: documents are checked against it (see `WorkflowRunsComponents.catalogReady`). */
  catalogReady?: Promise<unknown>
  /** The workflow chunk; default `loadWorkflows`. */
  load?: () => Promise<WorkflowModule>
}

/** The composed workflows part. */
export interface Workflows {
  api: WorkflowsApi
  runs: WorkflowRuns
  store: RunStore
  templates: WorkflowTemplates
  /** One `tasks()` line per run of this profile (workflows), newest first. */
  summaries(): ReturnType<typeof runSummary>[]
  runWorkflow(yaml: string, input?: unknown): WorkflowHandle
  /** `workflows.running` (runs this tab runs now), `workflows.resumed`, and the run store's counters. */
  metrics(): Record<string, number>
  /** Load the chunk soon, resume unfinished runs once it is here. */
  start(): void
  stop(): void
}

/** `workflows()(components)`. */
export function workflows(): (components: WorkflowsComponents) => Workflows {
  return (c) => {
    const store = new RunStore(c.journalDoc, { saved: c.saved })
    const templates = workflowTemplates()({ memory: c.memory, publicKey: c.publicKey })
    let mod: WorkflowModule | undefined
    const loader = c.load ?? loadWorkflows
    let loading: Promise<WorkflowModule> | undefined
    const load = (): Promise<WorkflowModule> => {
      loading ??= loader().then((m) => {
        mod = m
        c.changes.changed()
        return m
      })
      loading.catch(() => {
        loading = undefined
      })
      return loading
    }
    // A run to resume after a reload needs the chunk: fetch it now, while the rest of the app starts.
    if (store.unfinished().some((m) => m.kind === 'workflow')) void load().catch(() => {})
    const runs = workflowRuns({ load })({
      store,
      locks: c.locks ?? WebRunLocks.available() ?? new MemoryRunLocks(),
      engine: {
        catalog: c.catalog,
        runPlan: (plan, opts) => c.orchestrator.runPlan(plan, opts),
        planTask: (request, opts) => c.orchestrator.planTask(request, opts),
        workflows: templates,
        // A run over the profile's spending limits is refused before its first step (its whole estimate).
        ...(c.orchestrator.authorizeSpend != null ? { authorizeSpend: c.orchestrator.authorizeSpend } : {})
      },
      changes: c.changes,
      ...(c.catalogReady != null ? { catalogReady: c.catalogReady } : {})
    })
    const parse = (yaml: string) => {
      if (mod == null) throw new WorkflowsNotLoadedError()
      return mod.parseWorkflow(typeof yaml === 'string' ? yaml : String(yaml), { catalog: c.catalog, workflows: templates })
    }
    let ready: Promise<void> | undefined
    const api: WorkflowsApi = {
      get ready() {
        // With the catalog: a document checked right after a page load must find the bundled agents.
        ready ??= Promise.all([load(), settledWithin(c.catalogReady, CATALOG_WAIT_MS)]).then(() => {})
        return ready
      },
      validate(yaml) {
        const r = parse(yaml)
        return r.ok ? { ok: true, errors: [] } : { ok: false, errors: r.errors }
      },
      check: (yaml) => runs.validate(yaml),
      inspect(yaml) {
        const r = parse(yaml)
        if (!r.ok) return { ok: false, errors: r.errors }
        return {
          ok: true,
          errors: [],
          name: r.doc.name,
          ...(r.doc.description != null ? { description: r.doc.description } : {}),
          ...(r.doc.inputs != null ? { inputs: r.doc.inputs } : {}),
          graph: workflowGraph(r.doc)
        }
      },
      save: (name, yaml) => templates.save(name, yaml),
      list: () => templates.list(),
      get: (name) => templates.get(name),
      request(runId) {
        const started = store
          .log<WorkflowEvent>(runId)
          .events()
          .find((e): e is Extract<WorkflowEvent, { type: 'run-started' }> => e.type === 'run-started')
        return started?.yaml != null ? { yaml: started.yaml, input: started.input } : undefined
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined
    let offRuns: (() => void) | undefined
    return {
      api,
      runs,
      store,
      templates,
      summaries: () => store.list().map(runSummary),
      runWorkflow: (yaml, input) => runs.run(yaml, input),
      metrics: () => ({ 'workflows.running': runs.running().length, 'workflows.resumed': runs.resumed(), ...store.metrics() }),
      start() {
        // Unfinished runs resume at once; otherwise the chunk loads when the tab is idle.
        if (store.unfinished().length > 0) runs.resumeAll()
        // A run another tab starts later is queued for too: if that tab closes, this one carries it on.
        let pending = false
        offRuns = store.subscribe(() => {
          if (pending) return
          pending = true
          queueMicrotask(() => {
            pending = false
            runs.resumeAll()
          })
        })
        timer = setTimeout(() => {
          void load().catch(() => {})
        }, 1500)
      },
      stop() {
        clearTimeout(timer)
        offRuns?.()
        runs.stop()
      }
    }
  }
}
