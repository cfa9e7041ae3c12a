/**
 * Spans on the wire: what a donor sends back with its result, signed with its profile key,
 * bounded so that a result with its spans still fits one task-protocol frame.
 */
import * as v from 'valibot'

/** Spans per signed bundle (a donor records about six per step). */
export const MAX_WIRE_SPANS = 16
/** Attributes per span on the wire. */
export const MAX_WIRE_ATTRIBUTES = 8
/** Characters of a span name, an attribute key, an attribute's text value. */
export const MAX_WIRE_NAME = 64
export const MAX_WIRE_KEY = 32
export const MAX_WIRE_TEXT = 128

const hex16 = v.pipe(v.string(), v.regex(/^[0-9a-f]{16}$/))
const when = v.pipe(v.number(), v.finite(), v.minValue(0))
const attrValue = v.union([v.pipe(v.string(), v.maxLength(MAX_WIRE_TEXT)), v.pipe(v.number(), v.finite()), v.boolean()])

/** One span as a donor sends it (trace id and peer are the bundle's). */
export const WireSpanSchema = v.object({
  spanId: hex16,
  parentSpanId: v.optional(hex16),
  name: v.pipe(v.string(), v.minLength(1), v.maxLength(MAX_WIRE_NAME)),
  startMs: when,
  endMs: when,
  status: v.picklist(['ok', 'error']),
  attributes: v.optional(
    v.pipe(
      v.record(v.pipe(v.string(), v.maxLength(MAX_WIRE_KEY)), attrValue),
      v.check((r) => Object.keys(r).length <= MAX_WIRE_ATTRIBUTES, `at most ${MAX_WIRE_ATTRIBUTES} attributes`)
    )
  )
})
/** One span as a donor sends it. */
export type WireSpan = v.InferOutput<typeof WireSpanSchema>

/** A donor's spans of one step, signed over `{ traceId, peer, spans }` with its profile key. */
export const SignedSpansSchema = v.object({
  traceId: v.pipe(v.string(), v.regex(/^[0-9a-f]{32}$/)),
  /** The signer's public key (`ed25519:…`). */
  key: v.pipe(v.string(), v.maxLength(64)),
  sig: v.pipe(v.string(), v.maxLength(128)),
  spans: v.pipe(v.array(WireSpanSchema), v.minLength(1), v.maxLength(MAX_WIRE_SPANS))
})
/** A donor's signed spans of one step. */
export type SignedSpans = v.InferOutput<typeof SignedSpansSchema>
