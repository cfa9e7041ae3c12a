import { describe, expect, it } from 'vitest'
import { TOOL_GRANTS_KEY, toolWiring } from './tool-wiring.ts'

function memoryStorage(): { getItem(k: string): string | null; setItem(k: string, v: string): void; data: Map<string, string> } {
  const data = new Map<string, string>()
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) }
}

const components = (storage: ReturnType<typeof memoryStorage>) => ({
  memory: { get: () => undefined, set: async () => {} },
  submit: () => undefined,
  storage
})

describe('tool wiring', () => {
  it('starts from the defaults, saves grants per profile and reads them back', () => {
    const storage = memoryStorage()
    const { api } = toolWiring(components(storage))
    expect(api.grants()).toEqual({ all: ['kv.scratch', 'llm.complete'], agents: {}, httpOrigins: [] })
    expect(
      api
        .list()
        .map((t) => t.name)
        .sort()
    ).toEqual(['agent.call', 'http.fetch', 'kv.scratch', 'llm.complete', 'memory.get', 'memory.set'])
    api.setGrants({ agents: { notes: ['memory.get', 'memory.set'] }, httpOrigins: ['https://example.org'] })
    expect(JSON.parse(storage.data.get(TOOL_GRANTS_KEY)!)).toMatchObject({ agents: { notes: ['memory.get', 'memory.set'] } })
    expect(toolWiring(components(storage)).api.grants()).toMatchObject({
      agents: { notes: ['memory.get', 'memory.set'] },
      httpOrigins: ['https://example.org']
    })
  })

  it('refuses grants that are not valid, saying what is wrong, and keeps the old ones', () => {
    const storage = memoryStorage()
    const { api } = toolWiring(components(storage))
    expect(() => api.setGrants({ httpOrigins: ['https://example.org/path'] })).toThrow(/not an origin/)
    expect(() => api.setGrants({ all: ['Not A Tool'] })).toThrow(RangeError)
    expect(api.grants().httpOrigins).toEqual([])
    // Garbage in storage: the defaults apply.
    storage.data.set(TOOL_GRANTS_KEY, '{"all": 5}')
    expect(toolWiring(components(storage)).api.grants().all).toEqual(['kv.scratch', 'llm.complete'])
  })

  it('agent.call and llm.complete go through submit, with the task scope passed on', async () => {
    const requests: unknown[] = []
    const { host, api } = toolWiring({
      ...components(memoryStorage()),
      submit: () => (request) => {
        requests.push(request)
        return { done: Promise.resolve({ output: 'ok' }) } as never
      }
    })
    api.setGrants({ agents: { caller: ['agent.call'] } })
    const ctx = { agent: { id: 'x', name: 'caller', tools: ['agent.call', 'llm.complete'] }, taskId: 't', scope: { memory: ['team'] } }
    await expect(host.call('agent.call', { capability: 'hashing', input: 'x' }, ctx)).resolves.toEqual({ output: 'ok' })
    await expect(host.call('llm.complete', { prompt: 'hi' }, ctx)).resolves.toEqual({ text: 'ok' })
    // Each nested task is one level deeper in nested calls (a task a user submitted is at 0).
    expect(requests).toEqual([
      { description: 'agent.call from caller', capabilities: ['hashing'], input: 'x', tools: { memory: ['team'], depth: 1 } },
      { description: 'llm.complete for caller', agent: 'answer-llm', input: { question: 'hi' }, tools: { depth: 1 } }
    ])
  })

  it('an agent that calls itself through agent.call stops at the depth limit carried in each request', async () => {
    // Each submitted task runs the same agent, which calls agent.call again with the task's scope (as a
    // donor runs an offer with its TaskRequest.tools): without the depth carried along this never ends.
    const depths: unknown[] = []
    let tasks = 0
    const wiring = toolWiring({
      ...components(memoryStorage()),
      submit: () => (request) => {
        depths.push(request.tools?.depth)
        tasks++
        const done = wiring.host
          .call('agent.call', { agent: 'loop' }, { agent: { id: 'l', name: 'loop', tools: ['agent.call'] }, taskId: `t${tasks}`, scope: request.tools })
          .then((output) => ({ output }))
        return { done } as never
      }
    })
    wiring.api.setGrants({ agents: { loop: ['agent.call'] } })
    const err = await wiring.host
      .call('agent.call', { agent: 'loop' }, { agent: { id: 'l', name: 'loop', tools: ['agent.call'] }, taskId: 't0' })
      .catch((e: unknown) => e)
    expect((err as Error).name).toBe('ToolDepthError')
    expect(depths).toEqual([1, 2, 3])
    expect(wiring.host.stats()['tools.tooDeep']).toBeGreaterThanOrEqual(1)
  })
})
