/** core/trace: W3C trace context, span recording, signed spans on the wire, OTLP/JSON export. */
export { type TraceContext, TRACEPARENT_PATTERN, newTraceId, newSpanId, formatTraceparent, parseTraceparent } from './context.ts'
export { Tracer, ActiveSpan, nowMs, type Span, type SpanKind, type SpanStatus, type SpanRejection, type TracerInit } from './tracer.ts'
export { SignedSpansSchema, WireSpanSchema, MAX_WIRE_SPANS, MAX_WIRE_ATTRIBUTES, type SignedSpans, type WireSpan } from './wire.ts'
export { toOtlp, msToUnixNano, otlpValue, type OtlpTraceRequest, type OtlpSpan, type OtlpKeyValue, type OtlpAnyValue } from './otlp.ts'
