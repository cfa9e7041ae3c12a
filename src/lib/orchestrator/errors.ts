/**
 * Errors of the orchestrator. One subclass per failure, each with a stable `name`
 * (errors cross workers and the wire by name) and a sentence a user can act on.
 */
import { ZeroStateError } from '../core/index.ts'

export class OrchestratorError extends ZeroStateError {
  override readonly name: string = 'OrchestratorError'
  static override readonly defaultMessage: string = 'The task could not be run'
}

/** No agent in the catalog offers a capability a step needs. */
export class NoEligibleAgentError extends OrchestratorError {
  override readonly name: string = 'NoEligibleAgentError'
  static override readonly defaultMessage: string = 'No agent can run this step: publish one or relax the preferences'
  /** The capability nobody offers (or nobody offers within the constraints). */
  readonly capability?: string
  constructor(capability?: string, message?: string, options?: ErrorOptions) {
    super(message ?? (capability != null ? `No agent offers capability ${capability}: publish one or remove the step` : undefined), options)
    this.capability = capability
  }
}

/** A plan is not runnable: a cycle, a capability nobody offers, or over budget. */
export class PlanValidationError extends OrchestratorError {
  override readonly name: string = 'PlanValidationError'
  static override readonly defaultMessage: string = 'The plan is not valid'
}

/** The planner could not produce a plan. */
export class PlanningError extends OrchestratorError {
  override readonly name: string = 'PlanningError'
  static override readonly defaultMessage: string = 'No planner could turn this description into a plan: name the capabilities or pick an agent'
}

/** The user (or a signal) cancelled the task. */
export class TaskCancelledError extends OrchestratorError {
  override readonly name: string = 'TaskCancelledError'
  static override readonly defaultMessage: string = 'The task was cancelled'
}

/** A step failed on every eligible agent and peer the retry policy allowed. */
export class StepFailedError extends OrchestratorError {
  override readonly name: string = 'StepFailedError'
  static override readonly defaultMessage: string = 'A step failed on every agent that was tried'
  readonly stepId?: string
  constructor(stepId?: string, message?: string, options?: ErrorOptions) {
    super(message, options)
    this.stepId = stepId
  }
}

/** The task request does not match TaskRequest. */
export class InvalidTaskRequestError extends OrchestratorError {
  override readonly name: string = 'InvalidTaskRequestError'
  static override readonly defaultMessage: string = 'The task request is not valid'
}

/** The plan reads the task's input and the task has none (refused before any step is offered). */
export class MissingInputError extends InvalidTaskRequestError {
  override readonly name: string = 'MissingInputError'
  static override readonly defaultMessage: string = 'This task needs an input: give one, or write it in the description after a colon'
}

/** A named agent (TaskRequest.agent) is not in the catalog. */
export class UnknownAgentError extends OrchestratorError {
  override readonly name: string = 'UnknownAgentError'
  static override readonly defaultMessage: string = 'No agent with that id or name is known: check the name or publish it'
}

/** WebGPU is missing, so the in-browser LLM cannot run (checked before downloading anything). */
export class WebGpuUnavailableError extends OrchestratorError {
  override readonly name: string = 'WebGpuUnavailableError'
  static override readonly defaultMessage: string = 'WebGPU is not available in this browser, so the local LLM planner cannot run'
}

/** Loading an LLM (config, library or weights) failed. */
export class LlmLoadError extends OrchestratorError {
  override readonly name: string = 'LlmLoadError'
  static override readonly defaultMessage: string = 'The LLM could not be loaded'
}

/** The LLM did not produce a usable plan. */
export class LlmPlanError extends OrchestratorError {
  override readonly name: string = 'LlmPlanError'
  static override readonly defaultMessage: string = 'The LLM did not produce a valid plan'
}

/** A peer could not be reached, or closed while a request was pending. */
export class PeerUnavailableError extends OrchestratorError {
  override readonly name: string = 'PeerUnavailableError'
  static override readonly defaultMessage: string = 'The peer is not reachable'
}

/** A request to a peer got no answer before its deadline. */
export class RequestTimeoutError extends OrchestratorError {
  override readonly name: string = 'RequestTimeoutError'
  static override readonly defaultMessage: string = 'The peer did not answer in time'
}

/** Fetched agent bytes did not match their announced hash or size. */
export class AgentIntegrityError extends OrchestratorError {
  override readonly name: string = 'AgentIntegrityError'
  static override readonly defaultMessage: string = 'The agent bytes received do not match their hash'
}

/** A remote peer answered with an error (rebuilt by name from the wire). */
export class RemoteError extends OrchestratorError {
  override readonly name: string = 'RemoteError'
  static override readonly defaultMessage: string = 'The peer reported an error'
  /** The error's name on the remote side. */
  readonly remoteName: string
  constructor(remoteName: string, message?: string, options?: ErrorOptions) {
    super(message, options)
    this.remoteName = remoteName
  }
}

/** Wrap anything thrown or rejected (WebLLM rejects with plain strings) into an Error. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value
  if (typeof value === 'string') return new Error(value)
  try {
    return new Error(JSON.stringify(value))
  } catch {
    return new Error(String(value))
  }
}

/** A planner cannot run here (no WebGPU, no peer with `llm`): the chain tries the next one. */
export class PlannerUnavailableError extends OrchestratorError {
  override readonly name: string = 'PlannerUnavailableError'
  static override readonly defaultMessage: string = 'This planner is not available here'
}
