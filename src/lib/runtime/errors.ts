/**
 * Errors of the agent runtime. One subclass per failure, each with a stable
 * `name` (errors cross the worker boundary as `{name, message, stack}` and are
 * rebuilt by name) and a sentence a user can act on.
 */
import { ZeroStateError } from '../core/index.ts'

export class RuntimeError extends ZeroStateError {
  override readonly name: string = 'RuntimeError'
  static override readonly defaultMessage: string = 'The agent runtime failed'
}

/** The manifest does not match the schema, or does not match the module. */
export class InvalidManifestError extends RuntimeError {
  override readonly name: string = 'InvalidManifestError'
  static override readonly defaultMessage: string = 'The agent manifest is not valid'
  /** Every failing field (`price`, `limits.memoryMiB`, …) with a sentence; empty when the fault is not one field's. */
  readonly issues: ReadonlyArray<{ field: string; message: string }>
  constructor(message?: string, options?: ErrorOptions & { issues?: ReadonlyArray<{ field: string; message: string }> }) {
    super(message, options)
    this.issues = options?.issues ?? []
  }
}

/** The bytes are not a valid WebAssembly module, are too large, or lack what the ABI needs. */
export class InvalidModuleError extends RuntimeError {
  override readonly name: string = 'InvalidModuleError'
  static override readonly defaultMessage: string = 'The agent module is not a valid WebAssembly module for its ABI'
}

/** The module imports something its ABI does not allow. */
export class ForbiddenImportError extends InvalidModuleError {
  override readonly name: string = 'ForbiddenImportError'
  static override readonly defaultMessage: string = 'The agent module imports something its ABI does not allow'
}

/** The signature or content id does not match the manifest and module. */
export class SignatureMismatchError extends RuntimeError {
  override readonly name: string = 'SignatureMismatchError'
  static override readonly defaultMessage: string = 'The agent signature does not match its manifest and module; do not run it'
}

/** The call passed its deadline; the worker was terminated and replaced. */
export class AgentTimeoutError extends RuntimeError {
  override readonly name: string = 'AgentTimeoutError'
  static override readonly defaultMessage: string = 'The agent did not finish before its deadline and was stopped'
}

/** The caller aborted the call; a running worker was terminated and replaced. */
export class AgentAbortedError extends RuntimeError {
  override readonly name: string = 'AgentAbortedError'
  static override readonly defaultMessage: string = 'The agent call was cancelled'
}

/** The module trapped (unreachable, out-of-bounds access, stack overflow, abort). */
export class AgentTrapError extends RuntimeError {
  override readonly name: string = 'AgentTrapError'
  static override readonly defaultMessage: string = 'The agent crashed (WebAssembly trap)'
}

/** The module tried to use more memory than its cap. */
export class AgentMemoryLimitError extends RuntimeError {
  override readonly name: string = 'AgentMemoryLimitError'
  static override readonly defaultMessage: string = 'The agent tried to use more memory than it is allowed'
}

/** A WASI command exited with a non-zero status; `stderr` holds what it said. */
export class AgentExitError extends RuntimeError {
  override readonly name: string = 'AgentExitError'
  static override readonly defaultMessage: string = 'The agent exited with an error'
  stderr = ''
  exitCode = 1
}

/** The agent wrote more output than allowed. */
export class AgentOutputTooLargeError extends RuntimeError {
  override readonly name: string = 'AgentOutputTooLargeError'
  static override readonly defaultMessage: string = 'The agent produced more output than allowed'
}

/** The worker running the call died; it was replaced. */
export class WorkerCrashedError extends RuntimeError {
  override readonly name: string = 'WorkerCrashedError'
  static override readonly defaultMessage: string = 'The sandbox worker crashed; it was replaced, try again'
}

/** The runtime is stopped (or was never started). */
export class RuntimeStoppedError extends RuntimeError {
  override readonly name: string = 'RuntimeStoppedError'
  static override readonly defaultMessage: string = 'The agent runtime is not running'
}

/** The agent is not in the store. */
export class AgentNotFoundError extends RuntimeError {
  override readonly name: string = 'AgentNotFoundError'
  static override readonly defaultMessage: string = 'No agent with that id is stored here'
}

/**
 * The agent's module could not be got here (its fetch failed, or the server answered an error):
 * this peer ran nothing, and the step can go to another that holds it.
 */
export class AgentUnavailableError extends RuntimeError {
  override readonly name: string = 'AgentUnavailableError'
  static override readonly defaultMessage: string = "This peer could not get the agent's module; another peer may run it"
}

/** A json-v1 agent returned bytes that are not UTF-8 JSON, or an output range outside its memory. */
export class AgentBadOutputError extends RuntimeError {
  override readonly name: string = 'AgentBadOutputError'
  static override readonly defaultMessage: string = 'The agent returned output that is not valid JSON'
}

/** An llm-prompt agent cannot run here: no language model is loaded, or none fits the agent. */
export class LlmUnavailableError extends RuntimeError {
  override readonly name: string = 'LlmUnavailableError'
  static override readonly defaultMessage: string = 'No language model that fits this agent is loaded on this peer'
}

/**
 * The prompt of an llm-prompt call does not fit the model's context (issue 14): the engine tokenized it
 * and refused before generating. In a tool loop the transcript grows with each tool's answer, so the
 * message says after how many calls. Counted in the runtime's errors by name.
 */
export class LlmContextExceededError extends RuntimeError {
  override readonly name: string = 'LlmContextExceededError'
  static override readonly defaultMessage: string = "The prompt does not fit the model's context: give a shorter input, or load a model with a longer context"
  /** Tokens of the prompt, and of the context, when the engine said. */
  promptTokens?: number
  contextTokens?: number
}

/** A tool call failed (issue 14, vision §6); the agent gets it as an error reply, the step fails with it when the agent gives up. */
export class ToolError extends RuntimeError {
  override readonly name: string = 'ToolError'
  static override readonly defaultMessage: string = 'A tool call failed'
  /** The tool that was called. */
  tool?: string
}

/** A tool call outside the grants: the manifest did not declare it, the donor did not grant it, or the task does not allow what it touches. */
export class ToolDeniedError extends ToolError {
  override readonly name: string = 'ToolDeniedError'
  static override readonly defaultMessage: string = 'The agent may not call this tool here'
  /** The missing grant: `manifest`, `donor`, `task` or `origin`. */
  grant?: string
}

/** The tool does not exist on this peer. */
export class UnknownToolError extends ToolError {
  override readonly name: string = 'UnknownToolError'
  static override readonly defaultMessage: string = 'No tool of that name exists here'
}

/** The arguments of a tool call do not match the tool's input schema (or are not JSON). */
export class ToolInputError extends ToolError {
  override readonly name: string = 'ToolInputError'
  static override readonly defaultMessage: string = 'The tool arguments do not match its input schema'
}

/** The tool answered something its output schema does not allow. */
export class ToolOutputError extends ToolError {
  override readonly name: string = 'ToolOutputError'
  static override readonly defaultMessage: string = 'The tool answered outside its output schema'
}

/** The tool did not answer in time. */
export class ToolTimeoutError extends ToolError {
  override readonly name: string = 'ToolTimeoutError'
  static override readonly defaultMessage: string = 'The tool did not answer in time'
}

/**
 * A nested call (`agent.call`, `llm.complete`) would start a task deeper in nested tool calls than this
 * peer allows (`MAX_TOOL_CALL_DEPTH`): agents calling agents that call agents, each paid by a donor.
 */
export class ToolDepthError extends ToolError {
  override readonly name: string = 'ToolDepthError'
  static override readonly defaultMessage: string = 'The nested call is deeper than this peer allows'
  /** The limit this call is past. */
  readonly limit = 'depth'
}

/** A task's agents made as many nested calls (`agent.call`, `llm.complete`) on this peer as it allows (`NESTED_CALLS_PER_TASK`). */
export class ToolCallBudgetError extends ToolError {
  override readonly name: string = 'ToolCallBudgetError'
  static override readonly defaultMessage: string = 'The task made as many nested calls here as this peer allows'
  /** The limit this call is past. */
  readonly limit = 'calls-per-task'
}

/** The sandbox cannot suspend an agent for a tool call here (neither JSPI nor a blocking wait on shared memory). */
export class ToolsUnavailableError extends ToolError {
  override readonly name: string = 'ToolsUnavailableError'
  static override readonly defaultMessage: string = 'This peer cannot run agents that call tools'
}

const CLASSES = {
  RuntimeError,
  InvalidManifestError,
  InvalidModuleError,
  ForbiddenImportError,
  SignatureMismatchError,
  AgentTimeoutError,
  AgentAbortedError,
  AgentTrapError,
  AgentMemoryLimitError,
  AgentExitError,
  AgentOutputTooLargeError,
  WorkerCrashedError,
  RuntimeStoppedError,
  AgentNotFoundError,
  AgentUnavailableError,
  AgentBadOutputError,
  LlmUnavailableError,
  LlmContextExceededError,
  ToolError,
  ToolDeniedError,
  UnknownToolError,
  ToolInputError,
  ToolOutputError,
  ToolTimeoutError,
  ToolDepthError,
  ToolCallBudgetError,
  ToolsUnavailableError
} as const

/** The names of all runtime errors. */
export type RuntimeErrorName = keyof typeof CLASSES

/** An error as it crosses a worker boundary. */
export interface SerializedError {
  name: string
  message: string
  stack?: string
  stderr?: string
  exitCode?: number
  /** A tool error's tool and missing grant. */
  tool?: string
  grant?: string
}

/** Flatten an error for postMessage. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const out: SerializedError = { name: err.name, message: err.message, stack: err.stack }
    if (err instanceof AgentExitError) {
      out.stderr = err.stderr
      out.exitCode = err.exitCode
    }
    if (err instanceof ToolError && err.tool != null) out.tool = err.tool
    if (err instanceof ToolDeniedError && err.grant != null) out.grant = err.grant
    return out
  }
  return { name: 'RuntimeError', message: String(err) }
}

/** Rebuild a serialized error as its class (unknown names become `RuntimeError`). */
export function deserializeError(data: SerializedError): RuntimeError {
  const Cls = Object.hasOwn(CLASSES, data.name) ? CLASSES[data.name as RuntimeErrorName] : RuntimeError
  const err = new Cls(data.message)
  if (data.stack != null) err.stack = data.stack
  if (err instanceof AgentExitError) {
    err.stderr = data.stderr ?? ''
    err.exitCode = data.exitCode ?? 1
  }
  if (err instanceof ToolError && data.tool != null) err.tool = data.tool
  if (err instanceof ToolDeniedError && data.grant != null) err.grant = data.grant
  return err
}
