// Nested tool calls (issue 14): agent.call and llm.complete start tasks a donor submits and pays for.
// The depth travels with the request (TaskRequest.tools.depth) and each call passes it on one deeper;
// past MAX_TOOL_CALL_DEPTH a call is refused with ToolDepthError, and one task's agents get at most
// NESTED_CALLS_PER_TASK nested calls on a peer (ToolCallBudgetError); both counted.
import { describe, expect, test } from 'vitest'
import {
  MAX_TOOL_CALL_DEPTH,
  NESTED_CALLS_PER_TASK,
  ToolCallBudgetError,
  ToolDepthError,
  builtinTools,
  createToolHost,
  type BuiltinToolBackends,
  type ToolCallContext,
  type ToolScope
} from './index.ts'
import { deserializeError, serializeError } from './errors.ts'

const GRANTS = { all: ['agent.call', 'llm.complete'], agents: {}, httpOrigins: [] }
const caller = { id: 'a1', name: 'caller', tools: ['agent.call', 'llm.complete'] }

function host(limits?: BuiltinToolBackends['limits']) {
  const scopes: Array<{ tool: string; scope: ToolScope }> = []
  const h = createToolHost({
    tools: builtinTools({
      agent: async (_req, ctx) => {
        scopes.push({ tool: 'agent.call', scope: ctx.scope })
        return 'out'
      },
      llm: async (_req, ctx) => {
        scopes.push({ tool: 'llm.complete', scope: ctx.scope })
        return 'text'
      },
      ...(limits != null ? { limits } : {})
    }),
    grants: () => GRANTS
  })
  return { h, scopes }
}

const ctx = (taskId: string, scope?: ToolScope): ToolCallContext => ({ agent: caller, taskId, ...(scope != null ? { scope } : {}) })

describe('nested tool calls', () => {
  test('each nested call starts its task one level deeper, keeping the rest of the scope', async () => {
    const { h, scopes } = host()
    await h.call('agent.call', { agent: 'x' }, ctx('t1'))
    await h.call('agent.call', { agent: 'x' }, ctx('t2', { memory: ['team'], depth: 1 }))
    await h.call('llm.complete', { prompt: 'hi' }, ctx('t3', { depth: 2 }))
    expect(scopes).toEqual([
      { tool: 'agent.call', scope: { depth: 1 } },
      { tool: 'agent.call', scope: { memory: ['team'], depth: 2 } },
      { tool: 'llm.complete', scope: { depth: 3 } }
    ])
  })

  test('a call past the depth limit is refused with ToolDepthError naming the limit, counted, and nothing is started', async () => {
    const { h, scopes } = host()
    for (const tool of ['agent.call', 'llm.complete']) {
      const args = tool === 'agent.call' ? { agent: 'x' } : { prompt: 'hi' }
      const err = await h.call(tool, args, ctx('deep', { depth: MAX_TOOL_CALL_DEPTH })).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ToolDepthError)
      expect((err as ToolDepthError).limit).toBe('depth')
      expect((err as Error).message).toContain(`allows ${MAX_TOOL_CALL_DEPTH} (MAX_TOOL_CALL_DEPTH)`)
      expect((err as ToolDepthError).tool).toBe(tool)
    }
    expect(scopes).toEqual([])
    expect(h.stats()).toMatchObject({ 'tools.tooDeep': 2, 'tools.failed': 0, 'tools.ok': 0 })
    // The agent gets it as a typed reply; across a worker it keeps its class.
    const reply = await h.reply('agent.call', '{"agent":"x"}', ctx('deep', { depth: MAX_TOOL_CALL_DEPTH + 5 }))
    expect(reply).toMatchObject({ ok: false, error: { name: 'ToolDepthError', tool: 'agent.call' } })
    expect(deserializeError(serializeError(new ToolDepthError('x')))).toBeInstanceOf(ToolDepthError)
  })

  test('one task gets NESTED_CALLS_PER_TASK nested calls on a peer; the next is refused with ToolCallBudgetError, other tasks are not', async () => {
    const { h, scopes } = host()
    for (let i = 0; i < NESTED_CALLS_PER_TASK; i++)
      await h.call(i % 2 === 0 ? 'agent.call' : 'llm.complete', i % 2 === 0 ? { agent: 'x' } : { prompt: 'p' }, ctx('busy'))
    const err = await h.call('agent.call', { agent: 'x' }, ctx('busy')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ToolCallBudgetError)
    expect((err as Error).message).toContain(`allows ${NESTED_CALLS_PER_TASK} per task (NESTED_CALLS_PER_TASK)`)
    await h.call('agent.call', { agent: 'x' }, ctx('other'))
    expect(scopes).toHaveLength(NESTED_CALLS_PER_TASK + 1)
    expect(h.stats()).toMatchObject({ 'tools.overBudget': 1, 'tools.ok': NESTED_CALLS_PER_TASK + 1 })
  })

  test('the limits can be set lower', async () => {
    const { h } = host({ depth: 1, callsPerTask: 1 })
    await h.call('agent.call', { agent: 'x' }, ctx('t'))
    await expect(h.call('agent.call', { agent: 'x' }, ctx('t'))).rejects.toBeInstanceOf(ToolCallBudgetError)
    await expect(h.call('agent.call', { agent: 'x' }, ctx('u', { depth: 1 }))).rejects.toBeInstanceOf(ToolDepthError)
  })

  test('an agent that calls itself through agent.call stops at the depth limit', async () => {
    // Each nested call "runs" the same agent again, as a donor would run the submitted task: with the
    // scope it was submitted with. Without a limit this never ends.
    let started = 0
    const depths: Array<number | undefined> = []
    const h = createToolHost({
      tools: builtinTools({
        agent: async (_req, c) => {
          started++
          depths.push(c.scope.depth)
          return await h.call('agent.call', { agent: 'caller' }, { agent: caller, taskId: `nested-${started}`, scope: c.scope })
        }
      }),
      grants: () => GRANTS
    })
    await expect(h.call('agent.call', { agent: 'caller' }, ctx('root'))).rejects.toBeInstanceOf(ToolDepthError)
    expect(depths).toEqual([1, 2, 3])
    expect(started).toBe(MAX_TOOL_CALL_DEPTH)
  })
})
