import { describe, expect, it } from 'vitest'
import { Counters } from '../../core/index.ts'
import { PeerBudget, type StrikeSink } from '../../mesh/index.ts'
import { MemoryTaskNetwork } from '../dispatch/index.ts'
import { fetchAgent, serveAgentFetch } from './agent-fetch.ts'
import { PeerUnavailableError } from '../errors.ts'
import { aid } from '../test-fixtures.ts'

// Issue 11 item 11: agent-fetch answered 2.2 KB of requests with 1.42 MB (631×).
describe('agent-fetch budget', () => {
  it('answers up to the per-peer budget, then refuses by name, counts and strikes; others keep theirs', async () => {
    const net = new MemoryTaskNetwork()
    const holder = net.transport('holder')
    const greedy = net.transport('greedy')
    const other = net.transport('other')
    for (const t of [holder, greedy, other]) await t.start()
    const struck: string[] = []
    const strikes: StrikeSink = {
      strike: (peer, protocol, reason) => {
        struck.push(`${peer} ${protocol} ${reason}`)
        return false
      },
      isBlocked: () => false
    }
    const counters = new Counters('mesh')
    const bytes = new Uint8Array(50_000).fill(9)
    serveAgentFetch(
      holder,
      { get: async () => bytes, put: async () => {} },
      new PeerBudget('agent-fetch', { strikes, counters }, { requests: 3, bytes: 1 << 20, windowS: 60 })
    )
    for (let i = 0; i < 3; i++) expect((await fetchAgent(greedy, 'holder', aid('x'))).byteLength).toBe(50_000)
    const refused = await fetchAgent(greedy, 'holder', aid('x'), { timeoutMs: 5000 }).then(
      () => new Error('answered'),
      (e: unknown) => e as Error
    )
    expect(refused).toBeInstanceOf(PeerUnavailableError)
    expect(refused.message).toMatch(/over its agent-fetch budget/)
    expect(struck).toEqual(['greedy agent-fetch OverBudgetError'])
    expect(counters.get('budget.agent-fetch.refused')).toBe(1)
    // Bytes sent to the greedy peer stop at the budget: 3 modules, not 4.
    const sent = net.log.filter((l) => l.to === 'greedy' && l.message.type === 'agent-payload')
    expect(sent).toHaveLength(3)
    expect((await fetchAgent(other, 'holder', aid('x'))).byteLength).toBe(50_000)
  })

  it('charges answer bytes: a peer cannot draw more than its byte budget', async () => {
    const net = new MemoryTaskNetwork()
    const holder = net.transport('holder')
    const asker = net.transport('asker')
    for (const t of [holder, asker]) await t.start()
    const bytes = new Uint8Array(300_000).fill(1)
    serveAgentFetch(holder, { get: async () => bytes, put: async () => {} }, new PeerBudget('agent-fetch', {}, { requests: 100, bytes: 500_000, windowS: 60 }))
    await fetchAgent(asker, 'holder', aid('x'))
    await expect(fetchAgent(asker, 'holder', aid('x'))).rejects.toThrow(/budget of bytes/)
  })
})
