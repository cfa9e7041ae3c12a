/**
 * orchestrator/workflow: declarative workflows (WORKFLOWS.md). Entered only
 * through this file. Light on purpose: the parser (yaml, CEL, JSON Schema) and
 * the engine load on demand through `loadWorkflows()`, so none of them is in
 * the main bundle.
 */
import type { WorkflowEngine, WorkflowEngineComponents, WorkflowEngineInit } from './types.ts'

export * from './types.ts'
export * from './errors.ts'
export { MemoryWorkflowJournal } from './memory-journal.ts'
export { workflowGraph } from './graph.ts'
export { WORKFLOW_DOC_FORMAT, storedDocument } from './stored-doc.ts'

/** What `loadWorkflows()` resolves to. */
export interface WorkflowModule {
  parseWorkflow: typeof import('./parser.ts').parseWorkflow
  validateWorkflowInput: typeof import('./parser.ts').validateWorkflowInput
  createWorkflowEngine: (components: WorkflowEngineComponents, init?: WorkflowEngineInit) => WorkflowEngine
}

let loading: Promise<WorkflowModule> | undefined

/** Load the parser and the engine (one chunk, once). */
export async function loadWorkflows(): Promise<WorkflowModule> {
  loading ??= Promise.all([import('./parser.ts'), import('./engine.ts')]).then(([p, e]) => ({
    parseWorkflow: p.parseWorkflow,
    validateWorkflowInput: p.validateWorkflowInput,
    createWorkflowEngine: e.createWorkflowEngine
  }))
  return await loading
}

/** The parser alone (the Workflows page validates as the user types). */
export async function loadWorkflowParser(): Promise<Pick<WorkflowModule, 'parseWorkflow' | 'validateWorkflowInput'>> {
  const p = await import('./parser.ts')
  return { parseWorkflow: p.parseWorkflow, validateWorkflowInput: p.validateWorkflowInput }
}
