/** The preferences part of the submit form ⇄ `RoutingPreferences` (snake_case, as the vision names them). */
import { REGIONS, isRegion, type RoutingPreferences, type Strategy } from '$lib/index'
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

/** The fields a check can fault, each shown with its own message. */
export type PreferenceField = 'strategy' | 'maxCost' | 'minQuality' | 'maxLatency' | 'minReputation' | 'regions'

/** A sentence per faulty field. */
export type PreferenceErrors = Partial<Record<PreferenceField, string>>

/** The labels the messages and the error summary use (as on the form). */
export const FIELD_LABELS: Record<PreferenceField, string> = {
  strategy: 'Strategy',
  maxCost: 'Max cost',
  minQuality: 'Min quality',
  maxLatency: 'Max latency',
  minReputation: 'Min reputation',
  regions: 'Preferred regions'
}

const REGION_IDS = REGIONS.map((r) => r.id).join(', ')

function num(field: NumberField, label: string, min: number, max = Infinity): { value?: number; error?: string } {
  const text = field == null ? '' : String(field).trim()
  if (text === '') return {}
  const n = Number(text)
  if (!Number.isFinite(n) || n < min || n > max) {
    return { error: max === Infinity ? `${label} must be a number of at least ${min}.` : `${label} must be a number from ${min} to ${max}.` }
  }
  return { value: n }
}

/**
 * Check every field and build the preferences. Returns the preferences when all
 * fields are right, else a sentence for each faulty field (all of them, not the first).
 */
export function checkPreferences(f: PreferenceFields): { ok: true; prefs: RoutingPreferences } | { ok: false; errors: PreferenceErrors } {
  const errors: PreferenceErrors = {}
  if (f.strategy === 'custom')
    errors.strategy =
      'The custom strategy needs a scoring function, which only the console can pass: call window.zerostate.submit({ …, preferences: { strategy: "custom", custom_score } }).'
  const maxCost = num(f.maxCost, 'Max cost', 0)
  const minQuality = num(f.minQuality, 'Min quality', 0, 1)
  const maxLatency = num(f.maxLatency, 'Max latency', 0)
  // Reputation is a score from 0 to 1 (API.md): a minimum above 1 rules out every peer.
  const minReputation = num(f.minReputation, 'Min reputation', 0, 1)
  const regions = splitList(f.regions).map((r) => r.toLowerCase())
  const unknown = regions.filter((r) => !isRegion(r))
  if (maxCost.error) errors.maxCost = maxCost.error
  if (minQuality.error) errors.minQuality = minQuality.error
  if (maxLatency.error) errors.maxLatency = maxLatency.error
  if (minReputation.error) errors.minReputation = minReputation.error
  if (unknown.length > 0)
    errors.regions = `${unknown.map((r) => `"${r}"`).join(', ')} ${unknown.length === 1 ? 'is not a region' : 'are not regions'}: use ${REGION_IDS}.`
  if (Object.keys(errors).length > 0) return { ok: false, errors }

  const prefs: RoutingPreferences = { strategy: f.strategy }
  if (maxCost.value != null) prefs.max_cost = maxCost.value
  if (minQuality.value != null) prefs.min_quality = minQuality.value
  if (maxLatency.value != null) prefs.max_latency = maxLatency.value
  if (minReputation.value != null) prefs.min_reputation = minReputation.value
  if (regions.length > 0) prefs.preferred_regions = [...new Set(regions)]
  if (f.setWeights) {
    prefs.cost_weight = f.weights.cost
    prefs.quality_weight = f.weights.quality
    prefs.speed_weight = f.weights.speed
    prefs.region_weight = f.weights.region
    prefs.reputation_weight = f.weights.reputation
  }
  if (f.preferSpecialists) prefs.prefer_specialists = true
  return { ok: true, prefs }
}

/** Build the preferences; throws an Error with the first faulty field's sentence. */
export function toPreferences(f: PreferenceFields): RoutingPreferences {
  const r = checkPreferences(f)
  if (r.ok) return r.prefs
  throw new Error(Object.values(r.errors)[0])
}
