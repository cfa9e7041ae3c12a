/**
 * The memory layer: Yjs documents (agent registry, shared memory namespaces,
 * this profile's task journal) persisted in IndexedDB, shared live between tabs
 * and synced peer to peer over `/zerostate/sync/2.0.0` (updates as core chunked payloads), with signed registry
 * records verified on read. Imports nothing from orchestrator or Svelte.
 */
export { createMemoryLayer, type MemoryLayer, type MemoryLayerInit } from './layer.ts'
export { Registry, REGISTRY_ROOTS, registryUpdatePolicy, withinShape } from './registry.ts'
export {
  AgentIdSchema,
  ManifestSchema,
  EntryRecordSchema,
  RetractionRecordSchema,
  ReputationRecordSchema,
  PublishInputSchema,
  ReputationInputSchema,
  entryKey,
  type RegistryEntry,
  type RegistryFilter,
  type PublishInput,
  type ReputationInput,
  type EntryRecord,
  type RetractionRecord,
  type ReputationRecord
} from './registry-schema.ts'
export { MemoryStore, NamespaceMode, namespaceDoc, type NamespaceInfo, type MemoryChange, type DocHost, type CreateNamespaceOptions } from './memory-store.ts'
export { NamespaceIndex, OWNED_ROOT } from './namespace-index.ts'
export { ANYONE, NamespaceRecordSchema, MemoryEntrySchema, namespaceKey, type NamespaceRecord, type MemoryEntry } from './namespace-schema.ts'
export { Journal, TaskRecordSchema, StepRecordSchema, type TaskRecord, type StepRecord } from './journal.ts'
export { AuditLog, auditRecordHash, type AuditEntry, type AuditKind, type AuditRecord, type AuditVerification } from './audit-log.ts'
export { generateNamespaceKey, deriveNamespaceKeys, unlockNamespace, slotOf, DEFAULT_PBKDF2_ITERATIONS, type NamespaceKeys } from './namespace-crypto.ts'
export { MeshProvider, type MeshProviderOptions } from './mesh-provider.ts'
export { TabSync, TabMessageSchema } from './tab-sync.ts'
export { IndexedDbPersistence, pageLifecycle, type IndexedDbPersistenceOptions, type PageLifecycle } from './indexeddb-persistence.ts'
export { MessageQueue, type SyncTransport, type SyncChannel, type PeerEvent, type ChannelHandler, type UnknownDocHandler } from './sync-transport.ts'
export { MemorySyncTransport, MemoryNetwork, type ChaosOptions } from './memory-sync-transport.ts'
export { Libp2pSyncTransport, type Libp2pSyncTransportInit, type SyncLibp2p } from './libp2p-sync-transport.ts'
export {
  SYNC_PROTOCOL_ID,
  SyncMessageSchema,
  syncProtocol,
  payloadMessage,
  payloadMessages,
  type SyncMessage,
  type SyncPayloadMessage
} from './sync-protocol.ts'
export { WorkerUpdateChecker, browserCheckWorker, defaultUpdateChecker, type UpdateChecker, type CheckWorker } from './update-checker.ts'
export { DEFAULT_PUBLISH_WORK_BITS, MAX_PUBLISH_WORK_BITS, hasWork, mintWork, workBits } from './publish-work.ts'
export { checkUpdate, checkStateVector, MAX_DEPTH, type UpdateShape, type UpdatePolicy, type ContentKind } from './update-guard.ts'
export {
  DEFAULT_LIMITS,
  REGISTRY_DOC,
  MEMORY_INDEX_DOC,
  JOURNAL_DOC,
  LOCAL_DOC,
  MEMORY_DOC_PREFIX,
  NAMESPACE_DOC_PREFIX,
  type MemoryLimits
} from './constants.ts'
export * from './errors.ts'
