// npm run bench:mesh — join time, WebRTC dial, stream RTTs, and the raw RTCDataChannel
// floor measured in the same run. Writes bench/results/mesh.json.
import { mkdirSync, writeFileSync } from 'node:fs'
import { startMesh, waitForFullMesh } from '../test/harness.mjs'
import { fmt, summary } from './stats.mjs'

const JOINS = Number(process.env.JOINS ?? 20)
const ROUND_TRIPS = Number(process.env.ROUND_TRIPS ?? 1000)
const mesh = await startMesh()
const result = { date: new Date().toISOString(), machine: '2 cores, headless Chromium', joins: JOINS, roundTrips: ROUND_TRIPS }

try {
  // An existing mesh of two tabs; then one tab at a time joins it and leaves.
  const base = [await mesh.newPeer(), await mesh.newPeer()]
  await waitForFullMesh(base)
  const baseIds = await Promise.all(base.map((p) => p.evaluate(() => window.zerostate.peerId)))

  const join = []
  const milestones = []
  const dial = []
  const dialOnly = []
  for (let i = 0; i < JOINS; i++) {
    const ctx = await mesh.newContext()
    const page = await mesh.newPeer({ context: ctx })
    const id = await page.evaluate(() => window.zerostate.peerId)
    await waitForFullMesh([page, ...base])
    const t = await page.evaluate(() => window.zerostate.mesh.timings())
    join.push(t.firstDirectAt)
    milestones.push(t.milestones)
    // Discovery → direct connection, on whichever side dialled (the smaller id).
    for (const [j, other] of base.entries()) {
      const dialler = id < baseIds[j] ? page : other
      const target = id < baseIds[j] ? baseIds[j] : id
      const t = await dialler.evaluate((peer) => window.zerostate.mesh.timings().peers.find((x) => x.peerId === peer), target)
      if (t?.discoveredAt != null && t.directAt != null && t.directAt >= t.discoveredAt) dial.push(t.directAt - t.discoveredAt)
      if (t?.dialStartedAt != null && t.directAt != null && t.directAt >= t.dialStartedAt) dialOnly.push(t.directAt - t.dialStartedAt)
    }
    await ctx.close()
    await Promise.all(base.map((p) => p.waitForFunction((gone) => !window.zerostate.peers().some((x) => x.id === gone), id, { timeout: 10_000 })))
  }
  result.joinMs = summary(join)
  result.joinMilestonesP50 = Object.fromEntries(['startCalled', 'libp2pStarted', 'relayConnected', 'webrtcAddress'].map((k) => [k, summary(milestones.map((m) => m[k]).filter((x) => x != null)).p50]))
  console.log(`join milestones (p50, ms after navigation): ${JSON.stringify(result.joinMilestonesP50)}`)
  result.dialMs = summary(dial)
  result.dialCallMs = summary(dialOnly)
  console.log(`join (page load → first direct WebRTC connection): ${fmt(result.joinMs)}`)
  console.log(`WebRTC dial (discovery → direct connection):       ${fmt(result.dialMs)}`)
  console.log(`WebRTC dial call alone (dial start → connection):  ${fmt(result.dialCallMs)}`)

  const [a, b] = base
  const openStream = await a.evaluate(([peer, n]) => window.zerostate.mesh.echoRtts(peer, { count: n }), [baseIds[1], ROUND_TRIPS])
  result.streamRttMs = summary(openStream.slice(10))
  const newStream = await a.evaluate(([peer, n]) => window.zerostate.mesh.echoRtts(peer, { count: n, newStreamPerRequest: true }), [baseIds[1], Math.min(ROUND_TRIPS, 300)])
  result.newStreamRttMs = summary(newStream.slice(5))

  // The floor: a raw RTCDataChannel echo between the same two tabs, signalled through Node.
  const offer = await a.evaluate(async () => {
    const pc = new RTCPeerConnection({ iceServers: [] })
    const dc = pc.createDataChannel('echo', { ordered: true })
    window.__raw = { pc, dc }
    await pc.setLocalDescription(await pc.createOffer())
    await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); else pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') r() }) })
    return pc.localDescription.toJSON()
  })
  const answer = await b.evaluate(async (o) => {
    const pc = new RTCPeerConnection({ iceServers: [] })
    pc.addEventListener('datachannel', (e) => { e.channel.onmessage = (m) => e.channel.send(m.data) })
    await pc.setRemoteDescription(o)
    await pc.setLocalDescription(await pc.createAnswer())
    await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); else pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') r() }) })
    window.__rawB = pc
    return pc.localDescription.toJSON()
  }, offer)
  const raw = await a.evaluate(async ([ans, n]) => {
    const { pc, dc } = window.__raw
    await pc.setRemoteDescription(ans)
    if (dc.readyState !== 'open') await new Promise((r) => { dc.onopen = r })
    const payload = crypto.getRandomValues(new Uint8Array(32))
    const times = []
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      const back = new Promise((r) => { dc.onmessage = r })
      dc.send(payload)
      await back
      times.push(performance.now() - t0)
    }
    pc.close()
    return times
  }, [answer, ROUND_TRIPS])
  result.rawDataChannelRttMs = summary(raw.slice(10))
  result.ratios = {
    streamRttP50VsRaw: Math.round((result.streamRttMs.p50 / result.rawDataChannelRttMs.p50) * 100) / 100,
    newStreamRttP50VsRaw: Math.round((result.newStreamRttMs.p50 / result.rawDataChannelRttMs.p50) * 100) / 100
  }
  result.goals = {
    joinP95Le1500: result.joinMs.p95 <= 1500,
    dialP95Le500: result.dialMs.p95 <= 500,
    streamRttP50Le2xRaw: result.ratios.streamRttP50VsRaw <= 2
  }
  console.log(`stream RTT, one open stream:                       ${fmt(result.streamRttMs)}`)
  console.log(`stream RTT, new stream per request:                ${fmt(result.newStreamRttMs)}`)
  console.log(`raw RTCDataChannel echo (floor, same run):         ${fmt(result.rawDataChannelRttMs)}`)
  console.log(`ratios vs floor (p50): open stream ${result.ratios.streamRttP50VsRaw}×, new stream ${result.ratios.newStreamRttP50VsRaw}×`)
  console.log(`goals: ${JSON.stringify(result.goals)}`)
} finally {
  await mesh.stop()
}
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/mesh.json', import.meta.url), JSON.stringify(result, null, 2) + '\n')
console.log('wrote bench/results/mesh.json')
