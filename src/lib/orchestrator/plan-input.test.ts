// Issue 14: the plan prompt includes the task input. The orchestrator gives planners a bounded
// preview of it (describeInput); LLM planners put it in their prompt.
import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from './dispatch/index.ts'
import { PlannerUnavailableError } from './errors.ts'
import { createOrchestrator } from './index.ts'
import { describeInput, type PlanRequest, type Planner } from './plan/index.ts'
import { agent, catalogOf, fnExecutor } from './test-fixtures.ts'

const summarize = agent('summarize', ['text-summarization'], 0)

describe('the task input in planning', () => {
  it('describeInput: text as it is up to the bound, then cut with its length; objects as JSON; bytes by size; nothing for no input', () => {
    expect(describeInput('short text')).toBe('short text')
    const long = describeInput('x'.repeat(1000), 600)!
    expect(long.startsWith('x'.repeat(600))).toBe(true)
    expect(long.endsWith('… (1000 characters in all)')).toBe(true)
    expect(describeInput({ rows: [1, 2] })).toBe('{"rows":[1,2]}')
    expect(describeInput(new Uint8Array(1234))).toBe('(1234 bytes of binary data)')
    expect(describeInput(undefined)).toBeUndefined()
    expect(describeInput('   ')).toBeUndefined()
    expect(describeInput(new Uint8Array(0))).toBeUndefined()
  })

  it('every planner of the chain is asked with the input preview', async () => {
    const asked: PlanRequest[] = []
    const spy: Planner = {
      name: 'webllm',
      async plan(request) {
        asked.push(request)
        throw new PlannerUnavailableError('only looking')
      }
    }
    const net = new MemoryTaskNetwork()
    const orch = createOrchestrator(
      {
        catalog: catalogOf([summarize]),
        peers: { peers: () => [] },
        transport: net.transport('me'),
        executor: fnExecutor({ [summarize.id]: (i) => ({ summary: i }) }, 1),
        planners: [spy]
      },
      {}
    )
    await orch.start()
    await orch.submit({ description: 'summarize this', input: 'The mesh lends CPUs to peers that have none.' }).done
    await orch.submit({ description: 'summarize this', input: new Uint8Array(10) }).done.catch(() => {})
    expect(asked[0]?.inputPreview).toBe('The mesh lends CPUs to peers that have none.')
    expect(asked[1]?.inputPreview).toBe('(10 bytes of binary data)')
    await orch.stop()
  })
})
