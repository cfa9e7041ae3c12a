/**
 * Span recording for one peer: spans of the runs it submits and of the steps it serves,
 * kept per trace in bounded memory, and the signed exchange of a donor's spans with its
 * result (`wire.ts`). Deliberately small and allocation-light (one object per span, no
 * context manager, no zone): a span's parent is passed explicitly.
 */
import type { Identity } from '../identity.ts'
import { logger } from '../logger.ts'
import { newSpanId, newTraceId, type TraceContext, formatTraceparent } from './context.ts'
import { ForeignSpans, type SpanRejection } from './foreign.ts'
import { type SealDelivery, SpanSealer } from './seal.ts'
import {
  MAX_WIRE_ATTRIBUTES,
  MAX_WIRE_KEY,
  MAX_WIRE_NAME,
  MAX_WIRE_SPANS,
  MAX_WIRE_TEXT,
  type SpanBundle,
  type SpanEnvelope,
  type SpanSeal,
  type WireSpan
} from './wire.ts'

const log = logger('core:trace')

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
  /** Traces kept (oldest dropped first). Default 1024: a tab with 256 tasks in flight still has room for each one's donor spans. */
  maxTraces?: number
  /** Spans kept per trace (more are dropped and counted). Default 1024. */
  maxSpansPerTrace?: number
  /** How long a donor gathers bundles for one submitter before it signs them in one seal. Default 50 ms. */
  sealDelayMs?: number
  /** Record spans (default true). Off, callers check `enabled` and record nothing (the runtime switch). */
  enabled?: boolean
}

/** Records spans of this peer and verified spans of others, per trace. */
export class Tracer {
  readonly #peer: string | (() => string)
  readonly #identity: Identity | undefined
  readonly #maxTraces: number
  readonly #maxSpans: number
  readonly #traces = new Map<string, Span[]>()
  readonly #scopes = new Map<string, TraceContext>()
  readonly #sealer: SpanSealer | undefined
  readonly #foreign: ForeignSpans
  /**
   * Whether new traces are recorded (runtime switch, `setObservability`): the app starts no run
   * span, the dispatcher none of its own, a donor records nothing even for a traced offer. Spans
   * of runs already under way still end; bundles already received are still verified.
   */
  enabled: boolean
  /**
   * Counters: started, dropped (over a cap), foreignAccepted / foreignRejected (bundles of other
   * peers' spans verified and kept / dropped), bundlesSealed (bundles sent), seals (signatures made),
   * and rejections by reason.
   */
  readonly stats = {
    started: 0,
    dropped: 0,
    foreignAccepted: 0,
    foreignRejected: 0,
    bundlesSealed: 0,
    seals: 0,
    rejectedBy: {} as Partial<Record<SpanRejection, number>>
  }

  constructor(init: TracerInit) {
    this.#peer = init.peer
    this.#identity = init.identity
    this.#maxTraces = init.maxTraces ?? 1024
    this.#maxSpans = init.maxSpansPerTrace ?? 1024
    this.enabled = init.enabled ?? true
    this.#sealer =
      init.identity != null
        ? new SpanSealer(init.identity, () => this.peer, {
            delayMs: init.sealDelayMs ?? 50,
            onSealed: () => {
              this.stats.seals++
            },
            onError: (err) => log('signing a seal of spans failed: %s', err instanceof Error ? err.message : String(err))
          })
        : undefined
    this.#foreign = new ForeignSpans({
      self: () => this.peer,
      adopt: (from, bundle, key) => this.#adopt(from, bundle, key),
      accepted: () => {
        this.stats.foreignAccepted++
      },
      rejected: (why) => this.#reject(why)
    })
  }

  #reject(why: SpanRejection): void {
    this.stats.foreignRejected++
    this.stats.rejectedBy[why] = (this.stats.rejectedBy[why] ?? 0) + 1
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
    // One literal of one shape (optional fields set after): no spread, no intermediate objects.
    const span: Span = {
      traceId: parent != null ? parent.traceId : newTraceId(),
      spanId: newSpanId(),
      name,
      peer: this.peer,
      startMs: t,
      endMs: t,
      status: 'ok',
      attributes: attributes ?? {}
    }
    if (parent != null) span.parentSpanId = parent.spanId
    if (kind != null) span.kind = kind
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
   * The spans this peer recorded of one step (a donor's), for the submitter `to`: at most
   * MAX_WIRE_SPANS, attributes clamped to the wire's bounds, numbered for `to` and sent
   * unsigned with the result; their signature follows in a seal handed to `deliver`
   * (seal.ts). Undefined without an identity (nothing is sent then).
   */
  seal(traceId: string, spans: readonly (ActiveSpan | Span)[], to: string, deliver: SealDelivery): SpanBundle | undefined {
    const sealer = this.#sealer
    if (sealer == null || spans.length === 0) return undefined
    const wire: WireSpan[] = []
    for (const x of spans.slice(-MAX_WIRE_SPANS)) {
      const s = x instanceof ActiveSpan ? x.span : x
      if (s.traceId !== traceId) continue
      // Keys in WireSpanSchema's order: the digest is over the JSON the submitter parses.
      wire.push({
        spanId: s.spanId,
        ...(s.parentSpanId != null ? { parentSpanId: s.parentSpanId } : {}),
        name: s.name.slice(0, MAX_WIRE_NAME),
        startMs: micro(s.startMs),
        endMs: micro(Math.max(s.startMs, s.endMs)),
        status: s.status,
        ...wireAttributes(s.attributes)
      })
    }
    if (wire.length === 0) return undefined
    this.stats.bundlesSealed++
    return sealer.bundle(to, traceId, wire, deliver)
  }

  /** Seal now whatever bundles wait for their seal (before a donor stops). */
  flushSeals(): void {
    this.#sealer?.flushAll()
  }

  /**
   * Take the spans `from` sent with its result, to be verified later (when the trace is read,
   * or when idle): cheap, so the task's path does not pay for the signature. Refused at once
   * (and counted) when the trace is not one of ours or too many bundles wait.
   * `expectKey`: the key trust knows for the user behind `from`; a seal by another is refused.
   */
  receive(from: string, bundle: SpanEnvelope, expectKey?: string): SpanRejection | undefined {
    const why = !this.#traces.has(bundle.traceId) ? 'unknown-trace' : this.#foreign.add(from, bundle, expectKey)
    if (why != null) this.#reject(why)
    return why
  }

  /** A donor's seal over bundles it sent us: kept until the bundles it covers are verified. */
  receiveSeal(from: string, seal: SpanSeal): void {
    this.#foreign.addSeal(from, seal)
  }

  /**
   * Verify the bundles of `traceId` waiting for it (all traces when omitted), waiting up to
   * `waitMs` for seals still on their way; verified spans are stored, the others dropped and
   * counted. `spans(traceId)` then holds every donor span known so far.
   */
  async settle(traceId?: string, waitMs = 0): Promise<void> {
    await this.#foreign.settle(traceId, waitMs)
  }

  /** Whether bundles wait for verification (of one trace, or any). */
  pending(traceId?: string): number {
    return this.#foreign.pending(traceId)
  }

  /** Store a verified bundle's spans, unless one would duplicate or hang under nothing; `from` recorded them. */
  #adopt(from: string, bundle: SpanBundle, key: string): SpanRejection | undefined {
    const local = this.#traces.get(bundle.traceId)
    if (local == null) return 'unknown-trace'
    const known = new Set<string>()
    for (const s of local) known.add(s.spanId)
    const mine = new Set<string>()
    for (const w of bundle.spans) {
      if (w.endMs < w.startMs) return 'malformed'
      if (known.has(w.spanId) || mine.has(w.spanId)) return 'duplicate'
      mine.add(w.spanId)
    }
    for (const w of bundle.spans) if (w.parentSpanId == null || !(known.has(w.parentSpanId) || mine.has(w.parentSpanId))) return 'orphan'
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
        attributes: { ...w.attributes, 'zerostate.signer': key },
        kind: w.parentSpanId != null && !mine.has(w.parentSpanId) ? 'server' : 'internal'
      })
    }
    return undefined
  }
}

/** Epoch ms to the microsecond (shorter on the wire; finer is noise across peers' clocks). */
const micro = (ms: number): number => Math.round(ms * 1000) / 1000

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
