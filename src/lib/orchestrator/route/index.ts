/** orchestrator/route: entered only through this file (STYLE.md "The shape of the house"). */
export * from './capacity.ts'
export * from './peer-windows.ts'
export * from './preferences.ts'
export * from './router-reasoning.ts'
export * from './router-types.ts'
export * from './router.ts'
export * from './trust.ts'
