import { describe, expect, it } from 'vitest'
import { Counters } from '../core/index.ts'
import { OverBudgetError, PeerBudget } from './budgets.ts'
import type { StrikeSink } from './strikes.ts'

function sink(): StrikeSink & { calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    strike: (peer, protocol, reason) => {
      calls.push(`${peer} ${protocol} ${reason}`)
      return false
    },
    isBlocked: () => false
  }
}

describe('PeerBudget', () => {
  it('admits requests up to the budget, then refuses with a typed error, counts and strikes', () => {
    const strikes = sink()
    const counters = new Counters('mesh')
    const b = new PeerBudget('agent-fetch', { strikes, counters }, { requests: 3, windowS: 60 })
    expect([b.request('p1'), b.request('p1'), b.request('p1')]).toEqual([undefined, undefined, undefined])
    const refusal = b.request('p1')
    expect(refusal).toBeInstanceOf(OverBudgetError)
    expect(refusal?.name).toBe('OverBudgetError')
    expect(strikes.calls).toEqual(['p1 agent-fetch OverBudgetError'])
    expect(counters.get('budget.agent-fetch.refused')).toBe(1)
    // Budgets are per peer.
    expect(b.request('p2')).toBeUndefined()
  })

  it('charges answer bytes: a peer cannot make us send more than the byte budget', () => {
    const b = new PeerBudget('agent-fetch', {}, { bytes: 1000, windowS: 60 })
    expect(b.answer('p1', 600)).toBeUndefined()
    expect(b.answer('p1', 600)).toBeInstanceOf(OverBudgetError)
    expect(b.answer('p2', 1000)).toBeUndefined()
  })
})
