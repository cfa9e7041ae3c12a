/** orchestrator/llm: entered only through this file (STYLE.md "The shape of the house"). */
export * from './gguf-controller.ts'
export * from './llm-controller.ts'
export * from './llm-engine.ts'
export * from './llm-planner.ts'
export * from './llm-worker-api.ts'
export * from './plan-service.ts'
export * from './wllama-engine.ts'
export * from './wllama-worker-api.ts'
