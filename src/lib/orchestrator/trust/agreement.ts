/**
 * When do two replicas of a step agree? Deterministic (WebAssembly) agents by equal
 * canonical output; a manifest may declare another comparison: `exact`,
 * `json-equal`, `numeric-tolerance` (optionally `{ 'numeric-tolerance': 1e-6 }`) or
 * `{ judge: '<agent>' }` for outputs only another agent can compare (LLM text).
 */
import * as v from 'valibot'
import canonicalize from 'canonicalize'
import { isBytes } from '../../core/index.ts'

/** A comparison as a manifest declares it. */
export const ComparisonSchema = v.union([
  v.picklist(['exact', 'json-equal', 'numeric-tolerance']),
  v.strictObject({ 'numeric-tolerance': v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1)) }),
  v.strictObject({ judge: v.pipe(v.string(), v.minLength(1), v.maxLength(128)) })
])

/** A parsed comparison. */
export type Comparison = { kind: 'exact' } | { kind: 'json-equal' } | { kind: 'numeric-tolerance'; tolerance: number } | { kind: 'judge'; agent: string }

/** Relative tolerance of `numeric-tolerance` when the manifest gives none. */
export const DEFAULT_NUMERIC_TOLERANCE = 1e-9

/** The default: equal canonical output (every agent today is deterministic WebAssembly). */
export const EXACT: Comparison = { kind: 'exact' }

/** Parse a manifest's declaration; anything malformed or missing is `exact`. */
export function parseComparison(value: unknown): Comparison {
  const r = v.safeParse(ComparisonSchema, value)
  if (!r.success) return EXACT
  const c = r.output
  if (c === 'exact' || c === 'json-equal') return { kind: c }
  if (c === 'numeric-tolerance') return { kind: 'numeric-tolerance', tolerance: DEFAULT_NUMERIC_TOLERANCE }
  if ('judge' in c) return { kind: 'judge', agent: c.judge }
  return { kind: 'numeric-tolerance', tolerance: c['numeric-tolerance'] }
}

/** Runs a judge agent on two outputs; resolves true when it says they agree. */
export type Judge = (agent: string, a: unknown, b: unknown, signal?: AbortSignal) => Promise<boolean>

/** Whether `a` and `b` agree under `comparison`. A judge comparison needs `judge`. */
export async function agree(comparison: Comparison, a: unknown, b: unknown, judge?: Judge, signal?: AbortSignal): Promise<boolean> {
  switch (comparison.kind) {
    case 'exact':
      return canonicalEqual(a, b)
    case 'json-equal':
      return canonicalEqual(parseJsonText(a), parseJsonText(b))
    case 'numeric-tolerance':
      return near(parseJsonText(a), parseJsonText(b), comparison.tolerance)
    case 'judge':
      if (canonicalEqual(a, b)) return true
      if (judge == null) throw new TypeError(`comparison by judge ${comparison.agent} needs a judge runner`)
      return await judge(comparison.agent, a, b, signal)
  }
}

/** Equal bytes, or equal RFC 8785 canonical JSON. */
export function canonicalEqual(a: unknown, b: unknown): boolean {
  if (isBytes(a) || isBytes(b)) {
    if (!isBytes(a) || !isBytes(b)) return false
    const x = toU8(a)
    const y = toU8(b)
    if (x.byteLength !== y.byteLength) return false
    for (let i = 0; i < x.byteLength; i++) if (x[i] !== y[i]) return false
    return true
  }
  return canonicalText(a) === canonicalText(b)
}

/** The canonical text of a JSON value (undefined for what JSON cannot hold). */
export function canonicalText(value: unknown): string | undefined {
  try {
    return canonicalize(value)
  } catch {
    return undefined
  }
}

function toU8(value: Uint8Array | ArrayBuffer | ArrayBufferView): Uint8Array {
  if (value instanceof Uint8Array) return value
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
}

function parseJsonText(value: unknown): unknown {
  if (typeof value !== 'string') return value
  try {
    return JSON.parse(value) as unknown
  } catch {
    return value.trim()
  }
}

function near(a: unknown, b: unknown, tolerance: number): boolean {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isNaN(a) || Number.isNaN(b)) return false
    return Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(a), Math.abs(b))
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => near(x, b[i], tolerance))
  if (a != null && b != null && typeof a === 'object' && typeof b === 'object' && !isBytes(a) && !isBytes(b)) {
    const ka = Object.keys(a).sort()
    const kb = Object.keys(b).sort()
    if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false
    return ka.every((k) => near((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], tolerance))
  }
  return canonicalEqual(a, b)
}
