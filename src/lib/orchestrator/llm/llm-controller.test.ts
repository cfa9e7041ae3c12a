// Issue 10 item 5: after Settings → Save (setModels, then load), peers are served by the
// new engine, not the one the plan service saw at start.
import { describe, expect, it } from 'vitest'
import { PlannerUnavailableError } from '../errors.ts'
import type { CapabilityInfo, PlanDraft } from '../plan/index.ts'
import { LlmController } from './llm-controller.ts'
import type { LlmEngine } from './llm-engine.ts'

const draft = (tag: string): PlanDraft => ({
  subtasks: [{ id: 's1', description: tag, capabilities: ['hashing'], dependencies: [], input: { from: 'task.input' }, estimated_cost: 0 }],
  execution_mode: 'sequential',
  total_estimated_cost: 0
})

/** A fake engine that can only plan once loaded, like WebLLM. */
function engine(tag: string): LlmEngine & { loaded: boolean } {
  const e = {
    loaded: false,
    available: async () => ({ ok: true }),
    load: async () => {
      e.loaded = true
    },
    plan: async () => {
      if (!e.loaded) throw new Error('No model is loaded')
      return draft(tag)
    },
    unload: async () => {
      e.loaded = false
    }
  }
  return e
}

const catalog: CapabilityInfo[] = [{ capability: 'hashing', agents: 1, minPrice: 0, examples: [] }]

describe('LlmController.current', () => {
  it('follows the engine that Settings → Save put in place', async () => {
    const made: Array<ReturnType<typeof engine>> = []
    const llm = new LlmController(
      () => {},
      () => {
        const e = engine(`engine-${made.length + 1}`)
        made.push(e)
        return e
      }
    )
    const served = llm.current // what the plan service holds from the start
    await llm.probe()
    await llm.load('m')
    expect((await served.plan({ description: 'x' }, catalog)).subtasks[0].description).toBe('engine-1')
    // Settings → Save: a new model list replaces (and unloads) the engine, then the model loads again.
    llm.setModels([{ id: 'm2', url: 'https://models.example/m2' }])
    await llm.load('m2')
    expect(llm.state().state).toBe('ready')
    expect(made[0].loaded).toBe(false)
    expect((await served.plan({ description: 'x' }, catalog)).subtasks[0].description).toBe('engine-2')
  })

  it('refuses plans while no model is ready, with a reason a peer can fall through on', async () => {
    const llm = new LlmController(
      () => {},
      () => engine('e')
    )
    await llm.probe()
    await expect(llm.current.plan({ description: 'x' }, catalog)).rejects.toThrow(PlannerUnavailableError)
    await llm.load('m')
    llm.setModels([])
    await expect(llm.current.plan({ description: 'x' }, catalog)).rejects.toThrow(PlannerUnavailableError)
  })
})
