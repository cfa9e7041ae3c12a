import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { loadIdentity } from '../identity.ts'
import { formatTraceparent, newSpanId, newTraceId, parseTraceparent } from './context.ts'
import { msToUnixNano, toOtlp, type OtlpTraceRequest } from './otlp.ts'
import { Tracer } from './tracer.ts'
import { MAX_WIRE_SPANS, SignedSpansSchema, type SignedSpans } from './wire.ts'

const HEX32 = /^[0-9a-f]{32}$/
const HEX16 = /^[0-9a-f]{16}$/

describe('trace context', () => {
  it('makes W3C ids and round-trips traceparent', () => {
    const ids = new Set<string>()
    for (let i = 0; i < 200; i++) {
      const t = newTraceId()
      const s = newSpanId()
      expect(t).toMatch(HEX32)
      expect(s).toMatch(HEX16)
      ids.add(t)
    }
    expect(ids.size).toBe(200)
    const ctx = { traceId: newTraceId(), spanId: newSpanId() }
    expect(formatTraceparent(ctx)).toBe(`00-${ctx.traceId}-${ctx.spanId}-01`)
    expect(parseTraceparent(formatTraceparent(ctx))).toEqual(ctx)
  })

  it('rejects malformed and all-zero traceparents', () => {
    const t = newTraceId()
    const s = newSpanId()
    for (const bad of [
      undefined,
      '',
      `01-${t}-${s}-01`,
      `00-${t.toUpperCase()}-${s}-01`,
      `00-${t}-${s}`,
      `00-${'0'.repeat(32)}-${s}-01`,
      `00-${t}-${'0'.repeat(16)}-01`,
      `00-${t}x-${s}-01`
    ])
      expect(parseTraceparent(bad)).toBeUndefined()
  })
})

describe('span recording', () => {
  it('records a root and children in one trace, with times and status', async () => {
    const tracer = new Tracer({ peer: 'me' })
    const root = tracer.start('run', undefined, { 'task.id': 't1' })
    const child = tracer.start('step', root, { 'step.id': 's1' })
    await new Promise((r) => setTimeout(r, 2))
    child.end('error', { error: 'boom' })
    root.end()
    root.end('error') // ignored: a span ends once
    const spans = tracer.spans(root.traceId)
    expect(spans.map((s) => [s.name, s.parentSpanId, s.status, s.peer])).toEqual([
      ['run', undefined, 'ok', 'me'],
      ['step', root.spanId, 'error', 'me']
    ])
    expect(child.traceId).toBe(root.traceId)
    expect(spans[1].endMs).toBeGreaterThan(spans[1].startMs)
    expect(spans[0].endMs).toBeGreaterThanOrEqual(spans[1].endMs)
    expect(spans[1].attributes).toEqual({ 'step.id': 's1', error: 'boom' })
    expect(tracer.start('other').traceId).not.toBe(root.traceId)
  })

  it('keeps traces and spans bounded, counting what it drops', () => {
    const tracer = new Tracer({ peer: 'me', maxTraces: 3, maxSpansPerTrace: 4 })
    const first = tracer.start('run')
    for (let i = 0; i < 10; i++) tracer.start('step', first).end()
    expect(tracer.spans(first.traceId)).toHaveLength(4)
    expect(tracer.stats.dropped).toBe(7)
    for (let i = 0; i < 3; i++) tracer.start('run')
    expect(tracer.spans(first.traceId)).toEqual([]) // the oldest trace went
  })

  it('binds scopes to contexts', () => {
    const tracer = new Tracer({ peer: 'me' })
    const root = tracer.start('run')
    tracer.bind('t1', root)
    expect(tracer.scope('t1')).toBe(root)
    tracer.unbind('t1')
    expect(tracer.scope('t1')).toBeUndefined()
  })
})

describe('signed foreign spans', () => {
  async function setup() {
    const submitter = new Tracer({ peer: 'sub' })
    const donor = new Tracer({ peer: 'donor', identity: await loadIdentity() })
    const attempt = submitter.start('dispatch.attempt', submitter.start('run'), {}, 'client')
    const parent = parseTraceparent(attempt.traceparent)!
    const step = donor.start('donor.step', parent, { 'step.id': 's1', big: 'x'.repeat(500), obj: { no: 1 } }, 'server')
    const run = donor.start('donor.run', step)
    run.end('ok', { 'runtime.ms': 3 })
    step.end()
    const bundle = (await donor.seal(attempt.traceId, [step, run]))!
    return { submitter, donor, attempt, step, run, bundle }
  }
  const clone = (b: SignedSpans): SignedSpans => JSON.parse(JSON.stringify(b))

  it('a donor signs its spans; the submitter verifies and stores them under the attempt', async () => {
    const { submitter, attempt, step, bundle } = await setup()
    expect(v.safeParse(SignedSpansSchema, bundle).success).toBe(true)
    // Attributes are clamped to the wire's bounds, objects left out.
    expect((bundle.spans[0].attributes!.big as string).length).toBe(128)
    expect(bundle.spans[0].attributes).not.toHaveProperty('obj')
    expect(await submitter.accept('donor', clone(bundle), bundle.key)).toBeUndefined()
    const spans = submitter.spans(attempt.traceId)
    const mine = spans.filter((s) => s.peer === 'donor')
    expect(mine.map((s) => [s.name, s.parentSpanId, s.kind])).toEqual([
      ['donor.step', attempt.spanId, 'server'],
      ['donor.run', step.spanId, 'internal']
    ])
    expect(mine[0].attributes['zerostate.signer']).toBe(bundle.key)
    expect(submitter.stats).toMatchObject({ foreignAccepted: 1, foreignRejected: 0 })
  })

  it('drops and counts altered, misattributed, replayed, orphaned or foreign-trace spans', async () => {
    const { submitter, attempt, bundle } = await setup()
    const before = submitter.spans(attempt.traceId).length
    const renamed = clone(bundle)
    renamed.spans[1].name = 'donor.nothing-to-see'
    const retimed = clone(bundle)
    retimed.spans[1].endMs += 1000
    const reparented = clone(bundle)
    reparented.spans[0].parentSpanId = submitter.spans(attempt.traceId)[0].spanId
    const otherSigner = clone(bundle)
    otherSigner.key = (await loadIdentity()).publicKey
    expect(await submitter.accept('donor', renamed)).toBe('signature')
    expect(await submitter.accept('donor', retimed)).toBe('signature')
    expect(await submitter.accept('donor', reparented)).toBe('signature')
    expect(await submitter.accept('donor', otherSigner)).toBe('signature')
    // Signed by the donor for itself: another peer cannot pass it off as its own.
    expect(await submitter.accept('mallory', clone(bundle))).toBe('signature')
    // A key other than the one trust knows for that peer.
    expect(await submitter.accept('donor', clone(bundle), otherSigner.key)).toBe('wrong-signer')
    const orphan = clone(bundle)
    orphan.spans = orphan.spans.slice(1) // donor.run's parent is not in the trace any more
    expect(await submitter.accept('donor', orphan)).toBe('orphan')
    const elsewhere = clone(bundle)
    elsewhere.traceId = newTraceId()
    expect(await submitter.accept('donor', elsewhere)).toBe('unknown-trace')
    expect(submitter.spans(attempt.traceId)).toHaveLength(before)
    expect(submitter.stats).toMatchObject({ foreignAccepted: 0, foreignRejected: 8 })
    // The genuine bundle is still accepted once, and not twice (span ids are unique in a trace).
    expect(await submitter.accept('donor', clone(bundle))).toBeUndefined()
    expect(await submitter.accept('donor', clone(bundle))).toBe('duplicate')
  })

  it('bounds a bundle: at most MAX_WIRE_SPANS spans, and the schema refuses more', async () => {
    const donor = new Tracer({ peer: 'donor', identity: await loadIdentity() })
    const root = donor.start('donor.step', { traceId: newTraceId(), spanId: newSpanId() })
    const many = [root, ...Array.from({ length: 40 }, () => donor.start('x', root))]
    const bundle = (await donor.seal(root.traceId, many))!
    expect(bundle.spans).toHaveLength(MAX_WIRE_SPANS)
    expect(JSON.stringify(bundle).length).toBeLessThan(8 * 1024)
    const tooMany = { ...bundle, spans: [...bundle.spans, bundle.spans[0]] }
    expect(v.safeParse(SignedSpansSchema, tooMany).success).toBe(false)
    expect(await new Tracer({ peer: 'x' }).seal(root.traceId, many)).toBeUndefined() // no identity, nothing sent
  })
})

/** The OTLP/JSON required fields (opentelemetry-proto trace/v1, JSON mapping), checked field by field. */
function checkOtlp(req: unknown): string[] {
  const problems: string[] = []
  const r = req as OtlpTraceRequest
  if (!Array.isArray(r.resourceSpans)) return ['resourceSpans is not an array']
  for (const rs of r.resourceSpans) {
    if (!Array.isArray(rs.resource?.attributes)) problems.push('resource.attributes')
    if (!rs.resource.attributes.some((a) => a.key === 'service.name' && typeof (a.value as { stringValue?: string }).stringValue === 'string'))
      problems.push('service.name')
    for (const ss of rs.scopeSpans) {
      if (typeof ss.scope?.name !== 'string') problems.push('scope.name')
      for (const s of ss.spans) {
        if (!HEX32.test(s.traceId) || /^0+$/.test(s.traceId)) problems.push(`traceId ${s.traceId}`)
        if (!HEX16.test(s.spanId)) problems.push(`spanId ${s.spanId}`)
        if (s.parentSpanId != null && !HEX16.test(s.parentSpanId)) problems.push('parentSpanId')
        if (typeof s.name !== 'string' || s.name === '') problems.push('name')
        if (!Number.isInteger(s.kind) || s.kind < 0 || s.kind > 5) problems.push('kind')
        const nano = (x: unknown): boolean => typeof x === 'string' && /^\d+$/.test(x)
        if (!nano(s.startTimeUnixNano) || !nano(s.endTimeUnixNano)) problems.push('times')
        else if (BigInt(s.endTimeUnixNano) < BigInt(s.startTimeUnixNano)) problems.push('end before start')
        if (![0, 1, 2].includes(s.status.code)) problems.push('status.code')
        for (const a of s.attributes) {
          const keys = Object.keys(a.value)
          if (typeof a.key !== 'string' || keys.length !== 1 || !['stringValue', 'intValue', 'doubleValue', 'boolValue'].includes(keys[0]))
            problems.push(`attribute ${a.key}`)
        }
      }
    }
  }
  return problems
}

describe('OTLP/JSON', () => {
  it('converts epoch ms to exact decimal nanoseconds', () => {
    expect(msToUnixNano(1_700_000_000_123)).toBe('1700000000123000000')
    expect(msToUnixNano(1_700_000_000_123.5)).toBe('1700000000123500000')
    expect(msToUnixNano(0)).toBe('0')
  })

  it('is an ExportTraceServiceRequest with every required field, one resource per peer', async () => {
    const submitter = new Tracer({ peer: 'sub' })
    const donor = new Tracer({ peer: 'donor', identity: await loadIdentity() })
    const root = submitter.start('run', undefined, { 'task.id': 't', steps: 2, ratio: 0.5, ok: true, list: ['a'] })
    const attempt = submitter.start('dispatch.attempt', root, {}, 'client')
    const d = donor.start('donor.step', attempt, {}, 'server')
    d.end('error', { error: 'no agent' })
    await submitter.accept('donor', (await donor.seal(root.traceId, [d]))!)
    attempt.end()
    root.end()
    const spans = submitter.spans(root.traceId)
    const req = JSON.parse(JSON.stringify(toOtlp(spans)))
    expect(checkOtlp(req)).toEqual([])
    expect(req.resourceSpans).toHaveLength(2)
    const all = req.resourceSpans.flatMap((rs: OtlpTraceRequest['resourceSpans'][0]) => rs.scopeSpans.flatMap((ss) => ss.spans))
    expect(all).toHaveLength(spans.length)
    const byName = Object.fromEntries(all.map((s: { name: string }) => [s.name, s]))
    expect(byName.run.parentSpanId).toBeUndefined()
    expect(byName['dispatch.attempt']).toMatchObject({ kind: 3, parentSpanId: root.spanId, status: { code: 1 } })
    expect(byName['donor.step']).toMatchObject({ kind: 2, parentSpanId: attempt.spanId, status: { code: 2, message: 'no agent' } })
    expect(byName.run.attributes).toEqual([
      { key: 'task.id', value: { stringValue: 't' } },
      { key: 'steps', value: { intValue: '2' } },
      { key: 'ratio', value: { doubleValue: 0.5 } },
      { key: 'ok', value: { boolValue: true } },
      { key: 'list', value: { stringValue: '["a"]' } }
    ])
    const donorResource = req.resourceSpans.find((rs: OtlpTraceRequest['resourceSpans'][0]) =>
      rs.resource.attributes.some((a) => a.key === 'zerostate.peer' && (a.value as { stringValue: string }).stringValue === 'donor')
    )
    expect(donorResource.scopeSpans[0].spans.map((s: { name: string }) => s.name)).toEqual(['donor.step'])
    // The checker itself catches a broken span.
    all[0].traceId = 'nope'
    all[1].startTimeUnixNano = 12
    expect(checkOtlp(req).length).toBeGreaterThanOrEqual(2)
  })
})
