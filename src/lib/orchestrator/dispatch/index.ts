/** orchestrator/dispatch: entered only through this file (STYLE.md "The shape of the house"). */
export * from './dispatcher.ts'
export * from './libp2p-task-transport.ts'
export * from './memory-task-transport.ts'
export * from './task-protocol.ts'
export * from './task-transport.ts'
export * from './payload-transfer.ts'
export * from './budget.ts'
