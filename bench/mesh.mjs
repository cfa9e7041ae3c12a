// npm run bench:mesh — join time, WebRTC dial, stream RTTs, and the raw RTCDataChannel
// floor measured in the same run. Writes bench/results/mesh.json.
import { startMesh, waitForFullMesh } from '../test/harness.mjs'
import { fmt, summary, writeResults } from './stats.mjs'

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
  const joinAll = []
  const milestones = []
  const dial = []
  const dialOnly = []
  const phases = []
  for (let i = 0; i < JOINS; i++) {
    const ctx = await mesh.newContext()
    const page = await mesh.newPeer({ context: ctx })
    const id = await page.evaluate(() => window.zerostate.peerId)
    await waitForFullMesh([page, ...base])
    const t = await page.evaluate(() => window.zerostate.mesh.timings())
    join.push(t.firstDirectAt)
    // As bench:hostile's joinMs: navigation start → direct links to both members.
    const links = baseIds.map((b) => t.peers.find((p) => p.peerId === b)?.directAt)
    if (links.every((x) => x != null)) joinAll.push(Math.max(...links))
    const min = (xs) => {
      const v = xs.filter((x) => x != null)
      return v.length > 0 ? Math.min(...v) : undefined
    }
    milestones.push({
      ...t.milestones,
      firstDiscovered: min(t.peers.map((p) => p.discoveredAt)),
      firstDialStarted: min(t.peers.map((p) => p.dialStartedAt)),
      firstDirect: t.firstDirectAt
    })
    // Discovery → direct connection, on whichever side dialled (the smaller id).
    for (const [j, other] of base.entries()) {
      const dialler = id < baseIds[j] ? page : other
      // The larger of two peer id strings (Math.max of strings is NaN: the dial figures read n=0).
      const target = [id, baseIds[j]].sort()[1]
      const t = await dialler.evaluate((peer) => window.zerostate.mesh.timings().peers.find((x) => x.peerId === peer), target)
      if (t?.discoveredAt != null && t.directAt != null && t.directAt >= t.discoveredAt) dial.push(t.directAt - t.discoveredAt)
      if (t?.dialStartedAt != null && t.directAt != null && t.directAt >= t.dialStartedAt) dialOnly.push(t.directAt - t.dialStartedAt)
      if (t?.phases != null) phases.push({ ...t.phases, byNewcomer: id < baseIds[j] })
    }
    await ctx.close()
    await Promise.all(base.map((p) => p.waitForFunction((gone) => !window.zerostate.peers().some((x) => x.id === gone), id, { timeout: 10_000 })))
  }
  result.joinMs = summary(join)
  result.joinAllMs = summary(joinAll)
  result.joinMilestonesP50 = Object.fromEntries(
    [
      'startCalled',
      'libp2pStarted',
      'relayConnected',
      'firstAnnounced',
      'firstPresenceHeard',
      'webrtcAddress',
      'firstDiscovered',
      'firstDialStarted',
      'firstDirect'
    ].map((k) => [k, summary(milestones.map((m) => m[k]).filter((x) => x != null)).p50])
  )
  console.log(`join milestones (p50, ms after navigation): ${JSON.stringify(result.joinMilestonesP50)}`)
  result.dialMs = summary(dial)
  result.dialCallMs = summary(dialOnly)
  console.log(`join (page load → first direct WebRTC connection): ${fmt(result.joinMs)}`)
  console.log(`join (page load → direct links to both members):   ${fmt(result.joinAllMs)}`)
  console.log(`WebRTC dial (discovery → direct connection):       ${fmt(result.dialMs)}`)
  console.log(`WebRTC dial call alone (dial start → connection):  ${fmt(result.dialCallMs)}`)
  const phaseNames = [...new Set(phases.flatMap((p) => Object.keys(p)))].filter((k) => k !== 'byNewcomer')
  result.dialPhasesP50 = Object.fromEntries(
    phaseNames.map((k) => [k, summary(phases.map((p) => p[k]).filter((x) => x != null)).p50]).sort((x, y) => x[1] - y[1])
  )
  console.log(`dial phases (p50, ms after the dial call): ${JSON.stringify(result.dialPhasesP50)}`)
  result.dialCallByRoleP50 = {
    newcomerDials: summary(phases.filter((p) => p.byNewcomer).map((p) => p.done)),
    memberDials: summary(phases.filter((p) => !p.byNewcomer).map((p) => p.done))
  }
  console.log(
    `dial call when the newcomer dials: ${fmt(result.dialCallByRoleP50.newcomerDials)}; when a member dials the newcomer: ${fmt(result.dialCallByRoleP50.memberDials)}`
  )

  const [a, b] = base
  const openStream = await a.evaluate(([peer, n]) => window.zerostate.mesh.echoRtts(peer, { count: n }), [baseIds[1], ROUND_TRIPS])
  result.streamRttMs = summary(openStream.slice(10))
  const newStream = await a.evaluate(
    ([peer, n]) => window.zerostate.mesh.echoRtts(peer, { count: n, newStreamPerRequest: true }),
    [baseIds[1], Math.min(ROUND_TRIPS, 300)]
  )
  result.newStreamRttMs = summary(newStream.slice(5))

  // The floors: raw RTCPeerConnection setup and RTCDataChannel echo between the same two tabs,
  // signalled through Node (non-trickle: each side gathers its candidates before answering).
  async function rawConnect() {
    const offer = await a.evaluate(async () => {
      window.__rawT0 = performance.now()
      const pc = new RTCPeerConnection({ iceServers: [] })
      const dc = pc.createDataChannel('echo', { ordered: true })
      window.__raw = { pc, dc }
      await pc.setLocalDescription(await pc.createOffer())
      await new Promise((r) => {
        if (pc.iceGatheringState === 'complete') r()
        else
          pc.addEventListener('icegatheringstatechange', () => {
            if (pc.iceGatheringState === 'complete') r()
          })
      })
      return pc.localDescription.toJSON()
    })
    const answer = await b.evaluate(async (o) => {
      window.__rawB?.close()
      const pc = new RTCPeerConnection({ iceServers: [] })
      pc.addEventListener('datachannel', (e) => {
        e.channel.onmessage = (m) => e.channel.send(m.data)
      })
      await pc.setRemoteDescription(o)
      await pc.setLocalDescription(await pc.createAnswer())
      await new Promise((r) => {
        if (pc.iceGatheringState === 'complete') r()
        else
          pc.addEventListener('icegatheringstatechange', () => {
            if (pc.iceGatheringState === 'complete') r()
          })
      })
      window.__rawB = pc
      return pc.localDescription.toJSON()
    }, offer)
    return a.evaluate(async (ans) => {
      const { pc, dc } = window.__raw
      await pc.setRemoteDescription(ans)
      if (dc.readyState !== 'open')
        await new Promise((r) => {
          dc.onopen = r
        })
      return performance.now() - window.__rawT0
    }, answer)
  }
  const rawSetup = []
  for (let i = 0; i < 10; i++) {
    rawSetup.push(await rawConnect())
    if (i < 9) await a.evaluate(() => window.__raw.pc.close())
  }
  result.rawConnectionSetupMs = summary(rawSetup)
  const raw = await a.evaluate(async (n) => {
    const { pc, dc } = window.__raw
    const payload = crypto.getRandomValues(new Uint8Array(32))
    const times = []
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      const back = new Promise((r) => {
        dc.onmessage = r
      })
      dc.send(payload)
      await back
      times.push(performance.now() - t0)
    }
    pc.close()
    return times
  }, ROUND_TRIPS)
  result.rawDataChannelRttMs = summary(raw.slice(10))
  result.ratios = {
    streamRttP50VsRaw: Math.round((result.streamRttMs.p50 / result.rawDataChannelRttMs.p50) * 100) / 100,
    newStreamRttP50VsRaw: Math.round((result.newStreamRttMs.p50 / result.rawDataChannelRttMs.p50) * 100) / 100,
    dialCallP50VsRawSetup: Math.round((result.dialCallMs.p50 / result.rawConnectionSetupMs.p50) * 100) / 100
  }
  result.goals = {
    joinP95Le1500: result.joinMs.p95 <= 1500,
    dialP95Le500: result.dialMs.p95 <= 500,
    streamRttP50Le2xRaw: result.ratios.streamRttP50VsRaw <= 2
  }
  console.log(`stream RTT, one open stream:                       ${fmt(result.streamRttMs)}`)
  console.log(`stream RTT, new stream per request:                ${fmt(result.newStreamRttMs)}`)
  console.log(`raw RTCDataChannel echo (floor, same run):         ${fmt(result.rawDataChannelRttMs)}`)
  console.log(
    `raw RTCPeerConnection setup (floor, same run):     ${fmt(result.rawConnectionSetupMs)}  → dial call/raw p50 ${result.ratios.dialCallP50VsRawSetup}×`
  )
  console.log(`ratios vs floor (p50): open stream ${result.ratios.streamRttP50VsRaw}×, new stream ${result.ratios.newStreamRttP50VsRaw}×`)
  console.log(`goals: ${JSON.stringify(result.goals)}`)
} finally {
  await mesh.stop()
}
writeResults('mesh', result)
