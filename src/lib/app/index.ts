/**
 * The app: the composition root (`createZeroState`), the public API types, and the
 * adapters that join the layers. Wiring only (STYLE.md "The shape of the house").
 */
export { createZeroState, type ZeroStateOptions } from './zerostate.ts'
export type * from './api.ts'
export { AppCatalog, OutcomeStats, RuntimeExecutor, meshPeerDirectory, libp2pStreamHost, coerceInput, type CatalogAgent } from './adapters.ts'
export { journalTask } from './task-journal.ts'
export { taskHistory, pastTask, mergeTasks, PastTaskFailedError, type PastTaskHandle, type PastTaskRequest } from './task-history.ts'
export { IndexedDbTaskMedia, MemoryTaskMedia, MAX_KEPT_MEDIA_BYTES, MEDIA_STORE_BYTES, type KeptMedia, type TaskMediaStore } from './task-media.ts'
export { agentListing, type AgentListing, type AgentListingComponents, type AgentListingInit } from './agent-listing.ts'
export { donation, type Donation, type DonationComponents, type DonationInit, type DonationStorage, type DonateOptions } from './donation.ts'
export {
  presencePublisher,
  savedRegion,
  type PresencePublisher,
  type PresencePublisherComponents,
  type PresencePublisherInit,
  type RegionState,
  type RegionStorage
} from './presence.ts'
export { agentPublisher, type AgentPublisher, type AgentPublisherComponents, type AgentPublisherInit, type AgentBundle } from './publish.ts'
export { appMetrics, METRIC, agentLabel, type AppMetrics, type AppMetricsInit, type MetricsSources } from './metrics-wiring.ts'
export { taskTracking, type TaskTracking, type TaskTrackingComponents, type TaskTrackingInit } from './task-tracking.ts'
export { RunStore, RUN_LIMITS, RunJournalFullError, type RunMeta, type RunLog, type RunStatus } from './services/run-store.ts'
export { MemoryRunLocks, WebRunLocks, runLockName, type RunLocks, type RunLease } from './services/run-locks.ts'
export { projectRun, unitLabel, stepOfUnit, type RunView, type RunStepView, type RunUnitView, type RunUnitState } from './services/run-view.ts'
export {
  workflowRuns,
  WorkflowRunFailedError,
  type WorkflowRuns,
  type WorkflowHandle,
  type WorkflowTaskResult,
  type ApprovalEvent,
  type WorkflowProgressEvent,
  type WorkflowStepEvent
} from './services/workflow-runs.ts'
export { workflows, WorkflowsNotLoadedError, type Workflows, type WorkflowsApi, type WorkflowInspection } from './services/workflows.ts'
export { workflowTemplates, TEMPLATES_NAMESPACE, type WorkflowTemplates } from './services/workflow-templates.ts'
