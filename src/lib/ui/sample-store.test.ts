import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { LATENCY_MS_BUCKETS } from '../core/index.ts'
import type { Sample } from './metrics-samples.ts'
import { SampleStore, untangle } from './sample-store.ts'

const sample = (t: number, boot: string, ok = 0): Sample => ({
  t,
  boot,
  ok,
  failed: 0,
  lat: new Array<number>(LATENCY_MS_BUCKETS.length + 1).fill(0),
  latSum: 0,
  runs: 0,
  queue: 0,
  inFlight: 0,
  busy: 0,
  slots: 0,
  peers: { webrtc: 1 },
  conns: {},
  bytesIn: 0,
  bytesOut: 0,
  relay: 1
})

describe('SampleStore (IndexedDB)', () => {
  it('appends, prunes what is older than the cut, and loads in time order', async () => {
    const store = new SampleStore()
    const now = 1_796_000_000_000
    await store.append([sample(now - 7_200_000, 'a'), sample(now - 1000, 'b', 1)], now - 3_600_000)
    await store.append([sample(now, 'b', 2)], now - 3_600_000)
    const got = await store.load(now - 3_600_000)
    expect(got.map((s) => s.ok)).toEqual([1, 2])
    // A later append keeps what is inside the hour.
    await store.append([sample(now + 1000, 'b', 3)], now + 1000 - 3_600_000)
    expect((await store.load(0)).map((s) => s.ok)).toEqual([1, 2, 3])
  })

  it('drops malformed rows instead of failing', async () => {
    const store = new SampleStore()
    const bad = { ...sample(5, 'x'), lat: 'nope' } as unknown as Sample
    await store.append([bad], 0)
    expect((await store.load(0)).some((s) => s.boot === 'x')).toBe(false)
  })

  it('untangle keeps one session per stretch of time', () => {
    const s = untangle([sample(1, 'a'), sample(3, 'a'), sample(2, 'b'), sample(4, 'c'), sample(5, 'c')])
    expect(s.map((x) => `${x.boot}${x.t}`)).toEqual(['a1', 'a3', 'c4', 'c5'])
  })
})
