import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from './memory-task-transport.ts'
import { createOrchestrator } from '../index.ts'
import { donorService } from '../donor/index.ts'
import { agent, catalogOf, delay, fnExecutor, peer } from '../test-fixtures.ts'
import type { StepEvent } from './dispatcher.ts'

const hash = agent('hasher', ['hashing'], 0.02)

describe('step events carry the route that ran (issue 10 item 7)', () => {
  it('after a re-dispatch the reasoning and the breakdown are the final route’s, and the succeeded event has no error', async () => {
    const net = new MemoryTaskNetwork()
    for (const [id, ms] of [
      ['doomed', 300],
      ['healthy', 20]
    ] as const) {
      const t = net.transport(id)
      await t.start()
      const ex = fnExecutor(
        {
          [hash.id]: async (i: unknown) => {
            await delay(ms)
            return { hash: `h(${String(i)})` }
          }
        },
        2
      )
      await donorService({ leaseMs: 200 })({ transport: t, executor: ex }).start()
    }
    const orch = createOrchestrator(
      {
        catalog: catalogOf([hash]),
        peers: { peers: () => [peer('doomed', { rttMs: 10, freeWorkers: 2 }), peer('healthy', { rttMs: 11, freeWorkers: 2 })] },
        transport: net.transport('submitter')
      },
      { dispatcher: { offerTimeoutMs: 300 } }
    )
    await orch.start()
    const h = orch.submit({
      description: 'hash it',
      input: 'x',
      preferences: { strategy: 'speed', retry_policy: { max_attempts: 4, backoff_ms: 5, backoff_multiplier: 2 } }
    })
    const events: StepEvent[] = []
    h.on('step', (e) => {
      events.push(e)
      if (e.status === 'accepted' && e.peer === 'doomed')
        setTimeout(() => {
          net.kill('doomed')
        }, 20)
    })
    const r = await h.done
    expect(r.steps[0].peer).toBe('healthy')
    const first = events.find((e) => e.status === 'dispatched' && e.peer === 'doomed')!
    expect(first.reasoning).toContain('doomed')
    expect(first.route).toMatchObject({ strategy: 'speed', rank: 1, eligibleAgents: 1, considered: 1 })
    expect(first.route!.pairs).toBe(2)
    const ok = events.find((e) => e.status === 'succeeded')!
    expect(ok.peer).toBe('healthy')
    expect(ok.reasoning).toContain('heal')
    expect(ok.reasoning).not.toContain('doomed')
    expect(ok.route).toMatchObject({ rank: 2, pairs: 2 })
    expect(Object.keys(ok.route!.criteria).sort()).toEqual(['cost', 'load', 'quality', 'region', 'reputation', 'specialization', 'speed'])
    expect(ok.route!.criteria.speed).toBeLessThan(first.route!.criteria.speed)
    expect(ok.error).toBeUndefined()
    await orch.stop()
  })
})
