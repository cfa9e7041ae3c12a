import { describe, expect, it } from 'vitest'
import { layoutWaterfall, MIN_WIDTH, spanTime, type WaterfallSpan } from './waterfall-layout'

const T = 'a'.repeat(32)
let n = 0
function span(name: string, peer: string, startMs: number, endMs: number, parent?: WaterfallSpan): WaterfallSpan {
  n++
  return {
    traceId: T,
    spanId: n.toString(16).padStart(16, '0'),
    ...(parent ? { parentSpanId: parent.spanId } : {}),
    name,
    peer,
    startMs,
    endMs,
    status: 'ok',
    attributes: {}
  }
}

describe('waterfall layout', () => {
  it('groups by peer (this tab first), rows in tree order, bars on one time axis', () => {
    const run = span('task.run', 'me', 1000, 1100)
    const plan = span('plan', 'me', 1000, 1010, run)
    const step = span('step', 'me', 1010, 1100, run)
    const attempt = span('dispatch.attempt', 'me', 1012, 1098, step)
    const donorStep = span('donor.step', 'donor-b', 1020, 1090, attempt)
    const donorRun = span('donor.run', 'donor-b', 1030, 1080, donorStep)
    const early = span('donor.step', 'donor-a', 1005, 1006, attempt)
    // Given out of order, as a trace comes back.
    const l = layoutWaterfall([donorRun, attempt, early, plan, donorStep, step, run], 'me')
    expect(l.startMs).toBe(1000)
    expect(l.totalMs).toBe(100)
    expect(l.groups.map((g) => [g.peer, g.self])).toEqual([
      ['me', true],
      ['donor-a', false],
      ['donor-b', false]
    ])
    expect(l.groups[0].rows.map((r) => [r.span.name, r.depth])).toEqual([
      ['task.run', 0],
      ['plan', 1],
      ['step', 1],
      ['dispatch.attempt', 2]
    ])
    expect(l.groups[2].rows.map((r) => [r.span.name, r.depth])).toEqual([
      ['donor.step', 3],
      ['donor.run', 4]
    ])
    const dr = l.groups[2].rows[1]
    expect([dr.left, dr.width, dr.offsetMs, dr.durationMs]).toEqual([30, 50, 30, 50])
    // An instant still gets a visible bar, inside the axis.
    const e = l.groups[1].rows[0]
    expect(e.width).toBeGreaterThanOrEqual(MIN_WIDTH)
    expect(l.groups.flatMap((g) => g.rows).every((r) => r.left >= 0 && r.left + r.width <= 100 + 1e-9)).toBe(true)
    expect(l.ticks.map((t) => t.ms)).toEqual([0, 50, 100])
  })

  it('lays out spans whose parent is missing as roots, and survives an empty or zero-length trace', () => {
    const orphan = span('donor.step', 'x', 5, 5, { ...span('gone', 'x', 0, 0) })
    const l = layoutWaterfall([orphan])
    expect(l.groups[0].rows[0]).toMatchObject({ depth: 0, left: 0 })
    expect(l.groups[0].rows[0].width).toBeGreaterThan(0)
    expect(layoutWaterfall([])).toEqual({ startMs: 0, totalMs: 0, groups: [], ticks: [] })
  })

  it('formats span times', () => {
    expect(spanTime(0.25)).toBe('250 µs')
    expect(spanTime(3.14)).toBe('3.1 ms')
    expect(spanTime(420)).toBe('420 ms')
    expect(spanTime(12_500)).toBe('12.5 s')
  })
})
