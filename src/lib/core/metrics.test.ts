import { describe, expect, it } from 'vitest'
import { Counters, MAX_SERIES, MetricsRegistry, seriesKey } from './metrics.ts'

describe('Counters (the existing contract)', () => {
  it('keeps prefixed counters and gauges in a plain record', () => {
    const c = new Counters('mesh')
    c.inc('dials')
    c.inc('dials', 2)
    c.set('peers', 4)
    expect(c.toRecord()).toEqual({ 'mesh.dials': 3, 'mesh.peers': 4 })
    expect(c.get('missing')).toBe(0)
  })
})

describe('MetricsRegistry', () => {
  it('counters, gauges and histograms by label set, named the Prometheus way', () => {
    const r = new MetricsRegistry()
    const tasks = r.counter('tasks_total', { labelNames: ['status'] })
    tasks.inc(1, { status: 'succeeded' })
    tasks.inc(2, { status: 'succeeded' })
    tasks.inc(1, { status: 'failed' })
    tasks.inc(-5, { status: 'failed' }) // counters never go down
    const depth = r.gauge('queue_depth')
    depth.set(3)
    depth.dec()
    const lat = r.histogram('step_latency_ms', { labelNames: ['agent'], buckets: [10, 100] })
    lat.observe(5, { agent: 'echo' })
    lat.observe(50, { agent: 'echo' })
    lat.observe(500, { agent: 'hash' })
    const s = r.snapshot()
    expect(s.counters).toEqual({ 'tasks_total{status="succeeded"}': 3, 'tasks_total{status="failed"}': 1 })
    expect(s.gauges).toEqual({ queue_depth: 2 })
    expect(s.histograms['step_latency_ms{agent="echo"}']?.counts).toEqual([1, 1, 0])
    expect(s.histograms['step_latency_ms{agent="hash"}']?.count).toBe(1)
  })

  it('registering a name again answers the same metric; another kind under that name is refused', () => {
    const r = new MetricsRegistry()
    expect(r.counter('x')).toBe(r.counter('x'))
    expect(() => r.gauge('x')).toThrow(TypeError)
  })

  it('a metric keeps at most maxSeries label sets and folds the rest into "other"', () => {
    const r = new MetricsRegistry()
    const c = r.counter('by_peer', { labelNames: ['peer'], maxSeries: 3 })
    for (let i = 0; i < 10; i++) c.inc(1, { peer: `p${i}` })
    const keys = Object.keys(r.snapshot().counters)
    expect(keys).toHaveLength(4) // three peers + other
    expect(r.snapshot().counters['by_peer{peer="other"}']).toBe(7)
    const d = r.counter('default_cap', { labelNames: ['k'] })
    for (let i = 0; i < 500; i++) d.inc(1, { k: String(i) })
    expect(Object.keys(r.snapshot().counters).filter((k) => k.startsWith('default_cap'))).toHaveLength(MAX_SERIES + 1)
  })

  it('gauges with collect are read at snapshot time; a record sets one series per key; a throwing collect is skipped', () => {
    const r = new MetricsRegistry()
    let n = 1
    r.gauge('peers', { collect: () => n })
    let conns: Record<string, number> = { webrtc: 2, circuit: 1 }
    r.gauge('conns', { labelNames: ['transport'], collect: () => conns })
    r.gauge('broken', {
      collect: () => {
        throw new Error('source gone')
      }
    })
    expect(r.snapshot().gauges.peers).toBe(1)
    n = 5
    const g = r.snapshot().gauges
    expect(g.peers).toBe(5)
    expect(g['conns{transport="webrtc"}']).toBe(2)
    expect(g['conns{transport="circuit"}']).toBe(1)
    conns = { webrtc: 1 }
    expect(Object.keys(r.snapshot().gauges).filter((k) => k.startsWith('conns'))).toEqual(['conns{transport="webrtc"}'])
  })

  it('toRecord lists counts, sums and p50/p95/p99 of each histogram series', () => {
    const r = new MetricsRegistry()
    const h = r.histogram('task_latency_ms', { buckets: [10, 20] })
    expect(r.toRecord()).toEqual({})
    for (let i = 0; i < 4; i++) h.observe(15)
    const rec = r.toRecord()
    expect(rec['task_latency_ms.count']).toBe(4)
    expect(rec['task_latency_ms.sum']).toBe(60)
    expect(rec['task_latency_ms.p50']).toBe(15)
    expect(rec['task_latency_ms.p99']).toBeCloseTo(19.9)
  })

  it('a bound counter adds to its label set, follows a reset, and records nothing while disabled', () => {
    const r = new MetricsRegistry()
    const c = r.counter('bytes_total', { labelNames: ['protocol', 'direction'] })
    const sent = c.bind({ protocol: '/a', direction: 'sent' })
    sent(3)
    sent(4)
    c.inc(1, { protocol: '/a', direction: 'sent' })
    sent(0)
    sent(Number.NaN)
    expect(r.snapshot().counters).toEqual({ 'bytes_total{protocol="/a",direction="sent"}': 8 })
    c.reset()
    sent(2)
    expect(r.snapshot().counters).toEqual({ 'bytes_total{protocol="/a",direction="sent"}': 2 })
    r.enabled = false
    sent(5)
    r.enabled = true
    expect(r.snapshot().counters).toEqual({ 'bytes_total{protocol="/a",direction="sent"}': 2 })
  })

  it('records nothing while disabled', () => {
    const r = new MetricsRegistry()
    r.enabled = false
    r.counter('c').inc()
    r.gauge('g').set(3)
    r.histogram('h').observe(1)
    const s = r.snapshot()
    expect(s.counters).toEqual({})
    expect(s.gauges).toEqual({})
    expect(s.histograms).toEqual({})
  })

  it('escapes label values in series keys', () => {
    expect(seriesKey('m', ['a'], { a: 'x"y\\z\n' })).toBe('m{a="x\\"y\\\\z\\n"}')
    expect(seriesKey('m', ['a', 'b'], { b: 1 })).toBe('m{b="1"}')
    expect(seriesKey('m', [], { a: 1 })).toBe('m')
  })
})
