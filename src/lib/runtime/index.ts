/**
 * The agent runtime: agent packages (manifest, content id, signatures), their
 * validation, and a sandboxed Comlink worker pool that runs them with memory,
 * time and output caps. Entered only through this file.
 */
export {
  AGENT_ABIS,
  DEFAULT_LIMITS,
  MAX_MODULE_BYTES,
  MAX_LLM_TOKENS,
  JSON_V1_ALLOWED_IMPORTS,
  defaultWorkerCount,
  type AgentAbi,
  type WasmAbi,
  type SandboxLimits
} from './constants.ts'
export {
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
  AgentBadOutputError,
  WorkerCrashedError,
  RuntimeStoppedError,
  AgentNotFoundError,
  AgentUnavailableError,
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
  ToolsUnavailableError,
  type RuntimeErrorName
} from './errors.ts'
export {
  AgentManifestSchema,
  UnsignedManifestSchema,
  AgentLimitsSchema,
  agentIdOf,
  signPackage,
  verifyPackage,
  parseManifest,
  toAgentId,
  sha256Hex,
  checkManifest,
  assertManifest,
  manifestIssues,
  type ManifestIssue,
  type AgentId,
  type AgentManifest,
  type UnsignedManifest,
  type AgentPackage
} from './manifest.ts'
export { validateModule } from './validate.ts'
export {
  LlmPromptSpecSchema,
  modelFits,
  renderPrompt,
  runLlmPrompt,
  schemaErrors,
  type LlmPromptSpec,
  type LlmModelInfo,
  type LlmRunner,
  type LlmGenerateRequest,
  type LlmGenerateResult
} from './llm-prompt.ts'
export { MemoryAgentStore, IndexedDbAgentStore, type AgentStore, type AgentEntry, type AgentFilter } from './agent-store.ts'
export { createAgentRuntime, publishLocal, type AgentRuntime, type AgentRuntimeInit, type RunOptions, type RunResult, type RuntimeStats } from './runtime.ts'
export { ComlinkWorkerPool, type AgentSandbox, type SandboxJob, type SandboxResult, type SandboxStats } from './worker-pool.ts'
export { webWorkerFactory, type WorkerFactory, type WorkerHandle } from './worker-factory.ts'
export { bundledAgents, bundledAgentsRetrying, loadBundledAgent, BundledIndexSchema, type BundledAgent, type BundledAgentsOptions } from './bundled.ts'
export {
  createToolHost,
  granted,
  parseToolGrants,
  DEFAULT_TOOL_GRANTS,
  ToolGrantsSchema,
  ToolScopeSchema,
  type Tool,
  type ToolSpec,
  type ToolHost,
  type ToolHostInit,
  type ToolGrants,
  type ToolScope,
  type ToolCallContext,
  type ToolRunContext,
  type ToolReply,
  type ToolSpan
} from './tool-host.ts'
export {
  builtinTools,
  BUILTIN_TOOL_NAMES,
  MAX_TOOL_CALL_DEPTH,
  NESTED_CALLS_PER_TASK,
  type BuiltinToolName,
  type BuiltinToolBackends
} from './tool-builtins.ts'
export { hasJspi, TOOL_IMPORT_MODULE } from './tool-bridge.ts'
export { runLlmWithTools, MAX_TOOL_ROUNDS } from './tool-llm.ts'
