import { describe, expect, it } from 'vitest'
import type { StrikeSink } from '../../mesh/index.ts'
import { PeerBudget } from '../../mesh/index.ts'
import { servePlans, type LlmEngine } from '../llm/index.ts'
import type { PeerDirectory } from '../components.ts'
import { framed } from '../../core/index.ts'
import { peer, streamNetwork } from '../test-fixtures.ts'
import { LLM_CAPABILITY, PLAN_PROTOCOL_ID, planProtocolDefinition, remotePlanner } from './remote-planner.ts'

function sink(): StrikeSink & { calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    strike: (p, protocol, reason) => {
      calls.push(`${p} ${protocol} ${reason}`)
      return false
    },
    isBlocked: () => false
  }
}

const directory = (ids: string[]): PeerDirectory => ({ peers: () => ids.map((id) => peer(id, { capabilities: [LLM_CAPABILITY] })) })

// Issue 11 items 2, 11, 12 on /zerostate/plan/1.0.0.
describe('plan protocol and the strike policy', () => {
  it('the asking side strikes a planner that answers with a length prefix that never ends', async () => {
    const net = streamNetwork()
    await net.host('evil').handle(PLAN_PROTOCOL_ID, (stream) => {
      stream.send(new Uint8Array(1 << 20).fill(0x80))
    })
    const strikes = sink()
    const planner = remotePlanner()({ host: net.host('me'), peers: directory(['evil']), strikes })
    const t0 = performance.now()
    await expect(planner.plan({ description: 'plan this' }, [])).rejects.toThrow(/length prefix runs past|announces more/)
    expect(performance.now() - t0).toBeLessThan(1000)
    expect(strikes.calls).toEqual(['evil plan FrameTooLargeError'])
  })

  it('the serving side strikes bad requests and refuses, by name, requests over the budget', async () => {
    const net = streamNetwork()
    const strikes = sink()
    let planned = 0
    const engine = {
      plan: async () => {
        planned++
        return {
          subtasks: [
            { id: 's1', description: 'Count words', capabilities: ['text-stats'], dependencies: [], input: { from: 'task.input' }, estimated_cost: 1 }
          ],
          execution_mode: 'sequential',
          total_estimated_cost: 1
        }
      }
    } as unknown as LlmEngine
    await servePlans(net.host('llm'), engine, { strikes, budget: new PeerBudget('plan', { strikes }, { requests: 2, windowS: 60 }) })
    const ask = async () => {
      const f = framed(await net.host('greedy').openStream('llm', PLAN_PROTOCOL_ID), planProtocolDefinition)
      await f.write({ type: 'plan-request', description: 'x', capabilities: [], catalog: [] })
      return await f.read()
    }
    expect((await ask()).type).toBe('plan-response')
    expect((await ask()).type).toBe('plan-response')
    expect(await ask()).toMatchObject({ type: 'plan-error', name: 'OverBudgetError' })
    expect(planned).toBe(2)
    const s = await net.host('garbler').openStream('llm', PLAN_PROTOCOL_ID)
    s.send(Uint8Array.from([5, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b]))
    await expect.poll(() => strikes.calls).toEqual(['greedy plan OverBudgetError', 'garbler plan InvalidFrameError'])
  })
})
