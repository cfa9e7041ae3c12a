/**
 * The public API: `createZeroState(options)` returns the one object the UI, the
 * console (`window.zerostate`), the tests and other tools use (shared/design/API.md).
 * Schemas of the public types are exported here.
 */
export { createZeroState, type ZeroStateOptions } from './app/index.ts'
export type {
  ZeroStateApi,
  AgentEntry,
  AgentFilter,
  DonationState,
  GgufState,
  LlmState,
  RegionState,
  PeerInfo,
  RelayStatus,
  TaskHandle,
  TaskRequest,
  TaskSummary,
  TaskListEntry,
  WorkflowHandle,
  WorkflowsApi,
  WorkflowInspection,
  RunView,
  RunStepView,
  RunUnitView,
  ApprovalEvent,
  TrustApi,
  UserReputation
} from './app/index.ts'
export type { MeshNodeInit } from './mesh/index.ts'
export { REGIONS, RELAYS_PATH, UNKNOWN_REGION, isRegion, regionLabel, type Region } from './mesh/index.ts'
export type { Identity, KeyStore } from './core/index.ts'
export { AgentManifestSchema, UnsignedManifestSchema, checkManifest, type AgentManifest, type ManifestIssue, type UnsignedManifest } from './runtime/index.ts'
/** Tools agents call (issue 14): their names, the donor's default grants, and the types of `zerostate.tools`. */
export { BUILTIN_TOOL_NAMES, DEFAULT_TOOL_GRANTS, ToolGrantsSchema, ToolScopeSchema, type ToolGrants, type ToolScope, type ToolSpec } from './runtime/index.ts'
export type { ToolsApi } from './app/tool-wiring.ts'
/** The agent toolkit (the terminal's `agent test`, tools): the runtime and local signing, outside a mesh. */
export { createAgentRuntime, publishLocal, MemoryAgentStore, type AgentRuntime } from './runtime/index.ts'
export { loadIdentity } from './core/index.ts'
export {
  RoutingPreferencesSchema,
  TaskRequestSchema,
  PlanSchema,
  type RoutingPreferences,
  type Strategy,
  type TaskResult,
  type Plan,
  type ProgressEvent,
  type StepEvent,
  type Credits,
  type Receipt,
  type SpendingState
} from './orchestrator/index.ts'
/** The language models a peer advertises (issue 14): family, context and rough speed, read from its capabilities. */
export { parseLlmRuns, type AdvertisedModel } from './orchestrator/index.ts'
export { EntryRecordSchema as RegistryEntrySchema, type RegistryEntry, type NamespaceInfo } from './memory/index.ts'
