/**
 * Exactly once under load (issue 16): a step must never run on two donors. At 100 simulated
 * peers two steps ran twice: the submitter's lease timer fired while its event loop lagged,
 * before the renewals already sent to it were read, so the step went to a second donor while
 * the first still ran it, and the first one's result committed late.
 */
import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from './memory-task-transport.ts'
import { createOrchestrator } from '../index.ts'
import { donorService } from '../donor/index.ts'
import { agent, catalogOf, delay, fnExecutor, peer } from '../test-fixtures.ts'

const hash = agent('hasher', ['hashing'], 0.02)
const catalog = catalogOf([hash])

/** Donors 'a' (preferred: the lower RTT) and 'b', each running the hash agent in `ms`. */
async function twoDonors(ms: { a: number; b: number }, lease: { leaseMs: number; renewEveryMs: number }) {
  const net = new MemoryTaskNetwork()
  const runs = { a: 0, b: 0 }
  const services = new Map<string, ReturnType<ReturnType<typeof donorService>>>()
  for (const id of ['a', 'b'] as const) {
    const t = net.transport(id)
    await t.start()
    const ex = fnExecutor(
      {
        [hash.id]: async (i: unknown) => {
          runs[id]++
          await delay(ms[id])
          return { hash: `h(${String(i)})` }
        }
      },
      2
    )
    const svc = donorService(lease)({ transport: t, executor: ex, page: null })
    await svc.start()
    services.set(id, svc)
  }
  const peers = [peer('a', { rttMs: 10, freeWorkers: 2 }), peer('b', { rttMs: 40, freeWorkers: 2 })]
  const orch = createOrchestrator({ catalog, peers: { peers: () => peers }, transport: net.transport('submitter') }, { dispatcher: { offerTimeoutMs: 1000 } })
  await orch.start()
  return { net, orch, runs, services }
}

const policy = { strategy: 'speed' as const, retry_policy: { max_attempts: 4, backoff_ms: 5, backoff_multiplier: 2 } }

describe('fencing: a step never runs on two donors', () => {
  it('a lease timer that fires while this tab lagged waits for the renewals already sent: the step stays on its donor', async () => {
    const { net, orch, runs, services } = await twoDonors({ a: 600, b: 10 }, { leaseMs: 300, renewEveryMs: 100 })
    // a renews once (~100 ms after accepting), its renewal on the way for 250 ms: it lands ~50 ms
    // after the lease's end, while this tab's event loop is stalled from 250 to 450 ms (a busy
    // thread). Read in time it would have kept the lease; the later ones are lost.
    let renewals = 0
    net.faults.drop = (from, _to, m) => from === 'a' && m.type === 'lease-renew' && renewals++ > 0
    net.faults.delayMs = (from, _to, m) => (from === 'a' && m.type === 'lease-renew' ? 250 : 0)
    const h = orch.submit({ description: 'hash it', input: 'x', preferences: policy })
    h.on('step', (e) => {
      if (e.status !== 'accepted' || e.peer !== 'a') return
      setTimeout(() => {
        const until = performance.now() + 200
        while (performance.now() < until) {
          /* this tab is busy */
        }
      }, 250)
    })
    const r = await h.done
    expect(r.steps[0]?.peer).toBe('a')
    expect(orch.stats()).toMatchObject({ leasesLost: 0, committed: 1 })
    expect(orch.stats().leasesGraced).toBeGreaterThanOrEqual(1)
    expect(runs).toEqual({ a: 1, b: 0 })
    expect(services.get('b')!.stats().accepted).toBe(0)
  })

  it('an offer timer that fires while this tab lagged waits for the answer already sent: the step is not withdrawn and runs once', async () => {
    const { net, orch, runs, services } = await twoDonors({ a: 20, b: 10 }, { leaseMs: 300, renewEveryMs: 100 })
    // This tab stalls 1.2 s (over the 1 s offer timeout) right after sending the offer to a:
    // a's accept can only be read after the timer is due.
    let stalled = false
    net.faults.delayMs = (from, to, m) => {
      if (from === 'submitter' && to === 'a' && m.type === 'offer' && !stalled) {
        stalled = true
        const until = performance.now() + 1200
        while (performance.now() < until) {
          /* this tab is busy */
        }
      }
      return 0
    }
    const r = await orch.submit({ description: 'hash it', input: 'z', preferences: policy }).done
    expect(stalled).toBe(true)
    expect(r.steps[0]).toMatchObject({ peer: 'a', output: { hash: 'h(z)' } })
    expect(orch.stats()).toMatchObject({ offersWithdrawn: 0, committed: 1 })
    expect(orch.stats().offersGraced).toBe(1)
    expect(runs).toEqual({ a: 1, b: 0 })
    expect(services.get('b')!.stats().accepted).toBe(0)
  })

  it('a lease that lapsed is withdrawn when the step goes to another donor: that donor stops, answers nothing, and runs are one', async () => {
    const { net, orch, runs, services } = await twoDonors({ a: 500, b: 10 }, { leaseMs: 100, renewEveryMs: 30 })
    // a's renewals are lost: its lease lapses while it still runs the step.
    net.faults.drop = (from, _to, m) => from === 'a' && m.type === 'lease-renew'
    const r = await orch.submit({ description: 'hash it', input: 'y', preferences: policy }).done
    expect(r.steps[0]).toMatchObject({ peer: 'b', output: { hash: 'h(y)' } })
    expect(orch.stats()).toMatchObject({ leasesLost: 1, leasesSuperseded: 1, committed: 1 })
    // The claim at a is withdrawn before b is offered the step, not once b committed it: the two
    // never run it at once (had a finished meanwhile, both would have run it to the end).
    const withdrawn = net.log.findIndex((l) => l.to === 'a' && l.message.type === 'cancel')
    const offeredB = net.log.findIndex((l) => l.to === 'b' && l.message.type === 'offer')
    expect(withdrawn).toBeGreaterThanOrEqual(0)
    expect(withdrawn).toBeLessThan(offeredB)
    // a started the step, was told to stop when b took it, and neither completed nor answered it.
    await expect.poll(() => services.get('a')!.stats().cancelled, { timeout: 5000 }).toBe(1)
    expect(services.get('a')!.stats().completed).toBe(0)
    expect(services.get('b')!.stats().completed).toBe(1)
    expect(runs).toEqual({ a: 1, b: 1 })
    expect(net.log.filter((l) => l.from === 'a' && l.message.type === 'result')).toHaveLength(0)
  })

  it('a result of a superseded claim that arrives anyway is dropped and counted, never committed', async () => {
    const { net, orch, services } = await twoDonors({ a: 300, b: 600 }, { leaseMs: 100, renewEveryMs: 30 })
    // a's renewals and the cancel that withdraws its claim are lost: a finishes and answers first.
    net.faults.drop = (from, to, m) => (from === 'a' && m.type === 'lease-renew') || (to === 'a' && m.type === 'cancel')
    const r = await orch.submit({ description: 'hash it', input: 'z', preferences: policy }).done
    // b's result is the one committed, though a's arrived first.
    expect(r.steps[0]?.peer).toBe('b')
    expect(services.get('a')!.stats().completed).toBe(1)
    expect(net.log.filter((l) => l.from === 'a' && l.message.type === 'result')).toHaveLength(1)
    expect(orch.stats()).toMatchObject({ leasesSuperseded: 1, supersededResults: 1, committed: 1 })
  })
})
