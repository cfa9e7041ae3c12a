/**
 * The app: the composition root (`createZeroState`), the public API types, and the
 * adapters that join the layers. Wiring only (STYLE.md "The shape of the house").
 */
export { createZeroState, type ZeroStateOptions } from './zerostate.ts'
export type * from './api.ts'
export { AppCatalog, OutcomeStats, RuntimeExecutor, meshPeerDirectory, libp2pStreamHost, coerceInput, type CatalogAgent } from './adapters.ts'
export { journalTask } from './task-journal.ts'
