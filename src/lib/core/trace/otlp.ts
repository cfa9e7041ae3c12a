/**
 * A trace as OTLP/JSON: an `ExportTraceServiceRequest`
 * (opentelemetry-proto, collector/trace/v1), one `resourceSpans` per peer, as Jaeger's
 * upload and any OTLP/HTTP JSON receiver read it. Trace and span ids are hex (the OTLP JSON
 * mapping's exception to base64), times are unsigned 64-bit nanoseconds as decimal strings,
 * enums are integers.
 */
import type { Span, SpanKind } from './tracer.ts'

/** An OTLP `AnyValue`. */
export type OtlpAnyValue = { stringValue: string } | { intValue: string } | { doubleValue: number } | { boolValue: boolean }
/** An OTLP `KeyValue`. */
export interface OtlpKeyValue {
  key: string
  value: OtlpAnyValue
}
/** An OTLP span (the fields we fill). */
export interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes: OtlpKeyValue[]
  status: { code: number; message?: string }
}
/** `ExportTraceServiceRequest`. */
export interface OtlpTraceRequest {
  resourceSpans: Array<{
    resource: { attributes: OtlpKeyValue[] }
    scopeSpans: Array<{ scope: { name: string; version?: string }; spans: OtlpSpan[] }>
  }>
}

/** OTLP `SpanKind`: INTERNAL 1, SERVER 2, CLIENT 3. */
const KIND: Record<SpanKind, number> = { internal: 1, server: 2, client: 3 }
/** OTLP `StatusCode`: OK 1, ERROR 2. */
const STATUS = { ok: 1, error: 2 } as const

/** Epoch ms (fractional) as decimal nanoseconds, exact beyond 2^53. */
export function msToUnixNano(ms: number): string {
  const whole = Math.floor(ms)
  const frac = Math.round((ms - whole) * 1e6)
  return (BigInt(whole) * 1_000_000n + BigInt(frac)).toString()
}

/** An attribute value as OTLP `AnyValue` (objects as their JSON text). */
export function otlpValue(value: unknown): OtlpAnyValue {
  if (typeof value === 'string') return { stringValue: value }
  if (typeof value === 'boolean') return { boolValue: value }
  if (typeof value === 'number') return Number.isSafeInteger(value) ? { intValue: String(value) } : { doubleValue: value }
  if (typeof value === 'bigint') return { intValue: value.toString() }
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return { stringValue: text }
}

const attributes = (record: Record<string, unknown>): OtlpKeyValue[] => Object.entries(record).map(([key, value]) => ({ key, value: otlpValue(value) }))

/** Spans (of one trace or several) as an `ExportTraceServiceRequest`, grouped by the peer that recorded them. */
export function toOtlp(spans: readonly Span[], opts: { serviceName?: string; scopeVersion?: string } = {}): OtlpTraceRequest {
  const byPeer = new Map<string, OtlpSpan[]>()
  for (const s of spans) {
    let list = byPeer.get(s.peer)
    if (list == null) {
      list = []
      byPeer.set(s.peer, list)
    }
    const message = s.status === 'error' && typeof s.attributes.error === 'string' ? s.attributes.error : undefined
    list.push({
      traceId: s.traceId,
      spanId: s.spanId,
      ...(s.parentSpanId != null ? { parentSpanId: s.parentSpanId } : {}),
      name: s.name,
      kind: KIND[s.kind ?? 'internal'],
      startTimeUnixNano: msToUnixNano(s.startMs),
      endTimeUnixNano: msToUnixNano(Math.max(s.startMs, s.endMs)),
      attributes: attributes(s.attributes),
      status: { code: STATUS[s.status], ...(message != null ? { message } : {}) }
    })
  }
  return {
    resourceSpans: [...byPeer].map(([peer, list]) => ({
      resource: { attributes: attributes({ 'service.name': opts.serviceName ?? 'zerostate', 'service.instance.id': peer, 'zerostate.peer': peer }) },
      scopeSpans: [{ scope: { name: 'zerostate', ...(opts.scopeVersion != null ? { version: opts.scopeVersion } : {}) }, spans: list }]
    }))
  }
}
