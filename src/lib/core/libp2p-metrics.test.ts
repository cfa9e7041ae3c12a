import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'
import { afterAll, describe, expect, it } from 'vitest'
// @ts-expect-error ws ships no types here; only its WebSocket class is used
import { WebSocket as WsWebSocket } from 'ws'
import { TRANSFER_METRIC, gossipsubMetricsRegister, libp2pMetrics } from './libp2p-metrics.ts'
import { MetricsRegistry } from './metrics.ts'

const g = globalThis as { WebSocket?: unknown }
g.WebSocket ??= WsWebSocket

describe('libp2p metrics into the peer registry', () => {
  const stops: Array<() => Promise<void>> = []
  afterAll(async () => {
    await Promise.allSettled(stops.map((s) => s()))
  })

  const node = async (registry: MetricsRegistry, listen: string[] = []) => {
    const n = await createLibp2p({
      addresses: { listen },
      transports: [webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: { denyDialMultiaddr: () => false },
      metrics: libp2pMetrics(registry),
      services: {
        identify: identify(),
        ping: ping(),
        pubsub: gossipsub({ metricsRegister: gossipsubMetricsRegister(registry), metricsTopicStrToLabel: new Map(), allowPublishToZeroTopicPeers: true })
      }
    })
    stops.push(async () => {
      await n.stop()
    })
    return n
  }

  it('libp2p connection metrics, bytes per protocol and gossipsub metrics land in the registry', async () => {
    const ra = new MetricsRegistry()
    const rb = new MetricsRegistry()
    const a = await node(ra, ['/ip4/127.0.0.1/tcp/0/ws'])
    const b = await node(rb)
    const before = rb.snapshot()
    expect(Object.keys(before.counters).some((k) => k.startsWith(TRANSFER_METRIC))).toBe(false)
    await b.services.ping.ping(a.getMultiaddrs()[0] as never)
    const s = rb.snapshot()
    // libp2p's calculated group: one outbound connection now.
    expect(s.gauges['libp2p_connection_manager_connections{key="outbound"}']).toBe(1)
    // Bytes per protocol: ping sends 32 bytes and reads them back.
    expect(s.counters[`${TRANSFER_METRIC}{protocol="/ipfs/ping/1.0.0",direction="sent"}`]).toBeGreaterThanOrEqual(32)
    expect(s.counters[`${TRANSFER_METRIC}{protocol="/ipfs/ping/1.0.0",direction="received"}`]).toBeGreaterThanOrEqual(32)
    expect(s.counters[`${TRANSFER_METRIC}{protocol="global",direction="sent"}`]).toBeGreaterThan(0)
    // gossipsub registered through metricsRegister; its collect hook ran at snapshot time.
    expect(Object.keys(s.gauges).some((k) => k.startsWith('gossipsub_'))).toBe(true)
    expect(Object.keys(ra.snapshot().counters).some((k) => k.includes('received'))).toBe(true)
  })

  it('with the registry disabled, libp2p runs and nothing is recorded', async () => {
    const r = new MetricsRegistry()
    r.enabled = false
    const a = await node(new MetricsRegistry(), ['/ip4/127.0.0.1/tcp/0/ws'])
    const b = await node(r)
    const rtt = await b.services.ping.ping(a.getMultiaddrs()[0] as never)
    expect(rtt).toBeGreaterThanOrEqual(0)
    expect(r.snapshot().counters).toEqual({})
  })
})

describe("gossipsub's metrics register", () => {
  it('takes counts with and without labels, sets, observations and a reset, each into its own series', () => {
    const r = new MetricsRegistry()
    const reg = gossipsubMetricsRegister(r)
    const count = reg.gauge({ name: 'gs_count', help: 'h' })
    const byTopic = reg.gauge({ name: 'gs_by_topic', help: 'h', labelNames: ['topic'] })
    count.inc()
    count.inc(3)
    byTopic.inc({ topic: 'a' })
    byTopic.inc({ topic: 'a' }, 2)
    byTopic.inc({ topic: 'b' }, 5)
    const size = reg.gauge({ name: 'gs_size', help: 'h', labelNames: ['cache'] })
    size.set(9)
    size.set({ cache: 'seen' }, 7)
    size.set({ cache: 'seen' }, undefined)
    const h = reg.histogram({ name: 'gs_delay', help: 'h', labelNames: ['topic'], buckets: [0.1, 1] })
    h.observe(0.05)
    h.observe({ topic: 'a' }, 0.5)
    h.observe({ topic: 'a' }, undefined)
    const snap = r.snapshot()
    expect(snap.gauges).toMatchObject({ gs_count: 4, 'gs_by_topic{topic="a"}': 3, 'gs_by_topic{topic="b"}': 5, gs_size: 9, 'gs_size{cache="seen"}': 7 })
    expect(snap.histograms.gs_delay?.count).toBe(1)
    expect(snap.histograms['gs_delay{topic="a"}']?.count).toBe(1)
    expect(snap.histograms['gs_delay{topic="a"}']?.sum).toBeCloseTo(0.5)
    // After a reset an unlabelled series starts again from zero (its cached series is gone too).
    r.reset()
    count.inc(2)
    expect(r.snapshot().gauges.gs_count).toBe(2)
  })
})
