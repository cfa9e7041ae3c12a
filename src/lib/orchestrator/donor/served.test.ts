import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork, type TaskMessage } from '../dispatch/index.ts'
import { aid, fnExecutor, offerMessage, pollUntil } from '../test-fixtures.ts'
import { donorService, type ServedStep } from './donor-service.ts'

// The donor tells the app of every step it ran and answered (the profile's audit log records
// "task served"): results and errors alike, once per run, never for a step every submitter cancelled.
const offer = (rid: string, agent: string, stepId: string): TaskMessage => offerMessage({ rid, agent, taskId: 'task-1', stepId })

const until = (fn: () => boolean): Promise<void> => pollUntil(fn)

describe('donor served hook', () => {
  it('reports each answered step with its submitter, agent and outcome; a cache hit is not a second serve', async () => {
    const net = new MemoryTaskNetwork()
    const executor = fnExecutor(
      {
        [aid('ok')]: () => 'done',
        [aid('boom')]: () => {
          throw new RangeError('bad input')
        }
      },
      2
    )
    const served: ServedStep[] = []
    const donorT = net.transport('donor')
    const sub = net.transport('submitter')
    const donor = donorService({})({ transport: donorT, executor, served: (s) => served.push(s) })
    await donor.start()
    await donorT.start()
    await sub.start()
    const answers = () => net.log.filter((l) => l.from === 'donor' && l.to === 'submitter').map((l) => l.message.type)

    await sub.send('donor', offer('r1', 'ok', 's1'))
    await until(() => answers().includes('result'))
    await sub.send('donor', offer('r2', 'boom', 's2'))
    await until(() => answers().includes('error'))
    // The same step offered again is answered from the cache: served once.
    await sub.send('donor', offer('r3', 'ok', 's1'))
    await until(() => answers().filter((t) => t === 'result').length === 2)

    expect(served).toEqual([
      { peer: 'submitter', agentId: aid('ok'), taskId: 'task-1', stepId: 's1', outcome: 'result' },
      { peer: 'submitter', agentId: aid('boom'), taskId: 'task-1', stepId: 's2', outcome: expect.stringMatching(/Error$/) }
    ])
    await donor.stop()
  })

  it('a throwing hook does not stop the answer', async () => {
    const net = new MemoryTaskNetwork()
    const executor = fnExecutor({ [aid('ok')]: () => 'done' }, 1)
    const donorT = net.transport('donor')
    const sub = net.transport('submitter')
    const donor = donorService({})({
      transport: donorT,
      executor,
      served: () => {
        throw new Error('audit down')
      }
    })
    await donor.start()
    await donorT.start()
    await sub.start()
    await sub.send('donor', offer('r1', 'ok', 's1'))
    await until(() => net.log.some((l) => l.from === 'donor' && l.message.type === 'result'))
    expect(donor.stats().completed).toBe(1)
    await donor.stop()
  })
})
