import { describe, expect, it } from 'vitest'
import type { StrikeSink } from '../../mesh/index.ts'
import { MemoryTaskNetwork, type TaskMessage } from '../dispatch/index.ts'
import { aid, delay, fnExecutor } from '../test-fixtures.ts'
import { donorService } from './donor-service.ts'

// Issue 11 item 3: a peer flooding a donor with task offers got a decline per offer, forever,
// and no strike. Offers now have a per-peer budget, and so do the offers a donor must decline.
function offer(i: number, agentId = aid('slow')): TaskMessage {
  return { type: 'offer', rid: `r${i}`, taskId: `t${i}`, stepId: 's1', attempt: 1, idempotencyKey: `k${i}`, agentId, input: 'x', deadline: Date.now() + 60_000 }
}

async function setup(init: Parameters<typeof donorService>[0]) {
  const net = new MemoryTaskNetwork()
  const donorT = net.transport('donor')
  const struck: string[] = []
  const strikes: StrikeSink = {
    strike: (peer, protocol, reason) => {
      struck.push(`${peer} ${protocol} ${reason}`)
      return false
    },
    isBlocked: () => false
  }
  Object.assign(donorT, { strikes })
  const executor = fnExecutor({ [aid('slow')]: () => delay(200).then(() => 'done') }, 1)
  const donor = donorService(init)({ transport: donorT, executor })
  await donor.start()
  const flooder = net.transport('flooder')
  const honest = net.transport('honest')
  for (const t of [donorT, flooder, honest]) await t.start()
  const answers = (to: string) => net.log.filter((l) => l.from === 'donor' && l.to === to).map((l) => l.message)
  return { net, donor, flooder, honest, struck, answers, executor }
}

describe('task-offer budgets', () => {
  it('a flood of offers the donor must decline is refused by name past the budget and struck; another peer is still served', async () => {
    const s = await setup({ declineBudget: { requests: 5, windowS: 60 } })
    for (let i = 0; i < 30; i++) await s.flooder.send('donor', offer(i))
    await delay(50)
    const got = s.answers('flooder')
    // One accepted (one worker), five declined 'full', every later offer refused by name.
    expect(got.filter((m) => m.type === 'accept')).toHaveLength(1)
    expect(got.filter((m) => m.type === 'decline')).toHaveLength(5)
    const refused = got.filter((m) => m.type === 'error')
    expect(refused).toHaveLength(24)
    for (const m of refused) expect(m.type === 'error' && m.name).toBe('OverBudgetError')
    expect(s.struck).toHaveLength(24)
    expect(new Set(s.struck)).toEqual(new Set(['flooder task-offer-declined OverBudgetError']))
    expect(s.donor.stats().overBudget).toBe(24)
    // The honest peer has its own budget: its offer runs once the worker is free.
    await delay(250)
    await s.honest.send('donor', offer(100))
    await delay(300)
    expect(s.answers('honest').map((m) => m.type)).toEqual(['accept', 'result'])
  })

  it('offers past the per-peer offer budget are refused before any work, even ones that could run', async () => {
    const s = await setup({ offerBudget: { requests: 3, windowS: 60 } })
    for (let i = 0; i < 6; i++) {
      await s.flooder.send('donor', offer(i))
      await delay(250)
    }
    const got = s.answers('flooder')
    expect(got.filter((m) => m.type === 'accept')).toHaveLength(3)
    expect(got.filter((m) => m.type === 'error' && m.name === 'OverBudgetError')).toHaveLength(3)
    expect(s.executor.runs).toBe(3)
    expect(s.struck.every((x) => x === 'flooder task-offer OverBudgetError')).toBe(true)
  })
})
