import { afterEach, describe, expect, it } from 'vitest'
import { Worker } from 'node:worker_threads'
import { nodeWorkerHandle, WorkerCrashedError, WorkerTimeoutError, type WorkerHandle } from '../../core/index.ts'
import { LlmLoadError, LlmPlanError } from '../errors.ts'
import { capabilityCatalog } from '../plan/index.ts'
import { agent, catalogOf } from '../test-fixtures.ts'
import { WebLlmEngine, llmWorkerEngineFactory, type LlmWorkerEngineInit } from './llm-engine.ts'

const SCRIPT = new URL('./llm-worker.test-worker.mjs', import.meta.url)
const info = capabilityCatalog(catalogOf([agent('sum', ['text-summarization'], 0.1)]))
const gpu = { requestAdapter: async () => ({}) }
const engines: WebLlmEngine[] = []

/** An engine on the fake worker; `started(task)` resolves when a worker received that task. */
function setup(init: Partial<LlmWorkerEngineInit> = {}) {
  const workers: Worker[] = []
  const spawn = (): WorkerHandle => {
    const w = new Worker(SCRIPT)
    w.unref()
    workers.push(w)
    return nodeWorkerHandle(w)
  }
  const engine = new WebLlmEngine({ gpu, engineFactory: llmWorkerEngineFactory({ spawn, ...init }) })
  engines.push(engine)
  const progress: string[] = []
  const started = (task: string): Promise<void> => {
    const w = workers.at(-1)!
    return new Promise((resolve) => {
      const on = (m: { test?: string; task?: string }) => {
        if (m?.test === 'complete' && m.task?.includes(task) === true) {
          w.off('message', on)
          resolve()
        }
      }
      w.on('message', on)
    })
  }
  return { engine, workers, progress, started, load: () => engine.load('m', (p) => progress.push(p.text)) }
}

afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.unload()))
})

describe('the LLM worker under supervision', () => {
  it('cancel frees a hung plan: the worker is terminated, and the next plan reloads the model on a new one', async () => {
    const s = setup({ planDeadlineMs: 60_000 })
    await s.load()
    expect(s.progress).toEqual(['loaded m'])
    const ac = new AbortController()
    const hung = s.engine.plan({ description: 'please hang' }, info, { signal: ac.signal })
    await s.started('please hang')
    ac.abort(new Error('user cancelled'))
    await expect(hung).rejects.toThrow('user cancelled')
    expect(s.workers).toHaveLength(1)
    const plan = await s.engine.plan({ description: 'summarize' }, info)
    expect(plan.subtasks[0]!.capabilities).toEqual(['text-summarization'])
    expect(s.workers).toHaveLength(2)
    expect(s.progress).toEqual(['loaded m', 'loaded m'])
  })

  it('a hung plan is freed by its deadline with an LlmPlanError, and planning works again', async () => {
    const s = setup({ planDeadlineMs: 200 })
    await s.load()
    const t0 = performance.now()
    const err = await s.engine.plan({ description: 'hang forever' }, info).catch((e: unknown) => e)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(195)
    expect(err).toBeInstanceOf(LlmPlanError)
    expect((err as Error).message).toMatch(/the LLM worker did not answer within 200 ms/)
    expect((err as Error).cause).toBeInstanceOf(WorkerTimeoutError)
    expect((await s.engine.plan({ description: 'summarize' }, info)).subtasks).toHaveLength(1)
    expect(s.workers).toHaveLength(2)
  })

  it('a worker that dies mid-plan rejects the plan with an LlmPlanError; the next plan loads a new worker', async () => {
    const s = setup()
    await s.load()
    const err = await s.engine.plan({ description: 'die now' }, info).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LlmPlanError)
    expect((err as Error).cause).toBeInstanceOf(WorkerCrashedError)
    expect((await s.engine.plan({ description: 'summarize' }, info)).subtasks).toHaveLength(1)
    expect(s.progress).toEqual(['loaded m', 'loaded m'])
  })

  it('a load that never finishes is an LlmLoadError at its deadline', async () => {
    const s = setup({ loadDeadlineMs: 200 })
    const err = await s.engine.load('hang', () => {}).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LlmLoadError)
    expect((err as Error).message).toMatch(/did not answer within 200 ms/)
  })
})
