import * as v from 'valibot'
import { describe, expect, it, vi } from 'vitest'
import { loadIdentity } from '../identity.ts'
import { formatTraceparent, newSpanId, newTraceId, parseTraceparent } from './context.ts'
import { msToUnixNano, toOtlp, type OtlpTraceRequest } from './otlp.ts'
import { Tracer } from './tracer.ts'
import { ForeignSpans, SEAL_WAIT_MS } from './foreign.ts'
import { bundleDigest, MAX_WIRE_SPANS, SpanBundleSchema, SpanEnvelopeSchema, SpanSealSchema, type SpanBundle, type SpanSeal } from './wire.ts'

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
  /** A donor's spans of one step under a submitter's attempt; the seal is captured instead of sent. */
  async function setup(opts: { sealDelayMs?: number } = {}) {
    const submitter = new Tracer({ peer: 'sub' })
    const donor = new Tracer({ peer: 'donor', identity: await loadIdentity(), sealDelayMs: opts.sealDelayMs ?? 5 })
    const attempt = submitter.start('dispatch.attempt', submitter.start('run'), {}, 'client')
    const parent = parseTraceparent(attempt.traceparent)!
    const step = donor.start('donor.step', parent, { 'step.id': 's1', big: 'x'.repeat(500), obj: { no: 1 } }, 'server')
    const run = donor.start('donor.run', step)
    run.end('ok', { 'runtime.ms': 3 })
    step.end()
    const sealed = Promise.withResolvers<SpanSeal>()
    const bundle = donor.seal(attempt.traceId, [step, run], 'sub', sealed.resolve)!
    const seal = await sealed.promise
    return { submitter, donor, attempt, step, run, bundle, seal }
  }
  /** A copy as it arrives: through JSON and the protocol's schema, as the task transport does. */
  const wire = <T>(schema: v.GenericSchema<unknown, T>, x: unknown): T => v.parse(schema, JSON.parse(JSON.stringify(x)))
  const clone = (b: SpanBundle): SpanBundle => wire(SpanBundleSchema, b)

  it('a donor sends its spans with the result and seals them after; the submitter verifies on read and stores them under the attempt', async () => {
    const { submitter, attempt, step, bundle, seal } = await setup()
    expect(v.safeParse(SpanBundleSchema, bundle).success).toBe(true)
    expect(v.safeParse(SpanSealSchema, seal).success).toBe(true)
    expect(seal.digests).toEqual([bundleDigest('donor', bundle)])
    // Attributes are clamped to the wire's bounds, objects left out.
    expect((bundle.spans[0].attributes!.big as string).length).toBe(128)
    expect(bundle.spans[0].attributes).not.toHaveProperty('obj')
    expect(submitter.receive('donor', clone(bundle), seal.key)).toBeUndefined()
    // Nothing is verified on receipt: the spans wait for their seal.
    expect(submitter.pending(attempt.traceId)).toBe(1)
    expect(submitter.spans(attempt.traceId).some((s) => s.peer === 'donor')).toBe(false)
    submitter.receiveSeal('donor', wire(SpanSealSchema, seal))
    await submitter.settle(attempt.traceId)
    expect(submitter.pending()).toBe(0)
    const mine = submitter.spans(attempt.traceId).filter((s) => s.peer === 'donor')
    expect(mine.map((s) => [s.name, s.parentSpanId, s.kind])).toEqual([
      ['donor.step', attempt.spanId, 'server'],
      ['donor.run', step.spanId, 'internal']
    ])
    expect(mine[0].attributes['zerostate.signer']).toBe(seal.key)
    expect(submitter.stats).toMatchObject({ foreignAccepted: 1, foreignRejected: 0 })
  })

  it('one seal signs every bundle sent to a submitter within the delay', async () => {
    const submitter = new Tracer({ peer: 'sub' })
    const donor = new Tracer({ peer: 'donor', identity: await loadIdentity(), sealDelayMs: 20 })
    const root = submitter.start('run')
    const seals: SpanSeal[] = []
    const bundles = Array.from({ length: 5 }, () => {
      const s = donor.start('donor.step', root)
      s.end()
      return donor.seal(root.traceId, [s], 'sub', (x) => seals.push(x))!
    })
    expect(bundles.map((b) => b.seq - bundles[0].seq)).toEqual([0, 1, 2, 3, 4])
    await vi.waitFor(() => expect(seals).toHaveLength(1))
    expect(seals[0]).toMatchObject({ first: bundles[0].seq })
    expect(seals[0].digests).toHaveLength(5)
    expect(donor.stats.seals).toBe(1)
    for (const b of bundles) submitter.receive('donor', clone(b))
    submitter.receiveSeal('donor', seals[0])
    await submitter.settle(root.traceId)
    expect(submitter.stats).toMatchObject({ foreignAccepted: 5, foreignRejected: 0 })
  })

  it('verifies in the background by slices: a budget stops a pass with bundles left, the next slices finish them in order', async () => {
    const host = { accepted: 0, rejected: [] as string[], adopted: [] as number[] }
    const foreign = new ForeignSpans({
      self: () => 'sub',
      adopt: (_from, bundle) => {
        host.adopted.push(bundle.seq)
        return undefined
      },
      accepted: () => {
        host.accepted++
      },
      rejected: (why) => {
        host.rejected.push(why)
      }
    })
    const donor = new Tracer({ peer: 'donor', identity: await loadIdentity(), sealDelayMs: 1e6 })
    const root = new Tracer({ peer: 'sub' }).start('run')
    const seals: SpanSeal[] = []
    const bundles = Array.from({ length: 40 }, () => {
      const s = donor.start('donor.step', root)
      s.end()
      return donor.seal(root.traceId, [s], 'sub', (x) => seals.push(x))!
    })
    donor.flushSeals()
    await vi.waitFor(() => expect(seals).toHaveLength(1))
    for (const b of bundles) expect(foreign.add('donor', clone(b), undefined)).toBeUndefined()
    // No background slice yet: the seal is added below, after the settles we drive by hand.
    const more = await foreign.settle(undefined, 0, 0)
    expect(more).toBe(true)
    expect(foreign.pending()).toBe(40)
    foreign.addSeal('donor', seals[0] as SpanSeal)
    let slices = 0
    while (await foreign.settle(undefined, 0, 0.05)) slices++
    expect(slices).toBeGreaterThan(0)
    expect(foreign.pending()).toBe(0)
    expect(host.rejected).toEqual([])
    expect(host.adopted).toEqual(bundles.map((b) => b.seq))
  })

  it('drops and counts altered, misattributed, replayed, orphaned, unsealed or foreign-trace spans when read', async () => {
    const { submitter, attempt, bundle, seal } = await setup()
    const before = submitter.spans(attempt.traceId).length
    const renamed = clone(bundle)
    renamed.spans[1].name = 'donor.nothing-to-see'
    const retimed = clone(bundle)
    retimed.spans[1].endMs += 1000
    const reparented = clone(bundle)
    reparented.spans[0].parentSpanId = submitter.spans(attempt.traceId)[0].spanId
    for (const forged of [renamed, retimed, reparented]) expect(submitter.receive('donor', forged)).toBeUndefined()
    // Signed by the donor for itself: another peer cannot pass it off as its own.
    submitter.receive('mallory', clone(bundle))
    submitter.receiveSeal('mallory', seal)
    // A seal by a key other than the one trust knows for that peer.
    const other = await loadIdentity()
    submitter.receive('donor', clone(bundle), other.publicKey)
    submitter.receiveSeal('donor', seal)
    await submitter.settle(attempt.traceId)
    expect(submitter.spans(attempt.traceId)).toHaveLength(before)
    expect(submitter.stats.rejectedBy).toEqual({ signature: 4, 'wrong-signer': 1 })
    // A seal whose signature was made by another key (its key field swapped) or over other digests.
    const swapped = { ...seal, key: other.publicKey }
    const reDigested = { ...seal, first: seal.first + 1000, digests: [bundleDigest('donor', { ...bundle, seq: bundle.seq + 1000 })] }
    submitter.receive('eve', clone(bundle))
    submitter.receiveSeal('eve', swapped)
    submitter.receive('donor', { ...clone(bundle), seq: bundle.seq + 1000 })
    submitter.receiveSeal('donor', reDigested)
    await submitter.settle(attempt.traceId)
    expect(submitter.stats.rejectedBy).toEqual({ signature: 6, 'wrong-signer': 1 })
    // Orphaned and foreign-trace bundles, correctly sealed.
    const donor2 = new Tracer({ peer: 'donor2', identity: await loadIdentity(), sealDelayMs: 1 })
    const lost = donor2.start('donor.run', { traceId: attempt.traceId, spanId: newSpanId() })
    lost.end()
    const orphanSeal = Promise.withResolvers<SpanSeal>()
    const orphan = donor2.seal(attempt.traceId, [lost], 'sub', orphanSeal.resolve)!
    submitter.receive('donor2', clone(orphan))
    submitter.receiveSeal('donor2', await orphanSeal.promise)
    await submitter.settle(attempt.traceId)
    expect(submitter.stats.rejectedBy.orphan).toBe(1)
    // Genuinely sealed but not spans as the schema has them (checked only once verified): dropped as malformed.
    const bad = donor2.start('donor.run', attempt)
    bad.span.name = ''
    bad.end()
    const badSeal = Promise.withResolvers<SpanSeal>()
    const badBundle = donor2.seal(attempt.traceId, [bad], 'sub', badSeal.resolve)!
    expect(v.safeParse(SpanEnvelopeSchema, badBundle).success).toBe(true) // passes the protocol's outline check
    submitter.receive('donor2', badBundle)
    submitter.receiveSeal('donor2', await badSeal.promise)
    await submitter.settle(attempt.traceId)
    expect(submitter.stats.rejectedBy.malformed).toBe(1)
    expect(submitter.receive('donor', { ...clone(bundle), traceId: newTraceId() })).toBe('unknown-trace')
    expect(submitter.spans(attempt.traceId)).toHaveLength(before)
    expect(submitter.stats).toMatchObject({ foreignAccepted: 0, foreignRejected: 10 })
    // The genuine bundle is still accepted once, and not twice (span ids are unique in a trace).
    submitter.receive('donor', clone(bundle))
    submitter.receive('donor', clone(bundle))
    await submitter.settle(attempt.traceId)
    expect(submitter.stats).toMatchObject({ foreignAccepted: 1 })
    expect(submitter.stats.rejectedBy.duplicate).toBe(1)
  })

  it('a read waits a bounded time for a seal on its way; a bundle never sealed is dropped after SEAL_WAIT_MS', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      const { submitter, attempt, bundle, seal } = await setup()
      submitter.receive('donor', clone(bundle))
      const read = submitter.settle(attempt.traceId, 2000)
      setTimeout(() => submitter.receiveSeal('donor', seal), 5)
      await read
      expect(submitter.stats.foreignAccepted).toBe(1)
      const late = await setup()
      late.submitter.receive('donor', clone(late.bundle))
      await late.submitter.settle(late.attempt.traceId, 0)
      expect(late.submitter.pending()).toBe(1) // not yet given up
      vi.setSystemTime(Date.now() + SEAL_WAIT_MS + 1)
      await late.submitter.settle(late.attempt.traceId, 0)
      expect(late.submitter.pending()).toBe(0)
      expect(late.submitter.stats.rejectedBy).toEqual({ unsealed: 1 })
    } finally {
      vi.useRealTimers()
    }
  })

  it('bounds a bundle: at most MAX_WIRE_SPANS spans, and the schema refuses more', async () => {
    const donor = new Tracer({ peer: 'donor', identity: await loadIdentity() })
    const root = donor.start('donor.step', { traceId: newTraceId(), spanId: newSpanId() })
    const many = [root, ...Array.from({ length: 40 }, () => donor.start('x', root))]
    const bundle = donor.seal(root.traceId, many, 'sub', () => {})!
    expect(bundle.spans).toHaveLength(MAX_WIRE_SPANS)
    expect(JSON.stringify(bundle).length).toBeLessThan(8 * 1024)
    const tooMany = { ...bundle, spans: [...bundle.spans, bundle.spans[0]] }
    expect(v.safeParse(SpanBundleSchema, tooMany).success).toBe(false)
    expect(new Tracer({ peer: 'x' }).seal(root.traceId, many, 'sub', () => {})).toBeUndefined() // no identity, nothing sent
    donor.flushSeals()
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
    const sealed = Promise.withResolvers<SpanSeal>()
    submitter.receive('donor', donor.seal(root.traceId, [d], 'sub', sealed.resolve)!)
    submitter.receiveSeal('donor', await sealed.promise)
    await submitter.settle()
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
