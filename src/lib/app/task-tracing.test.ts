import { describe, expect, it } from 'vitest'
import { clearLogs, loadIdentity, logRecords, Tracer } from '../core/index.ts'
import { createOrchestrator, donorService, MemoryTaskNetwork } from '../orchestrator/index.ts'
import { agent, catalogOf, fnExecutor, peer } from '../orchestrator/test-fixtures.ts'
import { taskTracing, UnknownTraceError } from './task-tracing.ts'

const upper = agent('upper', ['text-summarization'], 0.1)
const hash = agent('hasher', ['hashing'], 0.02)

describe('task tracing (app)', () => {
  it('trace(taskId) holds the run, its planning and the donor spans; exportTrace has as many spans', async () => {
    clearLogs()
    const net = new MemoryTaskNetwork()
    const d = net.transport('donor')
    await d.start()
    const fns = { [upper.id]: (i: unknown) => ({ summary: String(i).toUpperCase() }), [hash.id]: (i: unknown) => ({ hash: JSON.stringify(i).length }) }
    await donorService()({ transport: d, executor: fnExecutor(fns), tracer: new Tracer({ peer: 'donor', identity: await loadIdentity() }) }).start()
    const tracer = new Tracer({ peer: 'me' })
    const tracing = taskTracing(tracer)
    const orch = createOrchestrator({ catalog: catalogOf([upper, hash]), peers: { peers: () => [peer('donor')] }, transport: net.transport('me'), tracer })
    await orch.start()
    const h = tracing.track(orch.submit({ description: 'Summarize this, then hash it', input: 'hi' }))
    await h.done
    // Read at once: trace() verifies the donors' spans itself, waiting for seals still on their way.
    const { traceId, spans } = await tracing.trace(h.id)
    expect(tracer.stats.foreignAccepted).toBe(2)
    const root = spans.find((s) => s.parentSpanId == null)!
    expect(root).toMatchObject({ name: 'task.run', peer: 'me', status: 'ok', traceId })
    expect(spans.filter((s) => s.parentSpanId == null)).toHaveLength(1)
    const under = spans.filter((s) => s.parentSpanId === root.spanId).map((s) => s.name)
    expect(under).toEqual(['plan', 'step', 'step'])
    const plan = spans.find((s) => s.name === 'plan')!
    expect(plan.attributes).toMatchObject({ planner: 'deterministic', steps: 2 })
    expect(plan.endMs).toBeLessThanOrEqual(spans.find((s) => s.name === 'step')!.startMs)
    expect(root.endMs).toBeGreaterThanOrEqual(Math.max(...spans.filter((s) => s.peer === 'me').map((s) => s.endMs)))
    expect(spans.filter((s) => s.peer === 'donor' && s.name === 'donor.step')).toHaveLength(2)
    const otlp = (await tracing.exportTrace(h.id)) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: unknown[] }> }> }
    expect(otlp.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans))).toHaveLength(spans.length)
    await expect(tracing.trace('no-such-task')).rejects.toBeInstanceOf(UnknownTraceError)
    // The task's course is logged with its trace: submitted and planned under the run, each step under its step span.
    const records = logRecords((r) => r.taskId === h.id)
    expect(records.map((r) => r.message.replace(h.id, 'T'))).toEqual([
      'task T submitted',
      'task T planned by deterministic: 2 steps',
      expect.stringMatching(/^task T step s1 done by \w+ on donor$/),
      expect.stringMatching(/^task T step s2 done by \w+ on donor$/),
      expect.stringMatching(/^task T done in \d+ ms$/)
    ])
    expect(records.every((r) => r.traceId === traceId && r.module === 'app:task' && r.level === 'info')).toBe(true)
    expect(records[0].spanId).toBe(root.spanId)
    const stepSpans = new Set(spans.filter((s) => s.name === 'step').map((s) => s.spanId))
    // Run-level records hang on the run's span; each step's record on that step's span.
    expect(records.map((r) => (r.spanId === root.spanId ? 'run' : stepSpans.has(r.spanId!) ? 'step' : 'other'))).toEqual(['run', 'run', 'step', 'step', 'run'])
    await orch.stop()
  })

  it('tracing switched off (setObservability) records no span on either peer, logs the task, and switched on traces again', async () => {
    clearLogs()
    const net = new MemoryTaskNetwork()
    const d = net.transport('donor')
    await d.start()
    const donorTracer = new Tracer({ peer: 'donor', identity: await loadIdentity() })
    await donorService()({ transport: d, executor: fnExecutor({ [upper.id]: (i: unknown) => ({ summary: String(i) }) }), tracer: donorTracer }).start()
    const tracer = new Tracer({ peer: 'me' })
    const tracing = taskTracing(tracer)
    const orch = createOrchestrator({ catalog: catalogOf([upper]), peers: { peers: () => [peer('donor')] }, transport: net.transport('me'), tracer })
    await orch.start()
    tracer.enabled = false
    donorTracer.enabled = false
    const off = tracing.track(orch.submit({ description: 'Summarize this', input: 'hi' }))
    await off.done
    expect(tracer.stats.started).toBe(0)
    expect(donorTracer.stats.started).toBe(0)
    // No traceparent went out with the offer, and no spans came back.
    const offers = net.log.filter((e) => e.message.type === 'offer')
    expect(offers.length).toBeGreaterThan(0)
    expect(offers.every((e) => (e.message as { traceparent?: string }).traceparent == null)).toBe(true)
    expect(net.log.some((e) => e.message.type === 'result' && (e.message as { spans?: unknown }).spans != null)).toBe(false)
    await expect(tracing.trace(off.id)).rejects.toBeInstanceOf(UnknownTraceError)
    expect(logRecords((r) => r.taskId === off.id).map((r) => r.message.replace(off.id, 'T'))).toContain('task T submitted')
    // A donor with tracing off records nothing even for a traced offer.
    tracer.enabled = true
    const half = tracing.track(orch.submit({ description: 'Summarize this', input: 'hi' }))
    await half.done
    expect(donorTracer.stats.started).toBe(0)
    expect((await tracing.trace(half.id)).spans.every((s) => s.peer === 'me')).toBe(true)
    donorTracer.enabled = true
    const on = tracing.track(orch.submit({ description: 'Summarize this', input: 'hi' }))
    await on.done
    expect((await tracing.trace(on.id)).spans.filter((s) => s.peer === 'donor').map((s) => s.name)).toContain('donor.step')
    await orch.stop()
  })

  it('a failed task ends its trace in error', async () => {
    const tracer = new Tracer({ peer: 'me' })
    const tracing = taskTracing(tracer)
    const orch = createOrchestrator({ catalog: catalogOf([upper]), peers: { peers: () => [] }, transport: new MemoryTaskNetwork().transport('me'), tracer })
    await orch.start()
    const h = tracing.track(orch.submit({ description: 'Summarize this', input: 'hi' }))
    await expect(h.done).rejects.toThrow()
    const { spans } = await tracing.trace(h.id)
    expect(spans.find((s) => s.name === 'task.run')).toMatchObject({ status: 'error' })
    expect(typeof spans.find((s) => s.name === 'task.run')!.attributes.error).toBe('string')
    await orch.stop()
  })
})
