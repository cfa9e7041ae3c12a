// Dev tool: CPU profile of a page joining an existing two-tab mesh, from navigation to its
// first direct connection. Prints the functions with the most self time and a timeline.
// node bench/profile-join.mjs
import { startMesh, waitForFullMesh, waitForApi } from '../test/harness.mjs'
import { writeFileSync } from 'node:fs'

const mesh = await startMesh()
try {
  const base = [await mesh.newPeer(), await mesh.newPeer()]
  await waitForFullMesh(base)
  for (let round = 0; round < Number(process.env.ROUNDS ?? 3); round++) {
    const ctx = await mesh.newContext()
    const page = await ctx.newPage()
    const cdp = await ctx.newCDPSession(page)
    await cdp.send('Profiler.enable')
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 })
    await cdp.send('Profiler.start')
    await page.goto(mesh.url)
    await waitForApi(page)
    await waitForFullMesh([page, ...base])
    const t = await page.evaluate(() => window.zerostate.mesh.timings())
    const { profile } = await cdp.send('Profiler.stop')
    writeFileSync(`/tmp/prof/join${round}.cpuprofile`, JSON.stringify(profile))
    const end = t.firstDirectAt
    // profile.startTime is in µs on the monotonic clock; the page's timeOrigin differs: align on the first sample.
    const self = new Map()
    let total = 0
    const byNode = new Map(profile.nodes.map((n) => [n.id, n]))
    let ts = profile.startTime
    const navStartUs = profile.startTime // approximate: the profiler started just before navigation
    for (let k = 0; k < profile.samples.length; k++) {
      ts += profile.timeDeltas[k]
      const at = (ts - navStartUs) / 1000
      if (at > end) break
      const n = byNode.get(profile.samples[k])
      const f = n.callFrame
      if (f.functionName === '(idle)' || f.functionName === '(program)') continue
      const d = (profile.timeDeltas[k + 1] ?? 0) / 1000
      total += d
      const key = `${f.functionName || '(anon)'} ${f.url.split('/').pop()}:${f.lineNumber}`
      self.set(key, (self.get(key) ?? 0) + d)
    }
    console.log(`\n== join ${round}: first direct at ${end?.toFixed(0)} ms; milestones ${JSON.stringify(t.milestones)}; busy ${total.toFixed(0)} ms before it`)
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${v.toFixed(1).padStart(7)} ms  ${k}`)
    await ctx.close()
    await Promise.all(base.map((p) => p.waitForFunction(() => window.zerostate.peers().filter((x) => !x.relay).length === 1, null, { timeout: 10_000 })))
  }
} finally {
  await mesh.stop()
}
