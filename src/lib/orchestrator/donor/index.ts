/** orchestrator/donor: entered only through this file (STYLE.md "The shape of the house"). */
export * from './agent-fetch.ts'
export * from './donor-service.ts'
export * from './page-lifecycle.ts'
