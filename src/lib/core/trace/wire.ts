/**
 * Spans on the wire. A donor sends its spans of a step with its result as a `SpanBundle`
 * (numbered per submitter, unsigned), and signs them afterwards, many at once, in a
 * `SpanSeal`: one Ed25519 signature with its profile key over the sha-256 digests of a run
 * of bundles it sent to that submitter. Signing and verifying stay off the task's path: a
 * signature costs about as much as a whole in-memory step, and one seal covers up to
 * MAX_SEAL_DIGESTS steps. The submitter keeps a bundle pending until a seal covers it and
 * verifies when the trace is read (or when idle); one that fails is dropped and counted.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { toString as bytesToString } from 'uint8arrays'
import * as v from 'valibot'

/** Spans per bundle (a donor records about six per step). */
export const MAX_WIRE_SPANS = 16
/** Attributes per span on the wire. */
export const MAX_WIRE_ATTRIBUTES = 8
/** Characters of a span name, an attribute key, an attribute's text value. */
export const MAX_WIRE_NAME = 64
export const MAX_WIRE_KEY = 32
export const MAX_WIRE_TEXT = 128
/** Bundles one seal covers. */
export const MAX_SEAL_DIGESTS = 64

const hex16 = v.pipe(v.string(), v.regex(/^[0-9a-f]{16}$/))
const when = v.pipe(v.number(), v.finite(), v.minValue(0))
const seq = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER))
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

const traceId = v.pipe(v.string(), v.regex(/^[0-9a-f]{32}$/))

/** A donor's spans of one step, sent with its result; `seq` numbers the bundles it sends one submitter. */
export const SpanBundleSchema = v.object({
  traceId,
  seq,
  spans: v.pipe(v.array(WireSpanSchema), v.minLength(1), v.maxLength(MAX_WIRE_SPANS))
})
/** A donor's spans of one step. */
export type SpanBundle = v.InferOutput<typeof SpanBundleSchema>

/**
 * A bundle as the task protocol checks it on receipt: its trace, number and count of spans (the
 * frame cap bounds its size). The spans themselves are checked against SpanBundleSchema when
 * the bundle is verified (when the trace is read, or when idle), before anything of them is
 * kept: validating every span of every result cost more than the rest of tracing.
 */
export const SpanEnvelopeSchema = v.object({
  traceId,
  seq,
  spans: v.pipe(v.array(v.unknown()), v.minLength(1), v.maxLength(MAX_WIRE_SPANS))
})
/** A bundle as received, spans not yet checked. */
export type SpanEnvelope = v.InferOutput<typeof SpanEnvelopeSchema>

const digest = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{43}$/))
/** A donor's signature over the digests of bundles `first … first + digests.length - 1` it sent one submitter. */
export const SpanSealSchema = v.object({
  /** The signer's public key (`ed25519:…`). */
  key: v.pipe(v.string(), v.maxLength(64)),
  sig: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{86}$/)),
  first: seq,
  digests: v.pipe(v.array(digest), v.minLength(1), v.maxLength(MAX_SEAL_DIGESTS))
})
/** A donor's signature over a run of bundles. */
export type SpanSeal = v.InferOutput<typeof SpanSealSchema>

const encoder = new TextEncoder()

/**
 * The digest a seal lists for a bundle `from` sent: base64url sha-256 of its JSON with the
 * sender's id (JSON.parse keeps key order, so the receiver hashes the text the sender made).
 */
export function bundleDigest(from: string, bundle: SpanBundle | SpanEnvelope): string {
  return bytesToString(sha256(encoder.encode(JSON.stringify(['zerostate-spans/1', from, bundle.traceId, bundle.seq, bundle.spans]))), 'base64url')
}

/** The bytes a seal's signature covers: who sealed, for whom, which run of digests. */
export function sealBytes(from: string, to: string, seal: Pick<SpanSeal, 'first' | 'digests'>): Uint8Array {
  return encoder.encode(JSON.stringify(['zerostate-span-seal/1', from, to, seal.first, seal.digests]))
}
