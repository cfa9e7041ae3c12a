// The first offer waits for the task's plan to be saved (issue 13's guarantee), but nothing else
// does (issue 14, time to first token): the step is routed and the stream to the chosen donor is
// opened while the journal writes, and the offer goes out once the write has committed.
import { describe, expect, it } from 'vitest'
import { createOrchestrator } from '../index.ts'
import { donorService } from '../donor/index.ts'
import { TaskCancelledError } from '../errors.ts'
import { agent, catalogOf, fnExecutor, peer, pollUntil, streamNetwork } from '../test-fixtures.ts'
import { libp2pTaskTransport } from './libp2p-task-transport.ts'
import type { TaskMessage } from './task-protocol.ts'

const upper = agent('upper', ['text-summarization'], 0)
const catalog = catalogOf([upper])

/** A submitter and one donor on libp2p stream pairs; `durable` is the submitter's plan save. */
async function mesh(durable: (id: string) => Promise<void>) {
  const net = streamNetwork()
  const donorTransport = libp2pTaskTransport()({ host: net.host('donor') })
  await donorTransport.start()
  const seen: TaskMessage[] = []
  donorTransport.onMessage((_from, m) => seen.push(m))
  const executor = fnExecutor({ [upper.id]: (i) => ({ summary: String(i).toUpperCase() }) })
  const donor = donorService({})({ transport: donorTransport, executor })
  await donor.start()
  const routed: string[] = []
  const orch = createOrchestrator({
    catalog,
    peers: {
      peers: () => {
        routed.push('donor')
        return [peer('donor')]
      }
    },
    transport: libp2pTaskTransport()({ host: net.host('submitter') }),
    durable
  })
  await orch.start()
  return {
    net,
    seen,
    routed,
    executor,
    orch,
    stop: async () => {
      await orch.stop()
      await donor.stop()
      await donorTransport.stop()
    }
  }
}

describe('the offer waits for the plan to be saved, routing and the stream do not', () => {
  it('routes and opens the stream to the donor during the save; the offer is sent only once the save resolves', async () => {
    const save = Promise.withResolvers<void>()
    const saving: string[] = []
    const m = await mesh((id) => {
      saving.push(id)
      return save.promise
    })
    const h = m.orch.submit({ description: 'summarize', agent: 'upper', input: 'first token soon' })
    const events: string[] = []
    h.on('step', (e) => events.push(e.status))
    await pollUntil(() => saving.length === 1, 'the plan save to start', 10_000)
    // While the save is under way: the step is routed and the task stream to the donor is open...
    await pollUntil(() => m.net.dials.includes('donor'), 'the stream to the donor to open before the save resolves', 10_000)
    expect(m.routed.length).toBeGreaterThan(0)
    expect(m.net.streams.length).toBe(2)
    // ...but the donor has been sent nothing, and no step is dispatched.
    expect(m.seen).toEqual([])
    expect(events).toEqual([])
    save.resolve()
    const r = await h.done
    expect(r.output).toEqual({ summary: 'FIRST TOKEN SOON' })
    expect(m.seen[0]?.type).toBe('offer')
    // One stream: the offer went on the one opened during the save.
    expect(m.net.dials).toEqual(['donor'])
    expect(events).toEqual(['dispatched', 'accepted', 'succeeded'])
    await m.stop()
  })

  it('a cancel while the save is under way ends the task at once: no offer is sent, nothing runs', async () => {
    const saving: string[] = []
    const m = await mesh((id) => {
      saving.push(id)
      return new Promise<void>(() => {}) // a save that never completes
    })
    const h = m.orch.submit({ description: 'summarize', agent: 'upper', input: 'never offered' })
    await pollUntil(() => m.net.dials.includes('donor'), 'the step to be routed and its stream opened', 10_000)
    h.cancel()
    await expect(h.done).rejects.toBeInstanceOf(TaskCancelledError)
    expect(m.seen).toEqual([])
    expect(m.executor.runs).toBe(0)
    expect(m.orch.tasks()[0].status).toBe('cancelled')
    await m.stop()
  })

  it('a save that fails fails the task before any offer', async () => {
    const m = await mesh(() => Promise.reject(new Error('disk full')))
    const h = m.orch.submit({ description: 'summarize', agent: 'upper', input: 'not saved' })
    await expect(h.done).rejects.toThrow(/disk full/)
    expect(m.seen).toEqual([])
    expect(m.executor.runs).toBe(0)
    await m.stop()
  })
})
