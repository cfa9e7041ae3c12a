import { describe, expect, it, vi } from 'vitest'
import { WebLlmEngine, type MlcEngineLike } from './llm-engine.ts'
import { LlmLoadError, LlmPlanError, WebGpuUnavailableError } from '../errors.ts'
import { plannerChain, capabilityCatalog, describeInput } from '../plan/index.ts'
import { llmPlanner } from './llm-planner.ts'
import { deterministicPlanner } from '../plan/index.ts'
import { validatePlan } from '../plan/index.ts'
import { agent, catalogOf } from '../test-fixtures.ts'

const catalog = catalogOf([agent('sum', ['text-summarization'], 0.1), agent('h', ['hashing'], 0.02)])
const info = capabilityCatalog(catalog)
const gpu = { requestAdapter: async () => ({}) }
const good = JSON.stringify({
  subtasks: [{ id: 's1', description: 'sum', capabilities: ['text-summarization'], dependencies: [], input: { from: 'task.input' }, estimated_cost: 0.1 }],
  execution_mode: 'sequential',
  total_estimated_cost: 0.1
})

function fake(answer: () => Promise<string>): { factory: any; create: ReturnType<typeof vi.fn> } {
  const create = vi.fn(async () => ({ choices: [{ message: { content: await answer() } }] }))
  const engine: MlcEngineLike = { chat: { completions: { create } }, unload: async () => {} }
  return {
    create,
    factory: vi.fn(async ({ onProgress }) => {
      onProgress({ progress: 0.5, text: 'half' })
      onProgress({ progress: 7, text: 'done' })
      return engine
    })
  }
}

describe('WebLlmEngine', () => {
  it('checks WebGPU before loading anything', async () => {
    const f = fake(async () => good)
    const e = new WebLlmEngine({ gpu: null, engineFactory: f.factory })
    expect(await e.available()).toEqual({ ok: false, reason: expect.stringMatching(/navigator.gpu is missing/) })
    await expect(e.load('m', () => {})).rejects.toBeInstanceOf(WebGpuUnavailableError)
    const noAdapter = new WebLlmEngine({ gpu: { requestAdapter: async () => null }, engineFactory: f.factory })
    await expect(noAdapter.load('m', () => {})).rejects.toThrow(/no adapter/)
    expect(f.factory).not.toHaveBeenCalled()
  })

  it('loads with clamped progress, plans with the JSON schema, and parses the plan', async () => {
    const f = fake(async () => good)
    const e = new WebLlmEngine({
      gpu,
      engineFactory: f.factory,
      models: [{ model: 'https://weights.example/m', model_id: 'm', model_lib: 'https://weights.example/m.wasm' }]
    })
    const progress: number[] = []
    await e.load('m', (p) => progress.push(p.progress))
    expect(progress).toEqual([0.5, 1])
    expect(f.factory.mock.calls[0][0].appConfig.model_list[0].model_id).toBe('m')
    const plan = await e.plan({ description: 'summarize' }, info)
    expect(plan.subtasks[0].capabilities).toEqual(['text-summarization'])
    const req = f.create.mock.calls[0][0]
    expect(req.response_format.type).toBe('json_object')
    expect(JSON.parse(req.response_format.schema).required).toContain('subtasks')
    expect(req.messages[0].content).toMatch(/text-summarization/)
    expect(req.messages[1].content).not.toMatch(/Input:/)
    // The task's input reaches the prompt (issue 14), as the orchestrator's bounded preview.
    await e.plan({ description: 'summarize', inputPreview: describeInput('The mesh lends CPUs. '.repeat(100)) }, info)
    const withInput = f.create.mock.calls[1][0].messages[1].content as string
    expect(withInput).toMatch(/^Task: summarize\nInput: The mesh lends CPUs\./)
    expect(withInput).toMatch(/… \(2100 characters in all\)$/)
    expect(withInput.length).toBeLessThan(700)
    await expect(e.load('other', () => {})).rejects.toBeInstanceOf(LlmLoadError)
  })

  it('wraps WebLLM string rejections and bad output in typed errors', async () => {
    const loadFails = new WebLlmEngine({
      gpu,
      engineFactory: async () => {
        throw 'Cannot find adapter that matches the request'
      }
    }) // eslint-disable-line no-throw-literal
    const err = await loadFails.load('m', () => {}).catch((x) => x)
    expect(err).toBeInstanceOf(LlmLoadError)
    expect(err.message).toBe('Loading model "m" failed: Cannot find adapter that matches the request')
    const rejecting = new WebLlmEngine({
      gpu,
      engineFactory: fake(async () => {
        throw 'device lost'
      }).factory
    }) // eslint-disable-line no-throw-literal
    await rejecting.load('m', () => {})
    await expect(rejecting.plan({ description: 'x' }, info)).rejects.toThrow(new LlmPlanError('The LLM failed while planning: device lost'))
    const prose = new WebLlmEngine({ gpu, engineFactory: fake(async () => 'Sure! Here is a plan').factory })
    await prose.load('m', () => {})
    await expect(prose.plan({ description: 'x' }, info)).rejects.toThrow(/not JSON/)
    const wrongShape = new WebLlmEngine({ gpu, engineFactory: fake(async () => '{"subtasks":[]}').factory })
    await wrongShape.load('m', () => {})
    await expect(wrongShape.plan({ description: 'x' }, info)).rejects.toBeInstanceOf(LlmPlanError)
  })

  it('the chain falls back to rules when WebGPU is missing or the LLM invents a capability', async () => {
    const chain = plannerChain([llmPlanner(new WebLlmEngine({ gpu: null }), { model: 'm' }), deterministicPlanner()])
    const p = await chain.plan({ description: 'summarize then hash' }, info, (x) => validatePlan(x, catalog))
    expect(p.planner).toBe('deterministic')
    expect(p.notes?.[0]).toMatch(/^webllm: WebGPU is not available/)
    const invented = JSON.stringify({ ...JSON.parse(good), subtasks: [{ ...JSON.parse(good).subtasks[0], capabilities: ['mind-reading'] }] })
    const chain2 = plannerChain([
      llmPlanner(new WebLlmEngine({ gpu, engineFactory: fake(async () => invented).factory }), { model: 'm' }),
      deterministicPlanner()
    ])
    const p2 = await chain2.plan({ description: 'summarize' }, info, (x) => validatePlan(x, catalog))
    expect(p2.planner).toBe('deterministic')
    expect(p2.notes?.[0]).toMatch(/mind-reading, which no agent offers/)
    const chain3 = plannerChain([llmPlanner(new WebLlmEngine({ gpu, engineFactory: fake(async () => good).factory }), { model: 'm' }), deterministicPlanner()])
    expect((await chain3.plan({ description: 'whatever' }, info, (x) => validatePlan(x, catalog))).planner).toBe('webllm')
  })
})
