/**
 * The Dashboard's samples (issue 15): once a second the peer's metrics snapshot is cut
 * down to one `Sample` (cumulative counters, the task-latency buckets, gauges), and chart
 * series for a window are derived from consecutive samples: rates from counter deltas,
 * latency quantiles from bucket differences (histogram_quantile over a trailing span).
 * Counters restart with the tab: a sample of another session (`boot`) is a reset.
 */
import { LATENCY_MS_BUCKETS, difference, quantile, type HistogramSnapshot, type MetricsSnapshot } from '../core/index.ts'

/** Names the samples read (app/metrics-wiring.ts METRIC; repeated so the UI does not reach into app). */
const N = {
  tasks: 'zs_tasks_total',
  taskLatency: 'zs_task_latency_ms',
  sandboxRuns: 'zs_sandbox_runs_total',
  queueDepth: 'zs_queue_depth',
  inFlight: 'zs_tasks_in_flight',
  donorBusy: 'zs_donor_busy_slots',
  donorSlots: 'zs_donor_slots',
  peers: 'zs_peers',
  connections: 'zs_connections',
  transfer: 'libp2p_data_transfer_bytes_total'
} as const

/** One second of a peer's metrics, as kept (IndexedDB) for the last hour. */
export interface Sample {
  /** Epoch ms (the store's key). */
  t: number
  /** The tab session that took it: counters restart with a new one. */
  boot: string
  /** Tasks submitted here that succeeded / failed (cumulative). */
  ok: number
  failed: number
  /** Task latency bucket counts over LATENCY_MS_BUCKETS (+Inf last), cumulative, and their sum (ms). */
  lat: number[]
  latSum: number
  /** Agent calls run in this tab (cumulative). */
  runs: number
  queue: number
  inFlight: number
  busy: number
  slots: number
  peers: Record<string, number>
  conns: Record<string, number>
  /** libp2p bytes received / sent on all connections (cumulative). */
  bytesIn: number
  bytesOut: number
  /** 1 when a relay is connected. */
  relay: number
}

function labelled(values: Record<string, number>, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {}
  const prefix = `${name}{${label}="`
  for (const [k, v] of Object.entries(values)) if (k.startsWith(prefix)) out[k.slice(prefix.length, k.indexOf('"', prefix.length))] = v
  return out
}

function sumLatency(histograms: Record<string, HistogramSnapshot>): { counts: number[]; sum: number } {
  const counts = new Array<number>(LATENCY_MS_BUCKETS.length + 1).fill(0)
  let sum = 0
  for (const [k, h] of Object.entries(histograms)) {
    if (!(k === N.taskLatency || k.startsWith(`${N.taskLatency}{`)) || k.includes('status="cancelled"')) continue
    if (h.counts.length !== counts.length) continue
    for (let i = 0; i < counts.length; i++) counts[i] = (counts[i] as number) + (h.counts[i] as number)
    sum += h.sum
  }
  return { counts, sum }
}

/** Cut a snapshot down to a sample. */
export function sampleOf(snap: MetricsSnapshot, boot: string, relayConnected: boolean): Sample {
  const c = snap.counters
  const g = snap.gauges
  const tasks = labelled(c, N.tasks, 'status')
  const runs = labelled(c, N.sandboxRuns, 'status')
  const latency = sumLatency(snap.histograms)
  const moved = (dir: string) => c[`${N.transfer}{protocol="global",direction="${dir}"}`] ?? 0
  return {
    t: snap.at,
    boot,
    ok: tasks.succeeded ?? 0,
    failed: tasks.failed ?? 0,
    lat: latency.counts,
    latSum: latency.sum,
    runs: Object.values(runs).reduce((a, b) => a + b, 0),
    queue: g[N.queueDepth] ?? 0,
    inFlight: g[N.inFlight] ?? 0,
    busy: g[N.donorBusy] ?? 0,
    slots: g[N.donorSlots] ?? 0,
    peers: labelled(g, N.peers, 'transport'),
    conns: labelled(g, N.connections, 'transport'),
    bytesIn: moved('received'),
    bytesOut: moved('sent'),
    relay: relayConnected ? 1 : 0
  }
}

/** Windows the Dashboard offers. */
export const WINDOWS = [
  { id: '1m', label: '1 min', ms: 60_000 },
  { id: '15m', label: '15 min', ms: 15 * 60_000 },
  { id: '1h', label: '1 h', ms: 60 * 60_000 }
] as const
export type WindowId = (typeof WINDOWS)[number]['id']
/** Samples are kept this long (the longest window). */
export const KEEP_MS = 60 * 60_000

/**
 * How much counter `pick` grew from `a` to `b`. Counters start at 0 with their session: with
 * no `a`, or `a` of another session, or a lower value (a restart), all of `b` is new.
 */
export function delta(a: Sample | undefined, b: Sample, pick: (s: Sample) => number): number {
  if (a == null) return pick(b)
  const x = pick(a)
  const y = pick(b)
  return a.boot !== b.boot || y < x ? y : y - x
}

/** The task-latency histogram of what finished between samples a and b. */
export function latencyBetween(a: Sample | undefined, b: Sample): HistogramSnapshot {
  const later: HistogramSnapshot = { bounds: LATENCY_MS_BUCKETS, counts: b.lat, count: b.lat.reduce((x, y) => x + y, 0), sum: b.latSum }
  if (a == null || a.boot !== b.boot) return later
  return difference(later, { bounds: LATENCY_MS_BUCKETS, counts: a.lat, count: a.lat.reduce((x, y) => x + y, 0), sum: a.latSum })
}

/** Chart series of one window: x in epoch seconds; null where there is nothing to show. */
export interface WindowSeries {
  x: number[]
  /** Tasks finished (succeeded or failed) since the window's start. */
  done: number[]
  tasksPerSec: Array<number | null>
  successPct: Array<number | null>
  p50: Array<number | null>
  p95: Array<number | null>
  p99: Array<number | null>
  queue: number[]
  inFlight: number[]
  utilizationPct: Array<number | null>
  peers: Record<string, number[]>
  conns: Record<string, number[]>
  bytesInPerSec: Array<number | null>
  bytesOutPerSec: Array<number | null>
}

/** Totals over a window (the table beside the charts). */
export interface WindowSummary {
  tasks: number
  failed: number
  successPct: number | null
  p50: number | null
  p95: number | null
  p99: number | null
  tasksPerSec: number | null
}

/** The sample at or before `t` (binary search; samples are in time order). */
export function indexAt(samples: readonly Sample[], t: number): number {
  let lo = 0
  let hi = samples.length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if ((samples[mid] as Sample).t <= t) {
      found = mid
      lo = mid + 1
    } else hi = mid - 1
  }
  return found
}

const num = (v: number): number | null => (Number.isFinite(v) ? v : null)

/** At most this many points per series (a 1 h window of 1 s samples is thinned). */
export const MAX_POINTS = 600

/**
 * Series for the window ending at `now`: each point's rates and quantiles cover a trailing
 * span (`window / 60`, at least 5 s), so a point is not one second's noise.
 */
export function seriesOf(samples: readonly Sample[], windowMs: number, now: number): WindowSeries {
  const start = indexAt(samples, now - windowMs)
  const from = Math.max(0, start)
  const span = Math.max(5_000, windowMs / 60)
  const step = Math.max(1, Math.ceil((samples.length - from) / MAX_POINTS))
  const out: WindowSeries = {
    x: [],
    done: [],
    tasksPerSec: [],
    successPct: [],
    p50: [],
    p95: [],
    p99: [],
    queue: [],
    inFlight: [],
    utilizationPct: [],
    peers: {},
    conns: {},
    bytesInPerSec: [],
    bytesOutPerSec: []
  }
  const transports = new Set<string>()
  const connTransports = new Set<string>()
  for (let i = from; i < samples.length; i++) {
    for (const k of Object.keys((samples[i] as Sample).peers)) transports.add(k)
    for (const k of Object.keys((samples[i] as Sample).conns)) connTransports.add(k)
  }
  for (const k of transports) out.peers[k] = []
  for (const k of connTransports) out.conns[k] = []
  // Tasks done since the window's start: from the sample at its start, or from the session's start.
  const done: number[] = []
  let total = 0
  for (let i = from; i < samples.length; i++) {
    const b = samples[i] as Sample
    const prev = i > from ? samples[i - 1] : start >= 0 ? b : undefined
    total += delta(prev, b, (s) => s.ok) + delta(prev, b, (s) => s.failed)
    done.push(total)
  }
  for (let i = from; i < samples.length; i += step) {
    const b = samples[i] as Sample
    out.done.push(done[i - from] as number)
    // Over the trailing span, or from the window's first sample while the history is younger.
    const j = Math.max(from, indexAt(samples, b.t - span))
    const a = j < i ? samples[j] : undefined
    const secs = a != null ? (b.t - a.t) / 1000 : Number.NaN
    const ok = delta(a, b, (s) => s.ok)
    const failed = delta(a, b, (s) => s.failed)
    const h = latencyBetween(a, b)
    out.x.push(b.t / 1000)
    out.tasksPerSec.push(num((ok + failed) / secs))
    out.successPct.push(ok + failed > 0 ? (100 * ok) / (ok + failed) : null)
    out.p50.push(num(quantile(h, 0.5)))
    out.p95.push(num(quantile(h, 0.95)))
    out.p99.push(num(quantile(h, 0.99)))
    out.queue.push(b.queue)
    out.inFlight.push(b.inFlight)
    out.utilizationPct.push(b.slots > 0 ? (100 * b.busy) / b.slots : null)
    for (const k of transports) out.peers[k]?.push(b.peers[k] ?? 0)
    for (const k of connTransports) out.conns[k]?.push(b.conns[k] ?? 0)
    out.bytesInPerSec.push(num(delta(a, b, (s) => s.bytesIn) / secs))
    out.bytesOutPerSec.push(num(delta(a, b, (s) => s.bytesOut) / secs))
  }
  return out
}

/** Tasks, success and latency quantiles over the whole window ending at `now`. */
export function summaryOf(samples: readonly Sample[], windowMs: number, now: number): WindowSummary {
  const last = samples.at(-1)
  const empty: WindowSummary = { tasks: 0, failed: 0, successPct: null, p50: null, p95: null, p99: null, tasksPerSec: null }
  if (last == null) return empty
  const j = indexAt(samples, now - windowMs)
  // Sum over consecutive pairs, so a restart inside the window is counted right.
  let ok = 0
  let failed = 0
  let counts = new Array<number>(LATENCY_MS_BUCKETS.length + 1).fill(0)
  let sum = 0
  // The first sample of the history counts from its session's start.
  for (let i = j + 1; i < samples.length; i++) {
    const a = i > 0 ? samples[i - 1] : undefined
    const b = samples[i] as Sample
    ok += delta(a, b, (s) => s.ok)
    failed += delta(a, b, (s) => s.failed)
    const h = latencyBetween(a, b)
    counts = counts.map((c, k) => c + (h.counts[k] as number))
    sum += h.sum
  }
  const h: HistogramSnapshot = { bounds: LATENCY_MS_BUCKETS, counts, count: counts.reduce((x, y) => x + y, 0), sum }
  const first = samples[Math.max(0, j)] as Sample
  const secs = (last.t - first.t) / 1000
  return {
    tasks: ok + failed,
    failed,
    successPct: ok + failed > 0 ? (100 * ok) / (ok + failed) : null,
    p50: num(quantile(h, 0.5)),
    p95: num(quantile(h, 0.95)),
    p99: num(quantile(h, 0.99)),
    tasksPerSec: secs > 0 ? (ok + failed) / secs : null
  }
}
