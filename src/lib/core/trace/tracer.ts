/**
 * Span recording for one peer: spans of the runs it submits and of the steps it serves,
 * kept per trace in bounded memory, and the signed exchange of a donor's spans with its
 * result (`wire.ts`). Deliberately small and allocation-light (one object per span, no
 * context manager, no zone): a span's parent is passed explicitly.
 */
import { type Identity, signJson, verifyJson } from '../identity.ts'
import { newSpanId, newTraceId, type TraceContext, formatTraceparent } from './context.ts'
import { MAX_WIRE_ATTRIBUTES, MAX_WIRE_KEY, MAX_WIRE_NAME, MAX_WIRE_SPANS, MAX_WIRE_TEXT, type SignedSpans, type WireSpan } from './wire.ts'

/** How a span ended. */
export type SpanStatus = 'ok' | 'error'
/** OTLP span kinds we use: a dispatch attempt is a client call, a donor's step its server side. */
export type SpanKind = 'internal' | 'client' | 'server'

/** One recorded span (API.md `Span`, plus its kind). */
export interface Span {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  /** The peer that recorded it. */
  peer: string
  /** Epoch ms (fractional: sub-millisecond steps still have a length). */
  startMs: number
  endMs: number
  status: SpanStatus
  attributes: Record<string, unknown>
  kind?: SpanKind
}

/** Epoch ms with sub-millisecond precision. */
export const nowMs: () => number =
  typeof performance !== 'undefined' && typeof performance.timeOrigin === 'number' ? () => performance.timeOrigin + performance.now() : () => Date.now()

/** A span being recorded; it is a trace context for its children. */
export class ActiveSpan implements TraceContext {
  readonly traceId: string
  readonly spanId: string
  readonly span: Span
  #ended = false
  constructor(span: Span) {
    this.span = span
    this.traceId = span.traceId
    this.spanId = span.spanId
  }
  /** The W3C `traceparent` naming this span as the parent. */
  get traceparent(): string {
    return formatTraceparent(this)
  }
  get ended(): boolean {
    return this.#ended
  }
  /** Set an attribute. */
  set(key: string, value: unknown): this {
    this.span.attributes[key] = value
    return this
  }
  /** End the span (once; later calls are ignored). */
  end(status: SpanStatus = 'ok', attributes?: Record<string, unknown>): void {
    if (this.#ended) return
    this.#ended = true
    this.span.endMs = nowMs()
    this.span.status = status
    if (attributes != null) Object.assign(this.span.attributes, attributes)
  }
}

/** Options of a tracer. */
export interface TracerInit {
  /** The peer id spans are recorded under (a function when it is known later). */
  peer: string | (() => string)
  /** Signs the spans this peer sends back with its results (a donor); without it, none are sent. */
  identity?: Identity
  /** Traces kept (oldest dropped first). Default 256. */
  maxTraces?: number
  /** Spans kept per trace (more are dropped and counted). Default 1024. */
  maxSpansPerTrace?: number
}

/** Why a bundle of foreign spans was dropped. */
export type SpanRejection = 'signature' | 'unknown-trace' | 'orphan' | 'duplicate' | 'malformed' | 'wrong-signer'

/** Records spans of this peer and verified spans of others, per trace. */
export class Tracer {
  readonly #peer: string | (() => string)
  readonly #identity: Identity | undefined
  readonly #maxTraces: number
  readonly #maxSpans: number
  readonly #traces = new Map<string, Span[]>()
  readonly #scopes = new Map<string, TraceContext>()
  /** Counters: started, dropped (over a cap), foreignAccepted, foreignRejected, bundlesSealed. */
  readonly stats = { started: 0, dropped: 0, foreignAccepted: 0, foreignRejected: 0, bundlesSealed: 0 }

  constructor(init: TracerInit) {
    this.#peer = init.peer
    this.#identity = init.identity
    this.#maxTraces = init.maxTraces ?? 256
    this.#maxSpans = init.maxSpansPerTrace ?? 1024
  }

  get peer(): string {
    return typeof this.#peer === 'string' ? this.#peer : this.#peer()
  }

  /** Whether this tracer can sign the spans it sends. */
  get signs(): boolean {
    return this.#identity != null
  }

  /** Start a span under `parent`; without one it starts a new trace. */
  start(name: string, parent?: TraceContext, attributes?: Record<string, unknown>, kind?: SpanKind): ActiveSpan {
    const t = nowMs()
    const span: Span = {
      traceId: parent?.traceId ?? newTraceId(),
      spanId: newSpanId(),
      ...(parent != null ? { parentSpanId: parent.spanId } : {}),
      name,
      peer: this.peer,
      startMs: t,
      endMs: t,
      status: 'ok',
      attributes: attributes ?? {},
      ...(kind != null ? { kind } : {})
    }
    this.stats.started++
    this.#store(span)
    return new ActiveSpan(span)
  }

  /** Name a context (a task id, a step) so that other parts can hang spans under it. */
  bind(scope: string, ctx: TraceContext): void {
    this.#scopes.delete(scope)
    this.#scopes.set(scope, ctx)
    if (this.#scopes.size > this.#maxTraces * 8) this.#scopes.delete(this.#scopes.keys().next().value!)
  }
  /** The context bound to `scope`, if any. */
  scope(scope: string): TraceContext | undefined {
    return this.#scopes.get(scope)
  }
  /** Forget a scope (a finished step). */
  unbind(scope: string): void {
    this.#scopes.delete(scope)
  }

  /** Every span of a trace known here, in recording order (a copy). */
  spans(traceId: string): Span[] {
    return [...(this.#traces.get(traceId) ?? [])]
  }

  #store(span: Span): boolean {
    let list = this.#traces.get(span.traceId)
    if (list == null) {
      list = []
      this.#traces.set(span.traceId, list)
      if (this.#traces.size > this.#maxTraces) this.#traces.delete(this.#traces.keys().next().value!)
    }
    if (list.length >= this.#maxSpans) {
      this.stats.dropped++
      return false
    }
    list.push(span)
    return true
  }

  /**
   * Sign spans this peer recorded (a donor's, of one step) for the submitter: at most
   * MAX_WIRE_SPANS, attributes clamped to the wire's bounds. Undefined without an identity.
   */
  async seal(traceId: string, spans: readonly (ActiveSpan | Span)[]): Promise<SignedSpans | undefined> {
    const identity = this.#identity
    if (identity == null || spans.length === 0) return undefined
    const wire: WireSpan[] = []
    for (const x of spans.slice(-MAX_WIRE_SPANS)) {
      const s = x instanceof ActiveSpan ? x.span : x
      if (s.traceId !== traceId) continue
      wire.push({
        spanId: s.spanId,
        ...(s.parentSpanId != null ? { parentSpanId: s.parentSpanId } : {}),
        name: s.name.slice(0, MAX_WIRE_NAME),
        startMs: s.startMs,
        endMs: Math.max(s.startMs, s.endMs),
        status: s.status,
        ...wireAttributes(s.attributes)
      })
    }
    if (wire.length === 0) return undefined
    const sig = await signJson(identity, { traceId, peer: this.peer, spans: wire })
    this.stats.bundlesSealed++
    return { traceId, key: identity.publicKey, sig, spans: wire }
  }

  /**
   * Take the spans `from` sent with its result: kept only when the signature holds over
   * `{ traceId, peer: from, spans }`, the trace is one of ours, every span hangs under a span
   * of that trace or of the bundle, and (when `expectKey` is given) the signer is that key.
   * Returns why it was dropped, or undefined when kept. Dropped bundles are counted.
   */
  async accept(from: string, bundle: SignedSpans, expectKey?: string): Promise<SpanRejection | undefined> {
    const why = await this.#check(from, bundle, expectKey)
    if (why != null) {
      this.stats.foreignRejected++
      return why
    }
    for (const w of bundle.spans) {
      this.#store({
        traceId: bundle.traceId,
        spanId: w.spanId,
        ...(w.parentSpanId != null ? { parentSpanId: w.parentSpanId } : {}),
        name: w.name,
        peer: from,
        startMs: w.startMs,
        endMs: w.endMs,
        status: w.status,
        attributes: { ...w.attributes, 'zerostate.signer': bundle.key },
        kind: w.parentSpanId != null && !bundle.spans.some((o) => o.spanId === w.parentSpanId) ? 'server' : 'internal'
      })
    }
    this.stats.foreignAccepted++
    return undefined
  }

  async #check(from: string, bundle: SignedSpans, expectKey: string | undefined): Promise<SpanRejection | undefined> {
    const local = this.#traces.get(bundle.traceId)
    if (local == null) return 'unknown-trace'
    if (expectKey != null && expectKey !== bundle.key) return 'wrong-signer'
    const known = new Set<string>()
    for (const s of local) known.add(s.spanId)
    const mine = new Set<string>()
    for (const w of bundle.spans) {
      if (w.endMs < w.startMs) return 'malformed'
      if (known.has(w.spanId) || mine.has(w.spanId)) return 'duplicate'
      mine.add(w.spanId)
    }
    for (const w of bundle.spans) if (w.parentSpanId == null || !(known.has(w.parentSpanId) || mine.has(w.parentSpanId))) return 'orphan'
    const ok = await verifyJson(bundle.key, { traceId: bundle.traceId, peer: from, spans: bundle.spans }, bundle.sig)
    return ok ? undefined : 'signature'
  }
}

function wireAttributes(attrs: Record<string, unknown>): { attributes?: Record<string, string | number | boolean> } {
  let out: Record<string, string | number | boolean> | undefined
  let n = 0
  for (const key in attrs) {
    if (n >= MAX_WIRE_ATTRIBUTES) break
    const value = attrs[key]
    let kept: string | number | boolean
    if (typeof value === 'string') kept = value.slice(0, MAX_WIRE_TEXT)
    else if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') kept = value
    else continue
    out ??= {}
    out[key.slice(0, MAX_WIRE_KEY)] = kept
    n++
  }
  return out == null ? {} : { attributes: out }
}
