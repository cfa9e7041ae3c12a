/**
 * Alert rules evaluated in the page (issue 15), the Prometheus `for:` way: a rule fires
 * when its condition held at every sample of the last `forMs` (and the history reaches
 * back that far). Values are taken over a trailing minute of samples. Rules are plain
 * data, validated when loaded (they are saved per profile).
 */
import * as v from 'valibot'
import { quantile } from '../core/index.ts'
import { delta, indexAt, latencyBetween, type Sample } from './metrics-samples.ts'

/** What a rule watches. */
export const ALERT_KINDS = ['failure-rate', 'p95', 'queue', 'relay'] as const
export type AlertKind = (typeof ALERT_KINDS)[number]

/** Values (failure rate, p95) are taken over this trailing span. */
export const VALUE_SPAN_MS = 60_000

/** One rule. `threshold` is in the kind's unit: % for failure-rate, ms for p95, calls for queue; unused for relay. */
export interface AlertRule {
  id: string
  kind: AlertKind
  enabled: boolean
  threshold: number
  forMs: number
}

/** The vision's rules: failure rate over 10% for 5 min, p95 over 2 s for 1 min, a queue of 5+ growing for 1 min, no relay for 30 s. */
export const DEFAULT_RULES: readonly AlertRule[] = Object.freeze([
  { id: 'failure-rate', kind: 'failure-rate', enabled: true, threshold: 10, forMs: 5 * 60_000 },
  { id: 'p95', kind: 'p95', enabled: true, threshold: 2000, forMs: 60_000 },
  { id: 'queue', kind: 'queue', enabled: true, threshold: 5, forMs: 60_000 },
  { id: 'relay', kind: 'relay', enabled: true, threshold: 0, forMs: 30_000 }
])

/** The saved rules' schema (IndexedDB reads are checked like any input). */
export const AlertRulesSchema = v.pipe(
  v.array(
    v.object({
      id: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
      kind: v.picklist(ALERT_KINDS),
      enabled: v.boolean(),
      threshold: v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1e9)),
      forMs: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(24 * 3600_000))
    })
  ),
  v.maxLength(32)
)

/** Saved rules, or the defaults when the value is missing or malformed. */
export function parseRules(value: unknown): AlertRule[] {
  const r = v.safeParse(AlertRulesSchema, value)
  return r.success ? r.output.map((x) => ({ ...x })) : DEFAULT_RULES.map((x) => ({ ...x }))
}

/** A rule's state now. */
export interface AlertState {
  rule: AlertRule
  firing: boolean
  /** The rule's value at the latest sample (NaN when there is none). */
  value: number
  /** A sentence with the figure, for the notification. */
  message: string
}

/** A rule's value at sample i: failure %, p95 ms, queued + in-flight calls, or 1 when no relay is connected. */
export function valueAt(kind: AlertKind, samples: readonly Sample[], i: number): number {
  const b = samples[i]
  if (b == null) return Number.NaN
  if (kind === 'queue') return b.queue + b.inFlight
  if (kind === 'relay') return b.relay > 0 ? 0 : 1
  // Over the trailing span, or from the first sample while the history is younger than it.
  const j = Math.max(0, indexAt(samples, b.t - VALUE_SPAN_MS))
  const a = j < i ? samples[j] : undefined
  if (a == null) return Number.NaN
  if (kind === 'failure-rate') {
    const ok = delta(a, b, (s) => s.ok)
    const failed = delta(a, b, (s) => s.failed)
    return ok + failed > 0 ? (100 * failed) / (ok + failed) : Number.NaN
  }
  return quantile(latencyBetween(a, b), 0.95)
}

function holds(kind: AlertKind, value: number, threshold: number): boolean {
  if (Number.isNaN(value)) return false
  if (kind === 'relay') return value >= 1
  if (kind === 'queue') return value >= threshold
  return value > threshold
}

const minutes = (ms: number): string => (ms >= 60_000 ? `${+(ms / 60_000).toFixed(1)} min` : `${Math.round(ms / 1000)} s`)

function describe(rule: AlertRule, value: number): string {
  switch (rule.kind) {
    case 'failure-rate':
      return `Failure rate ${Number.isNaN(value) ? '–' : `${value.toFixed(1)}%`} over the last minute (alert above ${rule.threshold}% for ${minutes(rule.forMs)}).`
    case 'p95':
      return `Task latency p95 ${Number.isNaN(value) ? '–' : `${Math.round(value)} ms`} over the last minute (alert above ${rule.threshold} ms for ${minutes(rule.forMs)}).`
    case 'queue':
      return `Queue ${Number.isNaN(value) ? '–' : value} calls waiting or running (alert at ${rule.threshold} or more, growing, for ${minutes(rule.forMs)}).`
    case 'relay':
      return value >= 1 ? `No relay connected (alert after ${minutes(rule.forMs)}): new peers cannot find this tab.` : 'A relay is connected.'
  }
}

/**
 * Evaluate each enabled rule at the latest sample (`now` ends the `for` span): firing when
 * the history reaches back `forMs`, every sample in that span meets the condition, and for
 * the queue, it grew across the span.
 */
export function evaluate(rules: readonly AlertRule[], samples: readonly Sample[], now: number): AlertState[] {
  const last = samples.length - 1
  return rules
    .filter((r) => r.enabled)
    .map((rule) => {
      const value = valueAt(rule.kind, samples, last)
      const from = now - rule.forMs
      let firing = last >= 0 && (samples[0] as Sample).t <= from
      if (firing) {
        const start = Math.max(0, indexAt(samples, from))
        for (let i = start; i <= last && firing; i++) firing = holds(rule.kind, valueAt(rule.kind, samples, i), rule.threshold)
        if (firing && rule.kind === 'queue') firing = valueAt('queue', samples, last) > valueAt('queue', samples, start)
      }
      return { rule, firing, value, message: describe(rule, value) }
    })
}
