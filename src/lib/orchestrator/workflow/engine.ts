/** The workflow engine: runs a validated document through the orchestrator's dispatcher, journalling every step. */
import type { WorkflowEngine, WorkflowEngineComponents, WorkflowEngineInit } from './types.ts'

/** `createWorkflowEngine(components, init)`. */
export function createWorkflowEngine(components: WorkflowEngineComponents, init: WorkflowEngineInit = {}): WorkflowEngine {
  void components
  void init
  throw new Error('not yet')
}
