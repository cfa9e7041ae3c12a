/**
 * Errors of verification, reputation and credits. Each has a stable `name` (errors
 * cross workers and the wire by name) and a sentence a user can act on.
 */
import { OrchestratorError, StepFailedError } from '../errors.ts'

/**
 * A step's replicas did not reach a strict majority of distinct users that agree
 * (or too few other users could run it when verification was required).
 */
export class VerificationFailedError extends StepFailedError {
  override readonly name: string = 'VerificationFailedError'
  static override readonly defaultMessage: string =
    'The results of this step could not be verified: no strict majority of different users agreed. Try again when more donors are online'
}

/** A donor's output does not match the agent manifest's output JSON Schema (counted as a wrong result). */
export class InvalidOutputError extends OrchestratorError {
  override readonly name: string = 'InvalidOutputError'
  static override readonly defaultMessage: string = "The donor's output does not match the agent's output schema"
}

/** A receipt that does not parse or whose signature does not check out. */
export class InvalidReceiptError extends OrchestratorError {
  override readonly name: string = 'InvalidReceiptError'
  static override readonly defaultMessage: string = 'The receipt is not valid'
}

/** Spending this much would take the profile past its balance plus its allowance. */
export class CreditLimitError extends OrchestratorError {
  override readonly name: string = 'CreditLimitError'
  static override readonly defaultMessage: string = 'Not enough credits: donate compute to earn some, or raise the allowance'
}
