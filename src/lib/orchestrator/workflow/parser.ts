/** Parse and validate a workflow document (WORKFLOWS.md "Validation"). */
import type { ParseWorkflowOptions, ParseWorkflowResult, WorkflowDocument, WorkflowError } from './types.ts'

/** Parse YAML into a validated document; every error carries line:column and what to do. */
export function parseWorkflow(yaml: string, opts: ParseWorkflowOptions = {}): ParseWorkflowResult {
  void yaml
  void opts
  throw new Error('not yet')
}

/** Check an input against the document's `inputs` schema; empty when it fits. */
export function validateWorkflowInput(doc: WorkflowDocument, input: unknown): WorkflowError[] {
  void doc
  void input
  throw new Error('not yet')
}
