/**
 * The public API: `createZeroState(options)` returns the one object the UI, the
 * console (`window.zerostate`), the tests and other tools use (shared/design/API.md).
 * Schemas of the public types are exported here.
 */
export { createZeroState, type ZeroStateOptions } from './zerostate.ts'
export type { ZeroStateApi, AgentEntry, AgentFilter, DonationState, LlmState, PeerInfo, RelayStatus, TaskHandle, TaskRequest, TaskSummary } from './api.ts'
export type { MeshNodeInit, Identity } from './mesh/index.ts'
export { AgentManifestSchema, UnsignedManifestSchema, type AgentManifest, type UnsignedManifest } from './runtime/index.ts'
export { RoutingPreferencesSchema, TaskRequestSchema, PlanSchema, type RoutingPreferences, type TaskResult, type Plan } from './orchestrator/index.ts'
export { EntryRecordSchema as RegistryEntrySchema, type RegistryEntry } from './memory/index.ts'
