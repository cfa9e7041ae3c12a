// Dev tool: CPU profile of a page joining an existing two-tab mesh, from navigation to its
// direct links with both members. Prints the main thread's CPU by package or source
// room (source-mapped when the build has maps: `npx vite build --sourcemap`), a timeline
// in 250 ms slices with the busiest parts of each, the page's milestones and each dial's
// phases. Writes the raw profiles to /tmp/prof/join<round>.cpuprofile.
//   node bench/profile-join.mjs            (ROUNDS=3 by default)
//   PROFILE=0 node bench/profile-join.mjs  (join times and milestones only, no profiler: A/B runs)
import { mkdirSync, writeFileSync } from 'node:fs'
import { startMesh, waitForApi, waitForFullMesh } from '../test/harness.mjs'
import { groupOf } from './profile-map.mjs'

mkdirSync('/tmp/prof', { recursive: true })
const mesh = await startMesh()
try {
  const base = [await mesh.newPeer(), await mesh.newPeer()]
  const baseIds = await waitForFullMesh(base)
  for (let round = 0; round < Number(process.env.ROUNDS ?? 3); round++) {
    const ctx = await mesh.newContext()
    const page = await ctx.newPage()
    const profiling = process.env.PROFILE !== '0'
    const cdp = await ctx.newCDPSession(page)
    if (profiling) {
      await cdp.send('Profiler.enable')
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 })
      await cdp.send('Profiler.start')
    }
    await page.goto(mesh.url)
    await waitForApi(page)
    await waitForFullMesh([page, ...base])
    const t = await page.evaluate(() => {
      const t = window.zerostate.mesh.timings()
      // The rest of the app's start (src/lib/ui/boot.ts marks it), after the join or its bounds.
      for (const name of ['zerostate:app-start', 'zerostate:app-ready']) {
        const at = performance.getEntriesByName(name)[0]?.startTime
        if (at != null) t.milestones[name.slice('zerostate:'.length)] = at
      }
      return t
    })
    if (!profiling) {
      const end = Math.max(...t.peers.filter((p) => baseIds.includes(p.peerId)).map((p) => p.directAt ?? 0))
      const m = Object.fromEntries(Object.entries(t.milestones).map(([k, v]) => [k, Math.round(v)]))
      const dials = t.peers.filter((p) => baseIds.includes(p.peerId)).map((p) => Math.round((p.directAt ?? 0) - (p.dialStartedAt ?? p.discoveredAt ?? 0)))
      console.log(
        `join ${round}: ${Math.round(end)} ms  milestones ${JSON.stringify(m)} dial→direct ${dials.join(' ')} ms  load ${(await import('node:os')).loadavg()[0].toFixed(1)}`
      )
      await ctx.close()
      await Promise.all(base.map((p) => p.waitForFunction(() => window.zerostate.peers().filter((x) => !x.relay).length === 1, null, { timeout: 10_000 })))
      continue
    }
    const { profile } = await cdp.send('Profiler.stop')
    writeFileSync(`/tmp/prof/join${round}.cpuprofile`, JSON.stringify(profile))
    const end = Math.max(...t.peers.filter((p) => baseIds.includes(p.peerId)).map((p) => p.directAt ?? 0))
    const byNode = new Map(profile.nodes.map((n) => [n.id, n]))
    const groups = new Map()
    const slices = []
    let busy = 0
    // profile.startTime is µs on the monotonic clock, not the page's: the profiler starts just before navigation.
    let ts = profile.startTime
    for (let k = 0; k < profile.samples.length; k++) {
      ts += profile.timeDeltas[k]
      const at = (ts - profile.startTime) / 1000
      if (at > end) break
      const f = byNode.get(profile.samples[k]).callFrame
      if (f.functionName === '(idle)') continue
      const d = (profile.timeDeltas[k + 1] ?? 0) / 1000
      const g = f.functionName === '(program)' || f.functionName === '(garbage collector)' ? f.functionName : groupOf(f)
      busy += d
      groups.set(g, (groups.get(g) ?? 0) + d)
      const s = Math.floor(at / 250)
      slices[s] ??= new Map()
      slices[s].set(g, (slices[s].get(g) ?? 0) + d)
    }
    const ms = (x) => (x == null ? '-' : Math.round(x))
    console.log(`\n== join ${round}: both direct at ${ms(end)} ms, main thread busy ${ms(busy)} ms before it`)
    console.log(`milestones ${JSON.stringify(Object.fromEntries(Object.entries(t.milestones).map(([k, v]) => [k, ms(v)])))}`)
    for (const p of t.peers.filter((x) => baseIds.includes(x.peerId))) {
      console.log(
        `peer ${p.peerId.slice(-6)}: discovered ${ms(p.discoveredAt)} dial ${ms(p.dialStartedAt)} direct ${ms(p.directAt)} phases ${JSON.stringify(p.phases ?? {})}`
      )
    }
    console.log('-- CPU by part')
    for (const [g, v] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${v.toFixed(1).padStart(8)} ms  ${g}`)
    console.log('-- timeline (250 ms slices: busy ms, top parts)')
    slices.forEach((m, i) => {
      if (m == null) return
      const total = [...m.values()].reduce((a, b) => a + b, 0)
      const top = [...m]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([g, v]) => `${g} ${Math.round(v)}`)
      console.log(`${String(i * 250).padStart(5)} ${String(Math.round(total)).padStart(4)}  ${top.join(', ')}`)
    })
    await ctx.close()
    await Promise.all(base.map((p) => p.waitForFunction(() => window.zerostate.peers().filter((x) => !x.relay).length === 1, null, { timeout: 10_000 })))
  }
} finally {
  await mesh.stop()
}
