// A fake LLM worker for llm-worker-supervision.test.ts: speaks LlmWorkerApi over Comlink on a
// worker thread. A task that says "hang" never gets an answer; "die" kills the worker; a model
// named "hang" never finishes loading. It posts {test: ...} notes (Comlink ignores them).
import { parentPort } from 'node:worker_threads'
import { expose } from 'comlink'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'

const PLAN = JSON.stringify({
  subtasks: [{ id: 's1', description: 'sum', capabilities: ['text-summarization'], dependencies: [], input: { from: 'task.input' }, estimated_cost: 0.1 }],
  execution_mode: 'sequential',
  total_estimated_cost: 0.1
})
let model
expose(
  {
    async load(name, _appConfig, onProgress) {
      if (name === 'hang') return new Promise(() => {})
      await onProgress({ progress: 1, text: `loaded ${name}` })
      model = name
    },
    async complete(request) {
      if (model == null) throw new Error('no model is loaded in the LLM worker')
      const task = request.messages.at(-1).content
      parentPort.postMessage({ test: 'complete', task })
      if (task.includes('hang')) return new Promise(() => {})
      if (task.includes('die')) setTimeout(() => process.exit(9), 10)
      if (task.includes('die')) return new Promise(() => {})
      return { choices: [{ message: { content: PLAN } }] }
    },
    async unload() {
      model = undefined
    }
  },
  nodeEndpoint(parentPort)
)
