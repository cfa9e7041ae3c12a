// Dev tool: CPU profile of the submitter and one donor during a throughput burst. Prints the
// functions with the most self time in each. node --import tsx bench/profile-tasks.mjs [N]
import { startMesh, waitForFullMesh } from '../test/harness.mjs'
import { writeFileSync } from 'node:fs'

const N = Number(process.argv[2] ?? 3000)
const DONORS = Number(process.env.DONORS ?? 1)
const mesh = await startMesh()
try {
  const submitter = await mesh.newPeer()
  const donors = []
  for (let i = 0; i < DONORS; i++) donors.push(await mesh.newPeer())
  const ids = await waitForFullMesh([submitter, ...donors])
  const agent = await submitter.evaluate(() => window.zerostate.agents.list({ capability: 'hashing' })[0]?.id)
  await Promise.all(donors.map((d) => d.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))))
  await submitter.waitForFunction(
    (want) => window.zerostate.peers().filter((p) => want.includes(p.id) && p.donating && p.freeWorkers > 0).length === want.length,
    ids.slice(1)
  )
  const pages = [submitter, ...donors]
  const cdps = await Promise.all(
    pages.map(async (p) => {
      const c = await p.context().newCDPSession(p)
      await c.send('Profiler.enable')
      await c.send('Profiler.setSamplingInterval', { interval: 200 })
      return c
    })
  )
  await Promise.all(cdps.map((c) => c.send('Profiler.start')))
  const r = await submitter.evaluate(
    async ([agent, total]) => {
      let next = 0,
        failed = 0
      const t0 = performance.now()
      async function lane() {
        while (next < total) {
          next++
          try {
            await window.zerostate.submit({ description: 'hash', agent, input: `t${next}` }).done
          } catch {
            failed++
          }
        }
      }
      await Promise.all(Array.from({ length: 256 }, lane))
      return { perSecond: Math.round(total / ((performance.now() - t0) / 1000)), failed }
    },
    [agent, N]
  )
  console.log('throughput', r)
  for (const [i, p] of pages.entries()) {
    const m = await p.evaluate(() => window.zerostate.metrics())
    console.log(
      i === 0 ? 'submitter' : `donor${i - 1}`,
      JSON.stringify(Object.fromEntries(Object.entries(m).filter(([k]) => /presence|sync\.|dial|connections|journal|tab/.test(k))))
    )
  }
  const names = ['submitter', ...donors.map((_, i) => `donor${i}`)]
  for (const [i, c] of cdps.entries()) {
    const { profile } = await c.send('Profiler.stop')
    writeFileSync(`/tmp/prof/${names[i]}.cpuprofile`, JSON.stringify(profile))
    const self = new Map()
    const dt = new Map()
    for (let k = 0; k < profile.samples.length; k++) dt.set(profile.samples[k], (dt.get(profile.samples[k]) ?? 0) + (profile.timeDeltas[k] ?? 0))
    let total = 0
    for (const n of profile.nodes) {
      const t = (dt.get(n.id) ?? 0) / 1000
      total += t
      const f = n.callFrame
      const key = `${f.functionName || '(anon)'} ${f.url.split('/').pop()}:${f.lineNumber}`
      self.set(key, (self.get(key) ?? 0) + t)
    }
    console.log(`\n== ${names[i]} total ${total.toFixed(0)} ms`)
    for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${t.toFixed(0).padStart(7)} ms  ${k}`)
  }
} finally {
  await mesh.stop()
}
