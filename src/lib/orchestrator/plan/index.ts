/** orchestrator/plan: entered only through this file (STYLE.md "The shape of the house"). */
export * from './deterministic-planner.ts'
export * from './input-mapping.ts'
export * from './plan-schema.ts'
export * from './planner.ts'
export * from './remote-planner.ts'
export * from './validate-plan.ts'
