/**
 * The one region vocabulary: what presence advertises, what `preferred_regions`
 * matches and what Settings and the Submit form offer. Coarse on purpose (a
 * continent): a browser knows no more than its time zone, and a finer guess
 * would be wrong more often than right.
 */
import { MeshError } from './errors.ts'

/** The regions a peer can be in, with their labels, in display order. */
export const REGIONS = [
  { id: 'europe', label: 'Europe' },
  { id: 'americas', label: 'Americas' },
  { id: 'asia', label: 'Asia' },
  { id: 'africa', label: 'Africa' },
  { id: 'oceania', label: 'Oceania' }
] as const

/** A region id (`europe`, `americas`, …). */
export type Region = (typeof REGIONS)[number]['id']

/** What a peer advertises when neither the user nor its time zone names a region. */
export const UNKNOWN_REGION = 'unknown'

const IDS: ReadonlySet<string> = new Set(REGIONS.map((r) => r.id))

/** The first part of an IANA time zone (and a few legacy names) → region. */
const BY_ZONE_HEAD: Readonly<Record<string, Region>> = {
  europe: 'europe',
  atlantic: 'europe',
  arctic: 'europe',
  america: 'americas',
  us: 'americas',
  canada: 'americas',
  brazil: 'americas',
  chile: 'americas',
  mexico: 'americas',
  asia: 'asia',
  indian: 'asia',
  africa: 'africa',
  australia: 'oceania',
  pacific: 'oceania',
  nz: 'oceania'
}

/** Zones whose head says the wrong continent. */
const BY_ZONE: Readonly<Record<string, Region>> = {
  'atlantic/bermuda': 'americas',
  'atlantic/stanley': 'americas',
  'atlantic/south_georgia': 'americas',
  'atlantic/cape_verde': 'africa',
  'atlantic/st_helena': 'africa',
  'indian/antananarivo': 'africa',
  'indian/comoro': 'africa',
  'indian/mayotte': 'africa',
  'indian/mauritius': 'africa',
  'indian/reunion': 'africa',
  'indian/mahe': 'africa',
  'pacific/honolulu': 'americas',
  'pacific/galapagos': 'americas',
  'pacific/easter': 'americas'
}

/** Whether `value` is one of REGIONS' ids. */
export function isRegion(value: unknown): value is Region {
  return typeof value === 'string' && IDS.has(value)
}

/** The label of a region id (`europe` → `Europe`); `unknown` and foreign values are shown as "not known". */
export function regionLabel(id: string | undefined): string {
  return REGIONS.find((r) => r.id === id)?.label ?? 'not known'
}

/** The region of an IANA time zone (`Europe/Paris` → `europe`), or undefined (UTC, Etc/…, Antarctica/…). */
export function regionOfTimeZone(timeZone: string | undefined): Region | undefined {
  if (timeZone == null) return undefined
  const tz = timeZone.toLowerCase()
  return BY_ZONE[tz] ?? BY_ZONE_HEAD[tz.split('/')[0] ?? '']
}

/** A region was asked for that is not in the vocabulary. */
export class UnknownRegionError extends MeshError {
  override readonly name: string = 'UnknownRegionError'
  static override readonly defaultMessage: string = `Unknown region: choose one of ${REGIONS.map((r) => r.id).join(', ')}`
}

/** Validate a region id; throws `UnknownRegionError` naming the choices. */
export function toRegion(value: unknown): Region {
  if (isRegion(value)) return value
  throw new UnknownRegionError(`"${String(value).slice(0, 40)}" is not a region: choose one of ${REGIONS.map((r) => r.id).join(', ')}`)
}
