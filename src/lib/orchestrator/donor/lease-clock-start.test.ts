// Issue 14: starting the lease clock costs a tab a few ms (it spawns a worker), so the donor starts it
// after the step's run is under way, not between the offer and the run (the time to a first streamed
// token); the step still gets its lease renewals.
import { describe, expect, it } from 'vitest'
import { donorService } from './donor-service.ts'
import { aid, offerMessage, pollUntil } from '../test-fixtures.ts'
import type { LocalExecutor } from '../components.ts'
import { MemoryTaskNetwork, type TaskMessage } from '../dispatch/index.ts'

describe('the donor lease clock', () => {
  it('starts after the run has begun, and renews the lease', async () => {
    const order: string[] = []
    let finish = (): void => {}
    const executor: LocalExecutor = {
      has: (id) => id === aid('agent'),
      freeWorkers: () => 1,
      async run() {
        order.push('run')
        await new Promise<void>((r) => {
          finish = r
        })
        return { output: 'ok', ms: 1 }
      }
    }
    const ticks: Array<() => void> = []
    const ticker = {
      every(_ms: number, fn: () => void) {
        order.push('clock')
        ticks.push(fn)
        return () => {
          order.push('clock stopped')
        }
      }
    }
    const net = new MemoryTaskNetwork()
    const donor = net.transport('donor')
    const submitter = net.transport('submitter')
    await donor.start()
    await submitter.start()
    const got: TaskMessage[] = []
    submitter.onMessage((_from, m) => got.push(m))
    await donorService({ leaseMs: 300 })({ transport: donor, executor, ticker }).start()
    await submitter.send('donor', offerMessage({ rid: 'r1', agent: 'agent' }))
    await pollUntil(() => order.includes('clock'), 'the lease clock')
    expect(order).toEqual(['run', 'clock'])
    ticks[0]!()
    await pollUntil(() => got.some((m) => m.type === 'lease-renew'), 'a lease renewal')
    finish()
    await pollUntil(() => got.some((m) => m.type === 'result'), 'the result')
    await pollUntil(() => order.includes('clock stopped'), 'the clock stopping')
  })
})
