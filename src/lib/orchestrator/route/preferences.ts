/**
 * Routing preferences (vision §2), snake_case as there, plus the strategy. The
 * valibot schema is the single source of the type; `custom_score` is not data
 * (a function), so it is checked apart and never crosses the wire.
 */
import * as v from 'valibot'
import type { RouteCandidate, RouteCriteria } from './router-types.ts'

/** The ten routing strategies of vision §2. */
export const STRATEGIES = ['cost', 'quality', 'speed', 'balanced', 'specialist', 'generalist', 'geographic', 'load-balanced', 'round-robin', 'custom'] as const
/** A routing strategy. */
export type Strategy = (typeof STRATEGIES)[number]

const weight = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1))

/** How a failed step is retried on the next choice. */
export const RetryPolicySchema = v.object({
  /** Attempts per step, the first included. Default 3. */
  max_attempts: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(20)), 3),
  /** Wait before the second attempt. Default 100 ms. */
  backoff_ms: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(60_000)), 100),
  /** Each further wait is multiplied by this. Default 2. */
  backoff_multiplier: v.optional(v.pipe(v.number(), v.finite(), v.minValue(1), v.maxValue(10)), 2)
})
/** How a failed step is retried. */
export type RetryPolicy = v.InferOutput<typeof RetryPolicySchema>

/** The user's scoring function for the `custom` strategy: higher wins. */
export type CustomScore = (candidate: RouteCandidate, criteria: RouteCriteria) => number

/** Routing preferences as data (what crosses boundaries). */
export const RoutingPreferencesSchema = v.object({
  strategy: v.optional(v.picklist(STRATEGIES), 'balanced'),
  /** Cap on the whole task's cost in credits (each step's price must fit too). */
  max_cost: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0))),
  cost_weight: v.optional(weight),
  /** 0..1; agents of lower (or unknown, counted 0.5) quality are not eligible. */
  min_quality: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1))),
  quality_weight: v.optional(weight),
  /** Milliseconds: peers whose round trip is larger (or unknown) are not eligible. */
  max_latency: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0))),
  speed_weight: v.optional(weight),
  preferred_regions: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(64))), v.maxLength(32))),
  region_weight: v.optional(weight),
  /** 0..5; agents of lower reputation are not eligible (an agent nothing is known of counts 5 x its prior mean: 4.5 bundled, 1.25 from a new author). */
  min_reputation: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(5))),
  reputation_weight: v.optional(weight),
  prefer_specialists: v.optional(v.boolean()),
  /** Agent ids or names tried right after the winner, in this order. */
  fallback_chain: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(128))), v.maxLength(16))),
  retry_policy: v.optional(RetryPolicySchema)
})

/** Routing preferences (the vision's fields) plus the custom scoring function. */
export type RoutingPreferences = v.InferInput<typeof RoutingPreferencesSchema> & {
  /** Used when `strategy` is `'custom'`. */
  custom_score?: CustomScore
}
/** Preferences with defaults applied. */
export type ResolvedPreferences = v.InferOutput<typeof RoutingPreferencesSchema> & {
  custom_score?: CustomScore
  retry_policy: RetryPolicy
}

/** Defaults of the balanced weights when the user gives none. */
export const DEFAULT_WEIGHTS = { cost: 0.25, quality: 0.25, speed: 0.2, region: 0.05, reputation: 0.25 } as const

/**
 * Validate preferences from outside and apply defaults. Throws a valibot error
 * summary through `onInvalid` (the caller wraps it into its own error type).
 */
export function resolvePreferences(prefs: RoutingPreferences | undefined, onInvalid: (message: string) => Error): ResolvedPreferences {
  const { custom_score: customScore, ...data } = prefs ?? {}
  const res = v.safeParse(RoutingPreferencesSchema, data)
  if (!res.success) {
    const i = res.issues[0]
    const path = i.path?.map((p) => String(p.key)).join('.')
    throw onInvalid(`The routing preferences are not valid: ${path != null ? `${path}: ` : ''}${i.message}`)
  }
  if (res.output.strategy === 'custom' && typeof customScore !== 'function') {
    throw onInvalid('The custom strategy needs preferences.custom_score, a function (candidate, criteria) => number')
  }
  return {
    ...res.output,
    retry_policy: res.output.retry_policy ?? v.parse(RetryPolicySchema, {}),
    ...(customScore != null ? { custom_score: customScore } : {})
  }
}
