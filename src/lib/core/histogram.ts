/**
 * Fixed-bucket histograms (issue 15), the Prometheus way: each bucket counts observations
 * at or below its upper bound (`le`), the last bucket is +Inf, and a quantile is estimated
 * by linear interpolation inside the bucket it falls in (`histogram_quantile`). Observing
 * is a short loop over the bounds and no allocation, so it can sit on a task's hot path.
 */

/** Latency buckets in milliseconds: from a warm in-tab call (~1 ms) to a step near its deadline. */
export const LATENCY_MS_BUCKETS: readonly number[] = Object.freeze([1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000])
/** Size buckets in bytes: a small JSON value to the largest payload a step may carry. */
export const BYTES_BUCKETS: readonly number[] = Object.freeze([64, 256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216])

/** A histogram's state: per-bucket counts (not cumulative; the last is +Inf), count and sum. */
export interface HistogramSnapshot {
  /** Upper bounds, ascending; +Inf is implied after the last. */
  readonly bounds: readonly number[]
  /** bounds.length + 1 counts: observations in (bounds[i-1], bounds[i]], the last above every bound. */
  readonly counts: readonly number[]
  readonly count: number
  readonly sum: number
}

/** Bounds must be finite, ascending and distinct. */
function checkBounds(bounds: readonly number[]): void {
  if (bounds.length === 0) throw new RangeError('a histogram needs at least one bucket bound')
  for (let i = 0; i < bounds.length; i++) {
    const b = bounds[i] as number
    if (!Number.isFinite(b)) throw new RangeError(`bucket bound ${b} is not a finite number`)
    if (i > 0 && b <= (bounds[i - 1] as number)) throw new RangeError('bucket bounds must be ascending and distinct')
  }
}

/** Bounds from a foreign source (libp2p, gossipsub) made usable: finite, sorted, distinct; `fallback` when none remain. */
export function normalizeBounds(bounds: readonly number[] | undefined, fallback: readonly number[]): readonly number[] {
  const clean = [...new Set((bounds ?? []).filter((b) => Number.isFinite(b)))].sort((a, b) => a - b)
  return clean.length > 0 ? clean : fallback
}

/** A histogram with fixed buckets. */
export class Histogram {
  readonly bounds: readonly number[]
  readonly #counts: Float64Array
  #count = 0
  #sum = 0

  constructor(bounds: readonly number[] = LATENCY_MS_BUCKETS) {
    checkBounds(bounds)
    this.bounds = bounds
    this.#counts = new Float64Array(bounds.length + 1)
  }

  /** Count `value` in the first bucket whose bound is ≥ value (+Inf when above all). NaN is ignored. */
  observe(value: number): void {
    if (Number.isNaN(value)) return
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > (bounds[i] as number)) i++
    this.#counts[i] = (this.#counts[i] as number) + 1
    this.#count++
    this.#sum += value
  }

  get count(): number {
    return this.#count
  }

  get sum(): number {
    return this.#sum
  }

  /** Estimate the q-quantile (0 ≤ q ≤ 1); NaN when empty. */
  quantile(q: number): number {
    return quantile(this.snapshot(), q)
  }

  snapshot(): HistogramSnapshot {
    return { bounds: this.bounds, counts: Array.from(this.#counts), count: this.#count, sum: this.#sum }
  }

  reset(): void {
    this.#counts.fill(0)
    this.#count = 0
    this.#sum = 0
  }
}

/**
 * Estimate the q-quantile of a snapshot like Prometheus' `histogram_quantile`: find the bucket
 * holding the rank q·count and interpolate linearly between its lower and upper bound (the
 * first bucket's lower bound is 0 when its bound is positive). A rank in the +Inf bucket
 * answers the highest finite bound. NaN when the snapshot is empty or q is out of [0, 1].
 */
export function quantile(h: HistogramSnapshot, q: number): number {
  if (!(q >= 0 && q <= 1) || h.count <= 0) return Number.NaN
  const rank = q * h.count
  let below = 0
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i] as number
    if (c > 0 && below + c >= rank) {
      if (i >= h.bounds.length) return h.bounds[h.bounds.length - 1] as number
      const upper = h.bounds[i] as number
      const lower = i === 0 ? Math.min(0, upper) : (h.bounds[i - 1] as number)
      return lower + (upper - lower) * ((rank - below) / c)
    }
    below += c
  }
  return h.bounds[h.bounds.length - 1] as number
}

/**
 * What was observed between two snapshots of one histogram (`later` − `earlier`): the
 * histogram of a time window. A histogram reset in between (a count that went down) yields `later`.
 */
export function difference(later: HistogramSnapshot, earlier: HistogramSnapshot | undefined): HistogramSnapshot {
  if (earlier == null || earlier.counts.length !== later.counts.length || earlier.count > later.count) return later
  const counts = later.counts.map((c, i) => c - (earlier.counts[i] as number))
  if (counts.some((c) => c < 0)) return later
  return { bounds: later.bounds, counts, count: later.count - earlier.count, sum: later.sum - earlier.sum }
}

/** Bucket-wise sum of snapshots with the same bounds (e.g. one metric's label sets merged). */
export function merge(snapshots: readonly HistogramSnapshot[]): HistogramSnapshot | undefined {
  const first = snapshots[0]
  if (first == null) return undefined
  const counts = new Array<number>(first.counts.length).fill(0)
  let count = 0
  let sum = 0
  for (const s of snapshots) {
    if (s.counts.length !== counts.length) continue
    for (let i = 0; i < counts.length; i++) counts[i] = (counts[i] as number) + (s.counts[i] as number)
    count += s.count
    sum += s.sum
  }
  return { bounds: first.bounds, counts, count, sum }
}
