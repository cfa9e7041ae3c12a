import { describe, expect, it } from 'vitest'
import { LATENCY_MS_BUCKETS } from '../core/index.ts'
import { DEFAULT_RULES, evaluate, parseRules, valueAt, type AlertRule } from './alerts.ts'
import type { Sample } from './metrics-samples.ts'

const T0 = 1_000_000_000_000
const bucket = (ms: number) => LATENCY_MS_BUCKETS.findIndex((b) => ms <= b)

/** One sample a second for `secs` seconds; each second `perSec(i)` decides what finished. */
function history(secs: number, perSec: (i: number) => { ok?: number; failed?: number; ms?: number; queue?: number; relay?: number }): Sample[] {
  const out: Sample[] = []
  let ok = 0
  let failed = 0
  const lat = new Array<number>(LATENCY_MS_BUCKETS.length + 1).fill(0)
  let latSum = 0
  for (let i = 0; i < secs; i++) {
    const s = perSec(i)
    ok += s.ok ?? 0
    failed += s.failed ?? 0
    const n = (s.ok ?? 0) + (s.failed ?? 0)
    if (n > 0) {
      const b = bucket(s.ms ?? 10)
      lat[b === -1 ? LATENCY_MS_BUCKETS.length : b]! += n
      latSum += n * (s.ms ?? 10)
    }
    out.push({
      t: T0 + i * 1000,
      boot: 'b1',
      ok,
      failed,
      lat: [...lat],
      latSum,
      runs: 0,
      queue: s.queue ?? 0,
      inFlight: 0,
      busy: 0,
      slots: 8,
      peers: {},
      conns: {},
      bytesIn: 0,
      bytesOut: 0,
      relay: s.relay ?? 1
    })
  }
  return out
}
const now = (h: Sample[]) => h.at(-1)!.t
const rule = (kind: AlertRule['kind']) => DEFAULT_RULES.find((r) => r.kind === kind)!
const firing = (r: AlertRule, h: Sample[]) => evaluate([r], h, now(h))[0]!

describe('alert rules', () => {
  it('failure rate over 10% for 5 min fires, with the figure; 5% does not; 4 min of history is not enough', () => {
    const bad = history(6 * 60 + 1, (i) => ({ ok: i % 5 === 0 ? 0 : 1, failed: i % 5 === 0 ? 1 : 0 })) // 20% fail
    const s = firing(rule('failure-rate'), bad)
    expect(s.firing).toBe(true)
    expect(s.value).toBeCloseTo(20, 0)
    expect(s.message).toContain('20.0%')
    const fine = history(6 * 60 + 1, (i) => ({ ok: i % 20 === 0 ? 0 : 1, failed: i % 20 === 0 ? 1 : 0 })) // 5%
    expect(firing(rule('failure-rate'), fine).firing).toBe(false)
    const short = history(4 * 60, (i) => ({ ok: i % 5 === 0 ? 0 : 1, failed: i % 5 === 0 ? 1 : 0 }))
    expect(firing(rule('failure-rate'), short).firing).toBe(false)
  })

  it('a failure burst shorter than the for-span does not fire', () => {
    // healthy for 5 min, then 2 min of failures
    const h = history(7 * 60, (i) => (i < 5 * 60 ? { ok: 1 } : { failed: 1 }))
    expect(firing(rule('failure-rate'), h).value).toBe(100)
    expect(firing(rule('failure-rate'), h).firing).toBe(false)
  })

  it('p95 over the threshold for the span fires; no tasks means no value and no alert', () => {
    const slow = history(3 * 60, () => ({ ok: 2, ms: 4000 }))
    const s = firing({ ...rule('p95'), threshold: 2000 }, slow)
    expect(s.firing).toBe(true)
    expect(s.value).toBeGreaterThan(2500)
    expect(s.value).toBeLessThanOrEqual(5000)
    expect(firing({ ...rule('p95'), threshold: 6000 }, slow).firing).toBe(false)
    const idle = history(3 * 60, () => ({}))
    expect(Number.isNaN(firing(rule('p95'), idle).value)).toBe(true)
    expect(firing(rule('p95'), idle).firing).toBe(false)
  })

  it('queue building up: at or over the threshold for the span and growing; a high but draining queue does not fire', () => {
    const growing = history(2 * 60, (i) => ({ queue: 5 + Math.floor(i / 10) }))
    expect(firing(rule('queue'), growing).firing).toBe(true)
    const draining = history(2 * 60, (i) => ({ queue: 30 - Math.floor(i / 10) }))
    expect(firing(rule('queue'), draining).firing).toBe(false)
    const dip = history(2 * 60, (i) => ({ queue: i === 100 ? 0 : 5 + i }))
    expect(firing(rule('queue'), dip).firing).toBe(false)
  })

  it('a history younger than the value span is read from its first sample', () => {
    const young = history(20, (i) => (i < 10 ? {} : { ok: 1, ms: 4000 }))
    const s = firing({ ...rule('p95'), threshold: 0, forMs: 0 }, young)
    expect(s.firing).toBe(true)
    expect(s.value).toBeGreaterThan(2500)
    expect(Number.isNaN(valueAt('p95', young, 0))).toBe(true)
  })

  it('relay unreachable for the span fires; one connected sample inside the span clears it', () => {
    const gone = history(60, () => ({ relay: 0 }))
    const s = firing(rule('relay'), gone)
    expect(s.firing).toBe(true)
    expect(s.message).toContain('No relay')
    const back = history(60, (i) => ({ relay: i === 50 ? 1 : 0 }))
    expect(firing(rule('relay'), back).firing).toBe(false)
  })

  it('disabled rules are not evaluated; counters that restart (a reload) are not read as negative', () => {
    expect(
      evaluate(
        [{ ...rule('relay'), enabled: false }],
        history(60, () => ({ relay: 0 })),
        T0 + 59_000
      )
    ).toEqual([])
    const h = history(120, () => ({ ok: 1 }))
    // A reload at 60 s: a new session whose counters start again from 0.
    const reloaded = h.map((s, i) => (i >= 60 ? { ...s, boot: 'b2', ok: s.ok - 60, failed: 0 } : s))
    expect(valueAt('failure-rate', reloaded, 119)).toBe(0)
  })

  it('saved rules are validated: malformed input falls back to the defaults', () => {
    const mine: AlertRule[] = [{ id: 'p95', kind: 'p95', enabled: false, threshold: 500, forMs: 120_000 }]
    expect(parseRules(mine)).toEqual(mine)
    expect(parseRules([{ id: 'x', kind: 'nope', enabled: true, threshold: 1, forMs: 1 }])).toEqual(DEFAULT_RULES)
    expect(parseRules([{ id: 'x', kind: 'p95', enabled: true, threshold: -1, forMs: 1 }])).toEqual(DEFAULT_RULES)
    expect(parseRules(undefined)).toEqual(DEFAULT_RULES)
  })
})
