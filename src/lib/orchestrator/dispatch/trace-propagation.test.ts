import { describe, expect, it, vi } from 'vitest'
import { MemoryTaskNetwork } from './memory-task-transport.ts'
import { createOrchestrator } from '../index.ts'
import { donorService } from '../donor/index.ts'
import { agent, catalogOf, delay, fnExecutor, peer } from '../test-fixtures.ts'
import { loadIdentity, parseTraceparent, toOtlp, Tracer, type Span } from '../../core/index.ts'
import type { TaskTransport } from './task-transport.ts'
import { parseTaskMessage } from './task-protocol.ts'

const upper = agent('upper', ['text-summarization'], 0.1)
const hash = agent('hasher', ['hashing'], 0.02)
const catalog = catalogOf([upper, hash])
const upperFn = async (i: unknown) => {
  await delay(2)
  return { summary: String(i).toUpperCase() }
}
const hashFn = async (i: unknown) => ({ hash: `h(${JSON.stringify(i)})` })

/** A mesh where donor-a has only `upper` and donor-b only `hasher`: a two-step task runs on both (s2 tried on donor-a first, which declines). */
async function mesh(opts: { tamper?: (m: Record<string, unknown>) => void; untracedDonor?: boolean } = {}) {
  const net = new MemoryTaskNetwork()
  const tracers = new Map<string, Tracer>()
  for (const [id, fns] of [
    ['donor-a', { [upper.id]: upperFn }],
    ['donor-b', { [hash.id]: hashFn }]
  ] as const) {
    const t = net.transport(id)
    await t.start()
    const tracer = new Tracer({ peer: id, identity: await loadIdentity() })
    tracers.set(id, tracer)
    let transport: TaskTransport = t
    if (id === 'donor-b' && opts.tamper != null) {
      const tamper = opts.tamper
      // donor-b alters its signed spans on the way out (after signing).
      const send = (to: string, m: Record<string, unknown>, o?: { signal?: AbortSignal }) => {
        if (m.spans == null) return t.send(to, m as never, o)
        const copy = JSON.parse(JSON.stringify(m))
        tamper(copy)
        return t.send(to, copy, o)
      }
      transport = new Proxy(t, {
        get: (target, p) => {
          if (p === 'send') return send
          const value = Reflect.get(target, p, target)
          return typeof value === 'function' ? value.bind(target) : value
        }
      })
    }
    const untraced = id === 'donor-b' && opts.untracedDonor === true
    await donorService({ leaseMs: 200 })({ transport, executor: fnExecutor(fns, 2), ...(untraced ? {} : { tracer }) }).start()
  }
  const submitter = new Tracer({ peer: 'submitter' })
  const peers = [peer('donor-a', { rttMs: 10 }), peer('donor-b', { rttMs: 11 })]
  const orch = createOrchestrator(
    { catalog, peers: { peers: () => peers }, transport: net.transport('submitter'), tracer: submitter },
    { dispatcher: { offerTimeoutMs: 300 } }
  )
  await orch.start()
  return { net, orch, submitter, tracers }
}

const fast = { retry_policy: { max_attempts: 4, backoff_ms: 5, backoff_multiplier: 2 } }

async function runTwoSteps(m: Awaited<ReturnType<typeof mesh>>) {
  const h = m.orch.submit({ description: 'Summarize this, then hash it', input: 'hello mesh', preferences: fast })
  const r = await h.done
  expect(r.steps.map((s) => [s.id, s.peer])).toEqual([
    ['s1', 'donor-a'],
    ['s2', 'donor-b']
  ])
  // The dispatcher started the run's trace (nobody bound one before) and keeps it named by the task id.
  const root = m.submitter.scope(h.id)
  if (root == null) throw new Error(`no trace bound for ${h.id}`)
  return { h, r, traceId: root.traceId }
}
const children = (spans: Span[], parent: Span) => spans.filter((s) => s.parentSpanId === parent.spanId)

describe('traces across peers (in-memory task transport)', () => {
  it('one trace holds the submitter spans and both donors signed spans, with correct parents', async () => {
    const m = await mesh()
    const seen: string[] = []
    const { traceId } = await runTwoSteps(m)
    await vi.waitFor(() => expect(m.submitter.stats.foreignAccepted).toBe(2))
    const spans = m.submitter.spans(traceId)
    for (const s of spans) seen.push(`${s.peer}:${s.name}`)
    // Every span is in this trace and hangs under a span of it, but the root.
    const ids = new Set(spans.map((s) => s.spanId))
    expect(spans.every((s) => s.traceId === traceId)).toBe(true)
    const roots = spans.filter((s) => s.parentSpanId == null)
    expect(roots.map((s) => [s.name, s.peer])).toEqual([['run', 'submitter']])
    expect(spans.filter((s) => s.parentSpanId != null && !ids.has(s.parentSpanId))).toEqual([])
    const run = roots[0]
    const steps = children(spans, run).filter((s) => s.name === 'step')
    expect(steps.map((s) => s.attributes['step.id'])).toEqual(['s1', 's2'])
    const [s1, s2] = steps
    // s1: routed, dispatched once to donor-a; s2: donor-a declines (no agent), donor-b runs it.
    const a1 = children(spans, s1).filter((s) => s.name === 'dispatch.attempt')
    const a2 = children(spans, s2).filter((s) => s.name === 'dispatch.attempt')
    expect(a1.map((s) => [s.attributes['peer.id'], s.status])).toEqual([['donor-a', 'ok']])
    expect(a2.map((s) => [s.attributes['peer.id'], s.status])).toEqual([
      ['donor-a', 'error'],
      ['donor-b', 'ok']
    ])
    expect(children(spans, s2).filter((s) => s.name === 'route').length).toBeGreaterThanOrEqual(2)
    // Each donor's spans hang under the attempt that reached it, and came from that donor.
    for (const [attempt, donor] of [
      [a1[0], 'donor-a'],
      [a2[1], 'donor-b']
    ] as const) {
      const [step] = children(spans, attempt)
      expect(step).toMatchObject({ name: 'donor.step', peer: donor, kind: 'server', status: 'ok' })
      expect(children(spans, step).map((s) => s.name)).toEqual(['donor.accept', 'donor.queue', 'donor.run', 'donor.answer'])
      expect(children(spans, step).every((s) => s.peer === donor && s.endMs >= s.startMs)).toBe(true)
      expect(step.attributes['zerostate.signer']).toMatch(/^ed25519:/)
    }
    // The declined attempt got no donor spans.
    expect(children(spans, a2[0])).toEqual([])
    // The offers carried each attempt's own traceparent.
    const offers = m.net.log.filter((x) => x.message.type === 'offer').map((x) => parseTraceparent((x.message as { traceparent?: string }).traceparent))
    expect(offers).toEqual([...a1, ...a2].map((a) => ({ traceId, spanId: a.spanId })))
    // The OTLP export has exactly these spans, one resource per peer.
    const otlp = toOtlp(spans)
    expect(otlp.resourceSpans.map((r) => r.scopeSpans[0].spans.length).reduce((a, b) => a + b)).toBe(spans.length)
    expect(otlp.resourceSpans).toHaveLength(3)
    expect(seen.length).toBe(spans.length)
    await m.orch.stop()
  })

  it('drops and counts a donor whose spans were altered after signing; the task still succeeds', async () => {
    const m = await mesh({
      tamper: (msg) => {
        const b = msg.spans as { spans: Array<{ name: string }> }
        b.spans[0].name = 'donor.innocent'
      }
    })
    const { traceId } = await runTwoSteps(m)
    await vi.waitFor(() => expect(m.submitter.stats.foreignAccepted + m.submitter.stats.foreignRejected).toBe(2))
    expect(m.submitter.stats).toMatchObject({ foreignAccepted: 1, foreignRejected: 1 })
    const peersSeen = new Set(m.submitter.spans(traceId).map((s) => s.peer))
    expect([...peersSeen].sort()).toEqual(['donor-a', 'submitter'])
    await m.orch.stop()
  })

  it('a donor without tracing answers as before: no spans, the submitter trace is its own', async () => {
    const m = await mesh({ untracedDonor: true })
    const { traceId } = await runTwoSteps(m)
    await vi.waitFor(() => expect(m.submitter.stats.foreignAccepted).toBe(1))
    expect(m.net.log.some((x) => x.from === 'donor-b' && 'spans' in x.message)).toBe(false)
    expect(new Set(m.submitter.spans(traceId).map((s) => s.peer))).toEqual(new Set(['submitter', 'donor-a']))
    await m.orch.stop()
  })

  it('the protocol keeps old messages valid and refuses a bad traceparent', () => {
    const offer = { type: 'offer', rid: 'r1', taskId: 't', stepId: 's', attempt: 1, idempotencyKey: 'k', agentId: 'a'.repeat(64), deadline: 1 }
    expect(parseTaskMessage(offer)).toBeDefined()
    expect(parseTaskMessage({ ...offer, traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01` })).toBeDefined()
    expect(parseTaskMessage({ ...offer, traceparent: 'x'.repeat(5000) })).toBeUndefined()
    expect(parseTaskMessage({ type: 'result', rid: 'r1', output: 1, ms: 1 })).toBeDefined()
    expect(parseTaskMessage({ type: 'result', rid: 'r1', output: 1, ms: 1, spans: { traceId: 'x', key: 'k', sig: 's', spans: [] } })).toBeUndefined()
  })
})
