import { describe, expect, it } from 'vitest'
import { createOrchestrator, donorService, MemoryTaskNetwork, type TaskHandle } from '../orchestrator/index.ts'
import { agent, catalogOf, fnExecutor, peer } from '../orchestrator/test-fixtures.ts'
import { METRIC, agentLabel, appMetrics } from './metrics-wiring.ts'

const upper = agent('upper', ['text-summarization'], 0)
const broken = agent('broken', ['hashing'], 0)

async function setup(enabled = true) {
  const net = new MemoryTaskNetwork()
  const d = net.transport('donor')
  await d.start()
  const fns = {
    [upper.id]: (i: unknown) => ({ summary: String(i).toUpperCase() }),
    [broken.id]: () => {
      throw new Error('always fails')
    }
  }
  await donorService()({ transport: d, executor: fnExecutor(fns, 8) }).start()
  const metered = appMetrics({ enabled })
  const outcomes = { seen: 0, record: () => void outcomes.seen++ }
  const orch = createOrchestrator({
    catalog: catalogOf([upper, broken]),
    peers: { peers: () => [peer('donor', { freeWorkers: 8 })] },
    transport: net.transport('me'),
    outcomes: metered.outcomes(outcomes)
  })
  await orch.start()
  metered.attach({ orchestrator: orch })
  return { orch, metered, outcomes }
}

describe('app metrics (issue 15)', () => {
  it('times submitted tasks by outcome, plan time, step latency per agent and bytes moved; outcomes still reach the next sink', async () => {
    const { orch, metered, outcomes } = await setup()
    for (let i = 0; i < 5; i++) await orch.submit({ description: 'Summarize this', agent: upper.id, input: `text ${i}` }).done
    await orch.submit({ description: 'hash it', agent: broken.id, input: 'x' }).done.catch(() => {})
    const s = metered.snapshot()
    expect(s.counters[`${METRIC.tasks}{status="succeeded"}`]).toBe(5)
    expect(s.counters[`${METRIC.tasks}{status="failed"}`]).toBe(1)
    expect(s.histograms[`${METRIC.taskLatency}{status="succeeded"}`]?.count).toBe(5)
    expect(s.histograms[`${METRIC.taskLatency}{status="failed"}`]?.count).toBe(1)
    // A pinned agent is planned by the 'direct' planner.
    expect(s.histograms[`${METRIC.planTime}{planner="direct"}`]?.count).toBe(6)
    expect(s.histograms[`${METRIC.stepLatency}{agent="${agentLabel(upper.id)}"}`]?.count).toBe(5)
    expect(s.histograms[`${METRIC.stepLatency}{agent="${agentLabel(broken.id)}"}`]?.count).toBeGreaterThanOrEqual(1)
    expect(s.counters[`${METRIC.bytesMoved}{direction="in"}`]).toBeGreaterThan(0)
    expect(s.counters[`${METRIC.bytesMoved}{direction="out"}`]).toBeGreaterThan(0)
    expect(outcomes.seen).toBe(s.counters[`${METRIC.steps}{status="succeeded"}`]! + s.counters[`${METRIC.steps}{status="failed"}`]!)
    const rec = metered.record()
    expect(rec[`${METRIC.taskLatency}{status="succeeded"}.count`]).toBe(5)
    expect(rec[`${METRIC.taskLatency}{status="succeeded"}.p95`]).toBeGreaterThan(0)
    // In flight now: none.
    expect(s.gauges[METRIC.tasksInFlight]).toBe(0)
    await orch.stop()
  })

  it('disabled: tasks run the same and nothing is recorded', async () => {
    const { orch, metered } = await setup(false)
    const r = await orch.submit({ description: 'Summarize this', agent: upper.id, input: 'a' }).done
    expect(r.status).toBe('succeeded')
    const s = metered.snapshot()
    expect(s.counters).toEqual({})
    expect(s.histograms).toEqual({})
    await orch.stop()
  })

  it('verification overhead: time from a step first accepted result to its verified success', async () => {
    const metered = appMetrics()
    const listeners: Record<string, Array<(e: unknown) => void>> = { progress: [], step: [] }
    const done = Promise.withResolvers<{ status: 'succeeded' }>()
    const handle = {
      id: 't1',
      done: done.promise,
      on: (ev: 'progress' | 'step', l: (e: unknown) => void) => {
        listeners[ev]!.push(l)
        return () => {}
      },
      cancel() {}
    } as unknown as TaskHandle
    metered.track(handle)
    const emit = (ev: string, e: unknown) => {
      for (const l of listeners[ev]!) l(e)
    }
    emit('step', { taskId: 't1', stepId: 's1', status: 'dispatched', attempt: 1 })
    const sink = metered.outcomes({ record() {} })
    sink.record({
      taskId: 't1',
      stepId: 's1',
      agentId: upper.id,
      peerId: 'd1',
      capabilities: [],
      attempt: 1,
      success: true,
      durationMs: 3,
      cost: 0,
      inputSize: 10,
      outputSize: 20,
      at: Date.now()
    })
    const t0 = performance.now()
    while (performance.now() - t0 < 5) {
      // the replicas take a moment
    }
    emit('step', { taskId: 't1', stepId: 's1', status: 'succeeded', attempt: 1, verification: { replicas: 2, agreed: 2, peers: [], status: 'verified' } })
    done.resolve({ status: 'succeeded' })
    await done.promise
    await Promise.resolve()
    const h = metered.snapshot().histograms[METRIC.verifyOverhead]
    expect(h?.count).toBe(1)
    expect(h!.sum).toBeGreaterThanOrEqual(5)
  })

  it('queue wait and sandbox runs from the runtime; queue depth, donor slots, peers and connections by transport', async () => {
    const metered = appMetrics()
    let queued = 3
    const runtime = {
      run: async (..._args: never[]) => ({ output: 1, ms: 12, waitMs: 7 }),
      stats: () => ({ workers: 2, busy: 2, queued })
    }
    metered.attach({
      runtime,
      executor: { busy: 6, freeWorkers: () => 10 },
      mesh: {
        peers: () => [{ transport: 'webrtc' }, { transport: 'webrtc' }, { transport: 'circuit' }, { transport: 'websockets', relay: true }]
      }
    })
    await runtime.run()
    const s = metered.snapshot()
    expect(s.histograms[METRIC.queueWait]?.sum).toBe(7)
    expect(s.counters[`${METRIC.sandboxRuns}{status="succeeded"}`]).toBe(1)
    expect(s.gauges[METRIC.queueDepth]).toBe(3)
    queued = 0
    expect(metered.snapshot().gauges[METRIC.queueDepth]).toBe(0)
    expect(s.gauges[METRIC.donorBusy]).toBe(6)
    expect(s.gauges[METRIC.donorSlots]).toBe(16)
    expect(s.gauges[`${METRIC.peers}{transport="webrtc"}`]).toBe(2)
    expect(s.gauges[`${METRIC.peers}{transport="circuit"}`]).toBe(1)
    expect(s.gauges[`${METRIC.peers}{transport="websockets"}`]).toBeUndefined()
  })
})
