import { describe, expect, it } from 'vitest'
import { MetricsRegistry, LATENCY_MS_BUCKETS } from '../core/index.ts'
import { KEEP_MS, sampleOf, seriesOf, summaryOf, type Sample } from './metrics-samples.ts'

describe('dashboard samples', () => {
  it('cut a registry snapshot down to counters, latency buckets and gauges', () => {
    const r = new MetricsRegistry()
    r.counter('zs_tasks_total', { labelNames: ['status'] }).inc(3, { status: 'succeeded' })
    r.counter('zs_tasks_total', { labelNames: ['status'] }).inc(1, { status: 'failed' })
    const lat = r.histogram('zs_task_latency_ms', { labelNames: ['status'], buckets: LATENCY_MS_BUCKETS })
    lat.observe(7, { status: 'succeeded' })
    lat.observe(700, { status: 'failed' })
    lat.observe(9999, { status: 'cancelled' })
    r.gauge('zs_queue_depth').set(2)
    r.gauge('zs_peers', { labelNames: ['transport'] }).set(3, { transport: 'webrtc' })
    r.counter('libp2p_data_transfer_bytes_total', { labelNames: ['protocol', 'direction'] }).inc(500, { protocol: 'global', direction: 'received' })
    const s = sampleOf(r.snapshot(), 'b', true)
    expect(s).toMatchObject({ ok: 3, failed: 1, queue: 2, peers: { webrtc: 3 }, bytesIn: 500, bytesOut: 0, relay: 1 })
    expect(s.lat.reduce((a, b) => a + b, 0)).toBe(2) // cancelled tasks are not in the latency
    expect(s.latSum).toBe(707)
  })

  const samples = (secs: number, boot = 'b', from = 0): Sample[] =>
    Array.from({ length: secs }, (_, i) => {
      const n = i + 1 // one task a second, 20 ms each
      const lat = new Array<number>(LATENCY_MS_BUCKETS.length + 1).fill(0)
      lat[LATENCY_MS_BUCKETS.indexOf(25)] = n
      return {
        t: from + i * 1000,
        boot,
        ok: n,
        failed: 0,
        lat,
        latSum: 20 * n,
        runs: 0,
        queue: 0,
        inFlight: 0,
        busy: 2,
        slots: 8,
        peers: { webrtc: 1 },
        conns: {},
        bytesIn: 1000 * n,
        bytesOut: 0,
        relay: 1
      }
    })

  it('series: rates from counter deltas, quantiles from bucket differences, utilization', () => {
    const h = samples(120)
    const now = h.at(-1)!.t
    const s = seriesOf(h, 60_000, now)
    expect(s.x.length).toBe(61)
    expect(s.tasksPerSec.at(-1)).toBeCloseTo(1)
    expect(s.bytesInPerSec.at(-1)).toBeCloseTo(1000)
    expect(s.successPct.at(-1)).toBe(100)
    expect(s.p50.at(-1)).toBeGreaterThan(10)
    expect(s.p50.at(-1)).toBeLessThanOrEqual(25)
    expect(s.utilizationPct.at(-1)).toBe(25)
    expect(s.peers.webrtc?.at(-1)).toBe(1)
    // tasks done since the window's start: 60 over the last minute
    expect(s.done.at(-1)).toBe(60)
  })

  it('summary over the window; the history before a window is not in it; the first sample counts from its session start', () => {
    const h = samples(120)
    const now = h.at(-1)!.t
    expect(summaryOf(h, 60_000, now).tasks).toBe(60)
    expect(summaryOf(h, KEEP_MS, now).tasks).toBe(120)
    expect(summaryOf(h, KEEP_MS, now).p95).toBeLessThanOrEqual(25)
    expect(seriesOf(h, KEEP_MS, now).done.at(-1)).toBe(120)
  })

  it('a reload (new session) restarts the counters without negative rates', () => {
    const h = [...samples(30, 'a'), ...samples(30, 'b', 30_000)]
    const now = h.at(-1)!.t
    const s = seriesOf(h, KEEP_MS, now)
    expect(Math.min(...s.tasksPerSec.filter((x): x is number => x != null))).toBeGreaterThanOrEqual(0)
    expect(summaryOf(h, KEEP_MS, now).tasks).toBe(60)
  })

  it('a long window is thinned to at most MAX_POINTS points', () => {
    const h = samples(3600)
    expect(seriesOf(h, KEEP_MS, h.at(-1)!.t).x.length).toBeLessThanOrEqual(600)
  })
})
