/**
 * Anomaly detection (issue 12 "Learning"): an agent or a user whose failure rate, latency or
 * disagreement rate departs from its own history is flagged. Each target keeps its last results;
 * the newest `window` of them are compared with the ones before (its history):
 *
 * - failure and disagreement rates: a binomial z-score of the window's rate against the history's
 *   (Laplace-smoothed) rate, and a jump of at least `minRateJump`;
 * - latency: a robust z-score of the window's median run time against the history's median and
 *   median absolute deviation, and at least `latencyFactor` times the history's median.
 *
 * The defaults are conservative (window 30, z 4, a rise of 0.3): a steady agent failing 10% of the
 * time trips a rate flag with probability about 1e-5 per result, so flags mean a real change.
 *
 * A flag stays until {@link AnomalyDetector.clear} (a passed health check); clearing drops the
 * window, so the next judgement is made on fresh results against the same history.
 */

/** What a target is: an agent (by id) or a user (by profile key). */
export type AnomalyKind = 'agent' | 'user'
/** Which figure departed. */
export type AnomalyMetric = 'failure' | 'latency' | 'disagreement'

/** A flag as the learned state shows it. */
export interface AnomalyFlag {
  kind: AnomalyKind
  id: string
  metric: AnomalyMetric
  /** The history's figure (rate 0..1, or median ms). */
  baseline: number
  /** The window's figure. */
  recent: number
  /** The z-score that tripped it. */
  z: number
  at: number
  /** Health checks tried since the flag, and the last one's outcome. */
  checks: number
  lastCheck?: 'passed' | 'failed'
}

/** One result of a target. */
export interface AnomalySample {
  failed: boolean
  /** Run time of an accepted result. */
  ms?: number
  /** Outvoted or refused (true), agreed or accepted (false), not compared (undefined). */
  disagreed?: boolean
}

/** Options of {@link AnomalyDetector}, with defaults. */
export interface AnomalyInit {
  /** Results judged against the history. Default 30. */
  window?: number
  /** History needed before judging. Default 30. */
  minHistory?: number
  /** Most history kept per target. Default 200. */
  historySize?: number
  /** z-score that flags. Default 4. */
  z?: number
  /** Least rise of a rate over its history's that flags. Default 0.3. */
  minRateJump?: number
  /** Least factor of the window's median latency over the history's that flags. Default 2. */
  latencyFactor?: number
  /** Targets remembered; the least recently seen is forgotten (never a flagged one). Default 2048. */
  maxTargets?: number
}

interface Series {
  samples: AnomalySample[]
  flag?: AnomalyFlag
  /** Results judged so far, and the history's latency median and MAD as last computed (at `seen`). */
  seen?: number
  latency?: { med: number; mad: number; seen: number }
}

/** Per-target series and flags. */
export class AnomalyDetector {
  readonly #series = new Map<string, Series>()
  readonly #window: number
  readonly #minHistory: number
  readonly #historySize: number
  readonly #z: number
  readonly #jump: number
  readonly #latencyFactor: number
  readonly #maxTargets: number

  constructor(init: AnomalyInit = {}) {
    this.#window = Math.max(2, Math.floor(init.window ?? 30))
    this.#minHistory = Math.max(2, Math.floor(init.minHistory ?? 30))
    this.#historySize = Math.max(this.#minHistory, Math.floor(init.historySize ?? 200))
    this.#z = init.z ?? 4
    this.#jump = init.minRateJump ?? 0.3
    this.#latencyFactor = init.latencyFactor ?? 2
    this.#maxTargets = Math.max(1, Math.floor(init.maxTargets ?? 2048))
  }

  /** Add a result; returns the new flag when this result raised one. */
  record(kind: AnomalyKind, id: string, sample: AnomalySample, at = Date.now()): AnomalyFlag | undefined {
    const key = `${kind}:${id}`
    let s = this.#series.get(key)
    if (s == null) {
      if (this.#series.size >= this.#maxTargets) this.#forgetOne()
      s = { samples: [] }
    } else this.#series.delete(key)
    this.#series.set(key, s)
    s.samples.push(sample)
    const max = this.#historySize + this.#window
    if (s.samples.length > max) s.samples.splice(0, s.samples.length - max)
    if (s.flag != null) return undefined
    const flag = this.#judge(s)
    if (flag == null) return undefined
    s.flag = { kind, id, ...flag, at, checks: 0 }
    return s.flag
  }

  flagged(kind: AnomalyKind, id: string): boolean {
    return this.#series.get(`${kind}:${id}`)?.flag != null
  }

  flag(kind: AnomalyKind, id: string): AnomalyFlag | undefined {
    const f = this.#series.get(`${kind}:${id}`)?.flag
    return f == null ? undefined : { ...f }
  }

  /** The most recently seen targets' histories and flags, oldest first (to persist; at most `max`). */
  dump(max = 256): Array<[string, { samples: AnomalySample[]; flag?: AnomalyFlag }]> {
    const all = [...this.#series]
    let out = all
    if (all.length > max) {
      const flagged = all.filter(([, s]) => s.flag != null)
      const room = Math.max(0, max - flagged.length)
      const others = all.filter(([, s]) => s.flag == null)
      out = [...flagged, ...(room === 0 ? [] : others.slice(-room))]
    }
    return out.map(([k, s]) => [k, { samples: s.samples.map((x) => ({ ...x })), ...(s.flag != null ? { flag: { ...s.flag } } : {}) }])
  }

  /** Restore dumped histories and flags; targets seen since are kept as they are. */
  load(dump: ReadonlyArray<readonly [string, { samples: readonly AnomalySample[]; flag?: AnomalyFlag }]>): void {
    const max = this.#historySize + this.#window
    for (const [key, d] of dump) {
      if (this.#series.has(key) || this.#series.size >= this.#maxTargets) continue
      this.#series.set(key, { samples: d.samples.slice(-max).map((x) => ({ ...x })), ...(d.flag != null ? { flag: { ...d.flag } } : {}) })
    }
  }

  /** Every flag, oldest first. */
  flags(): AnomalyFlag[] {
    return [...this.#series.values()].flatMap((s) => (s.flag == null ? [] : [{ ...s.flag }])).sort((a, b) => a.at - b.at)
  }

  /** Note a health check's outcome on a flagged target. */
  checked(kind: AnomalyKind, id: string, passed: boolean): void {
    const f = this.#series.get(`${kind}:${id}`)?.flag
    if (f == null) return
    f.checks++
    f.lastCheck = passed ? 'passed' : 'failed'
  }

  /** Clear a flag (a passed health check): the window that raised it is dropped, the history kept. */
  clear(kind: AnomalyKind, id: string): boolean {
    const s = this.#series.get(`${kind}:${id}`)
    if (s?.flag == null) return false
    s.flag = undefined
    s.samples.splice(Math.max(0, s.samples.length - this.#window))
    s.latency = undefined
    return true
  }

  #judge(s: Series): Omit<AnomalyFlag, 'kind' | 'id' | 'at' | 'checks'> | undefined {
    const all = s.samples
    const split = all.length - this.#window
    if (split < this.#minHistory) return undefined
    // Rates in one pass each, no allocation (this runs on every outcome).
    const rate = (metric: 'failure' | 'disagreement'): Omit<AnomalyFlag, 'kind' | 'id' | 'at' | 'checks'> | undefined => {
      let hn = 0
      let hk = 0
      let rn = 0
      let rk = 0
      for (let i = 0; i < all.length; i++) {
        const v = metric === 'failure' ? all[i].failed : all[i].disagreed
        if (v === undefined) continue
        if (i < split) {
          hn++
          if (v) hk++
        } else {
          rn++
          if (v) rk++
        }
      }
      if (hn < this.#minHistory || rn < this.#window / 2) return undefined
      const p0 = (hk + 1) / (hn + 2)
      const pr = rk / rn
      const z = (pr - p0) / Math.sqrt((p0 * (1 - p0)) / rn)
      return z >= this.#z && pr - p0 >= this.#jump ? { metric, baseline: round(p0), recent: round(pr), z: round(z) } : undefined
    }
    const failure = rate('failure')
    if (failure != null) return failure
    const disagreement = rate('disagreement')
    if (disagreement != null) return disagreement
    const timed = (x: AnomalySample): x is AnomalySample & { ms: number } => !x.failed && x.ms !== undefined && Number.isFinite(x.ms)
    const rm: number[] = []
    for (let i = split; i < all.length; i++) {
      const x = all[i]
      if (timed(x)) rm.push(x.ms)
    }
    if (rm.length < this.#window / 2) return undefined
    // The history's median and MAD move slowly: recomputed every tenth result, not on each.
    s.seen = (s.seen ?? 0) + 1
    if (s.latency == null || s.seen - s.latency.seen >= 10) {
      const hm: number[] = []
      for (let i = 0; i < split; i++) {
        const x = all[i]
        if (timed(x)) hm.push(x.ms)
      }
      if (hm.length < this.#minHistory) return undefined
      const med = median(hm)
      s.latency = { med, mad: median(hm.map((x) => Math.abs(x - med))), seen: s.seen }
    }
    const { med, mad } = s.latency
    const r = median(rm)
    // 1.4826 × MAD estimates σ for normal data; a floor keeps a perfectly steady history from flagging on jitter.
    const sigma = Math.max(1.4826 * mad, 0.05 * med, 1)
    const z = (r - med) / sigma
    return z >= this.#z && r >= this.#latencyFactor * med ? { metric: 'latency', baseline: round(med), recent: round(r), z: round(z) } : undefined
  }

  #forgetOne(): void {
    for (const [k, s] of this.#series) {
      if (s.flag == null) {
        this.#series.delete(k)
        return
      }
    }
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}
