// RTTs without ping streams (issue 16): a direct WebRTC link's round trip comes from the
// RTCPeerConnection stats the liveness monitor reads, the relay's WebSocket from yamux's PING
// frame; neither opens a stream. Real Chromium tabs, real relay.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { startMesh, waitForFullMesh, eventually } from './harness.mjs'

describe('round-trip times of a tab', () => {
  let mesh
  before(async () => {
    mesh = await startMesh()
  })
  after(async () => {
    await mesh?.stop()
  })

  it("reads a direct link's RTT from its WebRTC stats and pings the relay by yamux frame, with no ping stream", async () => {
    const ctxs = await Promise.all([0, 1].map(() => mesh.newContext()))
    const pages = await Promise.all(ctxs.map((context) => mesh.newPeer({ context })))
    try {
      const ids = await waitForFullMesh(pages, 30_000)
      const view = (page, other) =>
        page.evaluate((id) => {
          const z = window.zerostate
          const peers = z.peers()
          const m = z.metrics()
          return {
            peer: peers.find((p) => p.id === id),
            relay: peers.find((p) => p.relay),
            fromStats: m['mesh.rtt.fromStats'] ?? 0,
            pings: m['mesh.rtt.pings'] ?? 0
          }
        }, other)
      await eventually(
        async () => {
          const v = await Promise.all(pages.map((p, i) => view(p, ids[1 - i])))
          return v.every((x) => x.peer?.transport === 'webrtc' && typeof x.peer.rttMs === 'number' && x.fromStats > 0 && typeof x.relay?.rttMs === 'number')
        },
        { timeout: 20_000, message: 'an RTT on the direct link from its stats and on the relay link' }
      )
      const v0 = await Promise.all(pages.map((p, i) => view(p, ids[1 - i])))
      const t0 = Date.now()
      await new Promise((r) => setTimeout(r, 5000)) // a window to count pings over, not a wait for a condition
      const v = await Promise.all(pages.map((p, i) => view(p, ids[1 - i])))
      const seconds = (Date.now() - t0) / 1000
      for (let i = 0; i < v.length; i++) {
        // Loopback: a direct round trip of at most a few hundred ms even on a loaded machine.
        assert.ok(v[i].peer.rttMs >= 0 && v[i].peer.rttMs < 1000, `direct RTT ${v[i].peer.rttMs}`)
        // Only the relay's link is pinged (at most once a second); the direct one is measured by its stats
        // (pinging both made ~2 a second).
        const pings = v[i].pings - v0[i].pings
        assert.ok(pings <= seconds + 1, `${pings} pings in ${seconds.toFixed(1)} s: the direct link is pinged too`)
        assert.ok(v[i].fromStats > v0[i].fromStats, 'the direct link RTT keeps coming from its stats')
      }
    } finally {
      await Promise.all(ctxs.map((c) => c.close()))
    }
  })
})
