/**
 * Metrics of one peer (issue 15): the `Counters` every module keeps (read by
 * `window.zerostate.metrics()`), and one `MetricsRegistry` per peer holding counters, gauges
 * and fixed-bucket histograms with small label sets. A series is named the Prometheus way,
 * `name` or `name{label="value",…}`; a metric keeps at most `maxSeries` label sets and folds
 * the rest into `{…="other"}`, so a hostile or chatty label cannot grow it without bound.
 */
import { Histogram, quantile, type HistogramSnapshot } from './histogram.ts'

/** Named counters, read as a plain record by `window.zerostate.metrics()`. */
export class Counters {
  readonly #values = new Map<string, number>()
  readonly #prefix: string
  constructor(prefix: string) {
    this.#prefix = prefix
  }
  /** Add `by` (default 1) to counter `name`. */
  inc(name: string, by = 1): void {
    // Kept under the bare name (prefixed when read): counted on every gossip message and dial.
    this.#values.set(name, (this.#values.get(name) ?? 0) + by)
  }
  /** Set a gauge. */
  set(name: string, value: number): void {
    this.#values.set(name, value)
  }
  get(name: string): number {
    return this.#values.get(name) ?? 0
  }
  toRecord(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [name, n] of this.#values) out[`${this.#prefix}.${name}`] = n
    return out
  }
}

/** Label values of one series. */
export type Labels = Readonly<Record<string, string | number>>

/** Options every metric takes. */
export interface MetricInit {
  help?: string
  /** The label names this metric's series carry (values outside them are ignored). Default none. */
  labelNames?: readonly string[]
  /** Label sets kept before the rest fold into "other". Default MAX_SERIES. */
  maxSeries?: number
}

/** Label sets one metric keeps by default. */
export const MAX_SERIES = 32
/** The label value unseen label sets fold into once a metric is full. */
export const OTHER = 'other'

/** Everything a registry holds at one moment. */
export interface MetricsSnapshot {
  /** Epoch ms. */
  at: number
  counters: Record<string, number>
  gauges: Record<string, number>
  histograms: Record<string, HistogramSnapshot>
}

/** The quantiles `toRecord()` lists per histogram series. */
export const RECORD_QUANTILES = [0.5, 0.95, 0.99] as const

const NEEDS_ESCAPE = /[\\"\n]/

function escapeLabel(v: string): string {
  if (!NEEDS_ESCAPE.test(v)) return v
  return v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')
}

/** The series key of `name` with `labels`: `name` or `name{a="x",b="y"}` in label-name order. */
export function seriesKey(name: string, labelNames: readonly string[], labels: Labels | undefined): string {
  if (labelNames.length === 0 || labels == null) return name
  const parts: string[] = []
  for (const l of labelNames) {
    const v = labels[l]
    if (v !== undefined) parts.push(`${l}="${escapeLabel(String(v))}"`)
  }
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`
}

/** Series of one metric, keyed by label set, capped at maxSeries. */
class Series<T> {
  readonly #map = new Map<string, T>()
  /** Single-label metrics: series by the label's value, so the hot path builds no key. */
  readonly #byValue = new Map<string, T>()
  readonly #name: string
  readonly #labelNames: readonly string[]
  readonly #max: number
  readonly #make: () => T
  /** An unlabelled metric's one series (also in #map), so its hot path does no lookup. */
  #only: T | undefined
  /** Bumped by clear(): a series handed out before is no longer this metric's. */
  generation = 0
  constructor(name: string, init: MetricInit, make: () => T) {
    this.#name = name
    this.#labelNames = init.labelNames ?? []
    this.#max = Math.max(1, init.maxSeries ?? MAX_SERIES)
    this.#make = make
  }
  get(labels: Labels | undefined): T {
    // Unlabelled metrics (most of them) skip building a key.
    if (this.#labelNames.length === 0) {
      if (this.#only == null) {
        this.#only = this.#make()
        this.#map.set(this.#name, this.#only)
      }
      return this.#only
    }
    const single = this.#labelNames.length === 1 ? labels?.[this.#labelNames[0] as string] : undefined
    if (single !== undefined) {
      const hit = this.#byValue.get(String(single))
      if (hit != null) return hit
    }
    const s = this.#lookup(labels)
    if (single !== undefined && this.#byValue.size < this.#max * 4) this.#byValue.set(String(single), s)
    return s
  }
  #lookup(labels: Labels | undefined): T {
    let key = seriesKey(this.#name, this.#labelNames, labels)
    let s = this.#map.get(key)
    if (s != null) return s
    if (this.#map.size >= this.#max) {
      key = seriesKey(this.#name, this.#labelNames, Object.fromEntries(this.#labelNames.map((l) => [l, OTHER])))
      s = this.#map.get(key)
      if (s != null) return s
    }
    s = this.#make()
    this.#map.set(key, s)
    return s
  }
  entries(): IterableIterator<[string, T]> {
    return this.#map.entries()
  }
  clear(): void {
    this.#map.clear()
    this.#byValue.clear()
    this.#only = undefined
    this.generation++
  }
}

/** A number that only goes up. */
export class CounterMetric {
  readonly #series: Series<{ v: number }>
  readonly #registry: MetricsRegistry
  constructor(registry: MetricsRegistry, name: string, init: MetricInit) {
    this.#registry = registry
    this.#series = new Series(name, init, () => ({ v: 0 }))
  }
  /** Add `by` (default 1; negative and NaN are ignored). */
  inc(by = 1, labels?: Labels): void {
    if (!this.#registry.enabled || !(by > 0)) return
    this.#series.get(labels).v += by
  }
  /**
   * `inc` with `labels` fixed, for a hot path that counts under the same labels many times
   * (bytes per stream): the series is looked up once, and again only after a reset.
   */
  bind(labels?: Labels): (by: number) => void {
    let series: { v: number } | undefined
    let generation = -1
    return (by) => {
      if (!this.#registry.enabled || !(by > 0)) return
      if (series == null || generation !== this.#series.generation) {
        series = this.#series.get(labels)
        generation = this.#series.generation
      }
      series.v += by
    }
  }
  /** @internal */
  collect(into: Record<string, number>): void {
    for (const [k, s] of this.#series.entries()) into[k] = s.v
  }
  reset(): void {
    this.#series.clear()
  }
}

/** A number that goes up and down, set directly or read by `collect` at snapshot time. */
export class GaugeMetric {
  readonly #series: Series<{ v: number }>
  readonly #registry: MetricsRegistry
  readonly #read: (() => number | Record<string, number> | undefined) | undefined
  readonly #name: string
  readonly #labelNames: readonly string[]
  constructor(registry: MetricsRegistry, name: string, init: MetricInit & { collect?: () => number | Record<string, number> | undefined }) {
    this.#registry = registry
    this.#name = name
    this.#labelNames = init.labelNames ?? []
    this.#read = init.collect
    this.#series = new Series(name, init, () => ({ v: 0 }))
  }
  set(value: number, labels?: Labels): void {
    if (!this.#registry.enabled || Number.isNaN(value)) return
    this.#series.get(labels).v = value
  }
  inc(by = 1, labels?: Labels): void {
    if (!this.#registry.enabled) return
    this.#series.get(labels).v += by
  }
  dec(by = 1, labels?: Labels): void {
    this.inc(-by, labels)
  }
  /** @internal A collect function answering a record sets one series per key of its first label, and only those. */
  collect(into: Record<string, number>): void {
    if (this.#read != null) {
      const v = this.#read()
      if (typeof v === 'number') this.set(v)
      else if (v != null) {
        // The record is the whole state: a key gone from it is a series gone (no stale values).
        this.#series.clear()
        const label = this.#labelNames[0]
        for (const [k, n] of Object.entries(v)) if (label != null) this.set(n, { [label]: k })
      }
    }
    for (const [k, s] of this.#series.entries()) into[k] = s.v
  }
  get name(): string {
    return this.#name
  }
  reset(): void {
    this.#series.clear()
  }
}

/** A distribution in fixed buckets. */
export class HistogramMetric {
  readonly #series: Series<Histogram>
  readonly #registry: MetricsRegistry
  readonly bounds: readonly number[]
  constructor(registry: MetricsRegistry, name: string, init: MetricInit & { buckets?: readonly number[] }) {
    this.#registry = registry
    const probe = new Histogram(init.buckets)
    this.bounds = probe.bounds
    this.#series = new Series(name, init, () => new Histogram(this.bounds))
  }
  observe(value: number, labels?: Labels): void {
    if (!this.#registry.enabled) return
    this.#series.get(labels).observe(value)
  }
  /** Start a timer; calling the result observes the elapsed ms. */
  startTimer(labels?: Labels): () => number {
    const t0 = performance.now()
    return () => {
      const ms = performance.now() - t0
      this.observe(ms, labels)
      return ms
    }
  }
  /** @internal */
  collect(into: Record<string, HistogramSnapshot>): void {
    for (const [k, h] of this.#series.entries()) into[k] = h.snapshot()
  }
  reset(): void {
    this.#series.clear()
  }
}

type AnyMetric = CounterMetric | GaugeMetric | HistogramMetric

/**
 * One peer's metrics. Registering a name twice answers the metric already there (libp2p
 * services register theirs on every start). `enabled = false` turns every update into a
 * no-op (the bench measures the cost of metrics with it).
 */
export class MetricsRegistry {
  readonly #metrics = new Map<string, AnyMetric>()
  readonly #help = new Map<string, string>()
  /** Updates are recorded only while enabled. */
  enabled = true

  #get<T extends AnyMetric>(name: string, kind: new (...args: never[]) => T, make: () => T, help?: string): T {
    const existing = this.#metrics.get(name)
    if (existing != null) {
      if (existing instanceof kind) return existing
      throw new TypeError(`metric ${name} is already registered as another kind`)
    }
    const m = make()
    this.#metrics.set(name, m)
    if (help != null) this.#help.set(name, help)
    return m
  }

  counter(name: string, init: MetricInit = {}): CounterMetric {
    return this.#get(name, CounterMetric, () => new CounterMetric(this, name, init), init.help)
  }

  gauge(name: string, init: MetricInit & { collect?: () => number | Record<string, number> | undefined } = {}): GaugeMetric {
    return this.#get(name, GaugeMetric, () => new GaugeMetric(this, name, init), init.help)
  }

  histogram(name: string, init: MetricInit & { buckets?: readonly number[] } = {}): HistogramMetric {
    return this.#get(name, HistogramMetric, () => new HistogramMetric(this, name, init), init.help)
  }

  /** The help text of a metric, if given. */
  help(name: string): string | undefined {
    return this.#help.get(name)
  }

  /** Every series now (gauges' collect functions run here). A collect that throws leaves its gauge as it was. */
  snapshot(): MetricsSnapshot {
    const snap: MetricsSnapshot = { at: Date.now(), counters: {}, gauges: {}, histograms: {} }
    for (const m of this.#metrics.values()) {
      if (m instanceof CounterMetric) m.collect(snap.counters)
      else if (m instanceof HistogramMetric) m.collect(snap.histograms)
      else {
        try {
          m.collect(snap.gauges)
        } catch {
          // A gauge whose source failed keeps its last value out of this snapshot.
        }
      }
    }
    return snap
  }

  /**
   * A flat record for `metrics()`: counters and gauges by series key, and per histogram
   * series `<key>.count`, `<key>.sum` and `<key>.p50|p95|p99` (omitted while empty).
   */
  toRecord(snap: MetricsSnapshot = this.snapshot()): Record<string, number> {
    const out: Record<string, number> = { ...snap.counters, ...snap.gauges }
    for (const [k, h] of Object.entries(snap.histograms)) {
      out[`${k}.count`] = h.count
      out[`${k}.sum`] = h.sum
      if (h.count > 0) for (const q of RECORD_QUANTILES) out[`${k}.p${Math.round(q * 100)}`] = quantile(h, q)
    }
    return out
  }

  /** Forget every series (names stay registered). */
  reset(): void {
    for (const m of this.#metrics.values()) m.reset()
  }
}
