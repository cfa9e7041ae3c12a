/** Errors of workflows: each has a literal name and a sentence saying what to do. */
import { OrchestratorError, StepFailedError } from '../errors.ts'
import type { WorkflowError } from './types.ts'

/** A document (or an input) is refused before any step runs; `errors` lists every problem with its line and column. */
export class WorkflowValidationError extends OrchestratorError {
  override readonly name: string = 'WorkflowValidationError'
  static override readonly defaultMessage: string = 'The workflow is not valid: fix the errors listed at their line and column'
  readonly errors: readonly WorkflowError[]
  constructor(errors: readonly WorkflowError[], message?: string, options?: ErrorOptions) {
    const first = errors[0]
    super(
      message ??
        (first != null
          ? `The workflow is not valid: line ${first.line}, column ${first.column}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`
          : undefined),
      options
    )
    this.errors = errors
  }
}

/** The workflow input does not match the document's `inputs` schema. */
export class WorkflowInputError extends WorkflowValidationError {
  override readonly name: string = 'WorkflowInputError'
  static override readonly defaultMessage: string = "The input does not match the workflow's inputs schema"
}

/** An expression failed while the run evaluated it (a missing key, a wrong type). */
export class WorkflowExpressionError extends StepFailedError {
  override readonly name: string = 'WorkflowExpressionError'
  static override readonly defaultMessage: string = 'An expression of the workflow could not be evaluated'
}

/** A loop reached max_iterations without `until` holding (and `on_max` is `fail`). */
export class LoopLimitError extends StepFailedError {
  override readonly name: string = 'LoopLimitError'
  static override readonly defaultMessage: string = 'The loop reached max_iterations before its until condition held'
}

/** An approval was rejected (or timed out) and the step says `on_reject: fail`. */
export class ApprovalRejectedError extends StepFailedError {
  override readonly name: string = 'ApprovalRejectedError'
  static override readonly defaultMessage: string = 'The approval was rejected, so the workflow stopped'
}

/** approve()/reject() named a step that is not waiting for approval. */
export class WorkflowApprovalError extends OrchestratorError {
  override readonly name: string = 'WorkflowApprovalError'
  static override readonly defaultMessage: string = 'That step is not waiting for an approval'
}

/** The run (execution.timeout) or a step (its timeout) ran out of time. */
export class WorkflowTimeoutError extends StepFailedError {
  override readonly name: string = 'WorkflowTimeoutError'
  static override readonly defaultMessage: string = 'The workflow ran out of time'
}

/** The journal holds another document's run (its hash differs) or a run with another id. */
export class WorkflowResumeError extends OrchestratorError {
  override readonly name: string = 'WorkflowResumeError'
  static override readonly defaultMessage: string = 'The journal holds a different workflow run, so it cannot be resumed with this document'
}
