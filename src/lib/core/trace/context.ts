/**
 * W3C trace context (https://www.w3.org/TR/trace-context/): a 32-hex trace id, 16-hex span
 * ids, and the `traceparent` text that carries both inside the task protocol's offers.
 */

/** A position in a trace: the trace and the span new spans hang under. */
export interface TraceContext {
  readonly traceId: string
  readonly spanId: string
}

/** `traceparent` version 00: version, trace id, parent span id, flags (sampled). */
export const TRACEPARENT_PATTERN = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/
const ZERO_TRACE = '0'.repeat(32)
const ZERO_SPAN = '0'.repeat(16)

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
const pool = new Uint8Array(4096)
let poolAt = pool.length

/** `n` random bytes as lowercase hex, never all zero (W3C forbids it); one getRandomValues per 4 KiB. */
function randomHex(n: number): string {
  for (;;) {
    if (poolAt + n > pool.length) {
      crypto.getRandomValues(pool)
      poolAt = 0
    }
    let s = ''
    let any = 0
    for (let i = 0; i < n; i++) {
      const b = pool[poolAt++]
      any |= b
      s += HEX[b]
    }
    if (any !== 0) return s
  }
}

/** A new random trace id (32 hex). */
export const newTraceId = (): string => randomHex(16)
/** A new random span id (16 hex). */
export const newSpanId = (): string => randomHex(8)

/** The `traceparent` of a context (sampled). */
export function formatTraceparent(ctx: TraceContext): string {
  return `00-${ctx.traceId}-${ctx.spanId}-01`
}

/** Parse a `traceparent`; undefined when malformed or all-zero (the caller then starts no remote trace). */
export function parseTraceparent(text: string | undefined): TraceContext | undefined {
  if (text == null) return undefined
  const m = TRACEPARENT_PATTERN.exec(text)
  if (m == null || m[1] === ZERO_TRACE || m[2] === ZERO_SPAN) return undefined
  return { traceId: m[1], spanId: m[2] }
}
