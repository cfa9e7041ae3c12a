/** core/trace: W3C trace context, span recording, signed spans on the wire, OTLP/JSON export. */
export { type TraceContext, TRACEPARENT_PATTERN, newTraceId, newSpanId, formatTraceparent, parseTraceparent } from './context.ts'
export { Tracer, ActiveSpan, nowMs, type Span, type SpanKind, type SpanStatus, type TracerInit } from './tracer.ts'
export {
  SpanBundleSchema,
  SpanEnvelopeSchema,
  SpanSealSchema,
  WireSpanSchema,
  MAX_WIRE_SPANS,
  MAX_WIRE_ATTRIBUTES,
  MAX_SEAL_DIGESTS,
  bundleDigest,
  type SpanBundle,
  type SpanEnvelope,
  type SpanSeal,
  type WireSpan
} from './wire.ts'
export { SEAL_WAIT_MS, type SpanRejection } from './foreign.ts'
export type { SealDelivery } from './seal.ts'
export { toOtlp, msToUnixNano, otlpValue, type OtlpTraceRequest, type OtlpSpan, type OtlpKeyValue, type OtlpAnyValue } from './otlp.ts'
