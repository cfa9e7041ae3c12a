/**
 * Lays a trace's spans out for the waterfall: one group per peer (this tab first, then the
 * peers in the order they first did something), rows in tree order within a group (a span
 * after its parent, siblings by start), each bar placed on the trace's time axis in percent.
 */

/** The fields of a span the waterfall uses (API.md `Span`). */
export interface WaterfallSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  peer: string
  startMs: number
  endMs: number
  status: 'ok' | 'error'
  attributes: Record<string, unknown>
}

/** One bar. */
export interface WaterfallRow {
  span: WaterfallSpan
  /** Depth in the whole trace (the root is 0). */
  depth: number
  /** Start and length as percent of the trace's time axis. */
  left: number
  width: number
  /** ms since the trace's first span started, and the span's length. */
  offsetMs: number
  durationMs: number
}

/** A peer's spans. */
export interface WaterfallGroup {
  peer: string
  self: boolean
  rows: WaterfallRow[]
}

/** The laid-out trace. */
export interface WaterfallLayout {
  startMs: number
  totalMs: number
  groups: WaterfallGroup[]
  /** Axis ticks: ms since start and their position in percent. */
  ticks: Array<{ ms: number; at: number }>
}

/** A bar never gets narrower than this (percent), so an instant still shows and can be picked. */
export const MIN_WIDTH = 0.6

/** A step of 1, 2 or 5 × 10^n giving about `count` ticks over `total`. */
function tickStep(total: number, count: number): number {
  const raw = total / count
  const p = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p
  return 10 * p
}

/** Lay out `spans`; `self` is this tab's peer id (its group goes first). */
export function layoutWaterfall(spans: readonly WaterfallSpan[], self?: string): WaterfallLayout {
  if (spans.length === 0) return { startMs: 0, totalMs: 0, groups: [], ticks: [] }
  const startMs = Math.min(...spans.map((s) => s.startMs))
  const endMs = Math.max(...spans.map((s) => Math.max(s.startMs, s.endMs)))
  const totalMs = Math.max(endMs - startMs, 0.001)
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  const children = new Map<string | undefined, WaterfallSpan[]>()
  for (const s of spans) {
    // A span whose parent is not in the trace is laid out as a root.
    const parent = s.parentSpanId != null && byId.has(s.parentSpanId) ? s.parentSpanId : undefined
    let list = children.get(parent)
    if (list == null) {
      list = []
      children.set(parent, list)
    }
    list.push(s)
  }
  for (const list of children.values()) list.sort((a, b) => a.startMs - b.startMs || a.name.localeCompare(b.name))
  const ordered: Array<{ span: WaterfallSpan; depth: number }> = []
  const seen = new Set<string>()
  const walk = (parent: string | undefined, depth: number): void => {
    for (const s of children.get(parent) ?? []) {
      if (seen.has(s.spanId)) continue
      seen.add(s.spanId)
      ordered.push({ span: s, depth })
      walk(s.spanId, depth + 1)
    }
  }
  walk(undefined, 0)
  const groups = new Map<string, WaterfallGroup>()
  if (self != null && spans.some((s) => s.peer === self)) groups.set(self, { peer: self, self: true, rows: [] })
  const firstStart = new Map<string, number>()
  for (const s of spans) firstStart.set(s.peer, Math.min(firstStart.get(s.peer) ?? Number.POSITIVE_INFINITY, s.startMs))
  for (const peer of [...firstStart.keys()].sort((a, b) => firstStart.get(a)! - firstStart.get(b)!))
    if (!groups.has(peer)) groups.set(peer, { peer, self: peer === self, rows: [] })
  for (const { span, depth } of ordered) {
    const offsetMs = span.startMs - startMs
    const durationMs = Math.max(0, span.endMs - span.startMs)
    const left = Math.min(100 - MIN_WIDTH, (offsetMs / totalMs) * 100)
    const width = Math.min(100 - left, Math.max(MIN_WIDTH, (durationMs / totalMs) * 100))
    groups.get(span.peer)!.rows.push({ span, depth, left, width, offsetMs, durationMs })
  }
  const step = tickStep(totalMs, 4)
  const ticks: WaterfallLayout['ticks'] = []
  for (let ms = 0; ms <= totalMs + 1e-9; ms += step) ticks.push({ ms, at: (ms / totalMs) * 100 })
  return { startMs, totalMs, groups: [...groups.values()], ticks }
}

/** A duration for the axis and labels: µs under 1 ms, ms with one decimal under 10 ms, else whole ms or s. */
export function spanTime(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`
  if (ms < 10) return `${ms.toFixed(1)} ms`
  if (ms < 10_000) return `${Math.round(ms)} ms`
  return `${(ms / 1000).toFixed(1)} s`
}
