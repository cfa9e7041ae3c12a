/** The preferences part of the submit form ⇄ `RoutingPreferences` (snake_case, as the vision names them). */
import type { RoutingPreferences, Strategy } from '$lib/index'
import { splitList } from '$lib/ui/format'

/** The ten strategies, in the vision's order, with a line for the select. */
export const STRATEGY_OPTIONS: ReadonlyArray<{ value: Strategy; label: string }> = [
  { value: 'cost', label: 'Cost: cheapest eligible agent' },
  { value: 'quality', label: 'Quality: best track record' },
  { value: 'speed', label: 'Speed: fastest-answering peer' },
  { value: 'balanced', label: 'Balanced: weighted score (default)' },
  { value: 'specialist', label: 'Specialist: most specialised agent' },
  { value: 'generalist', label: 'Generalist: broadest agent' },
  { value: 'geographic', label: 'Geographic: preferred regions first' },
  { value: 'load-balanced', label: 'Load-balanced: peer with the most free workers' },
  { value: 'round-robin', label: 'Round-robin: take turns' },
  { value: 'custom', label: 'Custom: your scoring function (console only)' }
]

/** The weights the balanced score combines. */
export const WEIGHT_NAMES = ['cost', 'quality', 'speed', 'region', 'reputation'] as const
export type WeightName = (typeof WEIGHT_NAMES)[number]

/** A number input's value: Svelte binds a number, or null when empty. */
type NumberField = string | number | null

/** The form's fields as typed. */
export interface PreferenceFields {
  strategy: Strategy
  maxCost: NumberField
  minQuality: NumberField
  maxLatency: NumberField
  regions: string
  minReputation: NumberField
  setWeights: boolean
  weights: Record<WeightName, number>
  preferSpecialists: boolean
}

/** Defaults: balanced, nothing constrained. */
export function defaultPreferences(): PreferenceFields {
  return {
    strategy: 'balanced',
    maxCost: '',
    minQuality: '',
    maxLatency: '',
    regions: '',
    minReputation: '',
    setWeights: false,
    weights: { cost: 0.25, quality: 0.25, speed: 0.2, region: 0.05, reputation: 0.25 },
    preferSpecialists: false
  }
}

function num(field: NumberField, label: string, min: number, max = Infinity): number | undefined {
  const text = field == null ? '' : String(field).trim()
  if (text === '') return undefined
  const n = Number(text)
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new Error(max === Infinity ? `${label} must be a number of at least ${min}` : `${label} must be a number from ${min} to ${max}`)
  }
  return n
}

/** Build the preferences; throws an Error with a sentence when a field is off. */
export function toPreferences(f: PreferenceFields): RoutingPreferences {
  if (f.strategy === 'custom')
    throw new Error(
      'The custom strategy needs a scoring function, which only the console can pass: call window.zerostate.submit({ …, preferences: { strategy: "custom", custom_score } })'
    )
  const prefs: RoutingPreferences = { strategy: f.strategy }
  const maxCost = num(f.maxCost, 'Max cost', 0)
  const minQuality = num(f.minQuality, 'Min quality', 0, 1)
  const maxLatency = num(f.maxLatency, 'Max latency', 0)
  const minReputation = num(f.minReputation, 'Min reputation', 0, 5)
  const regions = splitList(f.regions)
  if (maxCost != null) prefs.max_cost = maxCost
  if (minQuality != null) prefs.min_quality = minQuality
  if (maxLatency != null) prefs.max_latency = maxLatency
  if (minReputation != null) prefs.min_reputation = minReputation
  if (regions.length > 0) prefs.preferred_regions = regions
  if (f.setWeights) {
    prefs.cost_weight = f.weights.cost
    prefs.quality_weight = f.weights.quality
    prefs.speed_weight = f.weights.speed
    prefs.region_weight = f.weights.region
    prefs.reputation_weight = f.weights.reputation
  }
  if (f.preferSpecialists) prefs.prefer_specialists = true
  return prefs
}
