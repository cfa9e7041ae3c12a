/**
 * The orchestrator: tasks → plans → routing → dispatch. One room per stage, each
 * entered through its own index.ts; other modules enter the orchestrator here only.
 */
export {
  createOrchestrator,
  orchestratorService,
  TaskRequestSchema,
  TASK_CATALOG_WAIT_MS,
  type Orchestrator,
  type OrchestratorComponents,
  type OrchestratorInit,
  type TaskRequest,
  type TaskResult,
  type TaskHandle,
  type TaskSummary,
  type ProgressEvent,
  type TaskEvents
} from './orchestrator.ts'
export * from './errors.ts'
export { toTaskId, newTaskId, randomId, type TaskId } from './ids.ts'
export {
  NULL_OUTCOME_SINK,
  type AgentCandidate,
  type AgentCatalog,
  type PeerSnapshot,
  type PeerDirectory,
  type ReputationSource,
  type LocalExecutor,
  type AgentBlobStore,
  type StepOutcome,
  type OutcomeSink
} from './components.ts'
export * from './plan/index.ts'
export * from './llm/index.ts'
export * from './route/index.ts'
export * from './dispatch/index.ts'
export * from './donor/index.ts'
export * from './trust/index.ts'
export * from './workflow/index.ts'
