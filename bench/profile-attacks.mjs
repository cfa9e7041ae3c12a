// Dev tool (issue 11): where the victim tab's main thread goes during an attack: the sync
// length-prefix bomb, the gossip flood, the registry wipe, the over-quota entries, the capability
// takeover and the namespace bomb, each as bench:hostile replays it. CPU profile of tab A over each
// attack; prints A's long tasks (PerformanceObserver) and, for the busy stretches of the profile
// with the most time outside the garbage collector, the functions with the most self time and the
// heaviest call paths. Readable names need an unminified build (ZS_NO_MINIFY=1 npm run build).
// node bench/profile-attacks.mjs   (PROFILE_OUT=dir keeps the .cpuprofile files; ONLY=<part of a name>; JOIN=1: a new tab joins during each attack, as in bench:hostile; STRETCHES=n: how many busy stretches to detail)
import { writeFileSync } from 'node:fs'
import { deepContentJsonEntry, invalidPresence, namespaceUpdate, registryEntries, registryUpdate, throwawayKey } from '../test/hostile/attacks.mjs'
import { PRESENCE_TOPIC, SYNC_PROTOCOL } from '../test/hostile/hostile-peer.mjs'
import { joinTiming } from '../test/hostile/probe.mjs'
import { hostileStage } from '../test/hostile/scenario.mjs'
import { frameName } from './profile-map.mjs'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// An attack either pushes one sync update (update) or runs itself (run), as bench/hostile.mjs does.
const ATTACKS = [
  {
    name: 'sync length-prefix bomb (8 MiB of 0x80)',
    async run(s, h) {
      const r = await h.lengthPrefixBomb(s.idA, SYNC_PROTOCOL, { bytes: 8 * 1024 * 1024 })
      return { bytes: r.written, reset: r.reset }
    }
  },
  {
    name: 'gossip flood (40 × 20 KB, 10 × 200 KB, 60 invalid presence)',
    async run(_s, h) {
      let bytes = 0
      for (let i = 0; i < 110; i++) {
        const data = i < 40 ? new Uint8Array(20_000).fill(0x7b) : i < 50 ? new Uint8Array(200_000).fill(0x7b) : invalidPresence(i)
        await h.publish(PRESENCE_TOPIC, data).catch(() => {})
        bytes += data.byteLength
        if (i % 10 === 9) await sleep(100)
      }
      return { bytes, reset: false }
    }
  },
  {
    name: 'registry wipe (one entry, ContentJSON nested 20,000 deep)',
    async update() {
      return { doc: 'registry', bytes: await deepContentJsonEntry(await throwawayKey(), 20_000) }
    },
    async after() {}
  },
  {
    name: 'over-quota entries (600 × ~12 KB from one key, as sync step 2)',
    async update() {
      const records = await registryEntries(await throwawayKey(), 600, { capability: 'word-count', pad: 12_000, prefix: 'q' })
      return { doc: 'registry', bytes: registryUpdate(records), opts: { type: 'step2' } }
    },
    async after() {}
  },
  {
    name: 'capability takeover (512 entries, 2 keys)',
    async update() {
      const records = []
      for (const k of [await throwawayKey(), await throwawayKey()]) records.push(...(await registryEntries(k, 256, { capability: 'word-count' })))
      return { doc: 'registry', bytes: registryUpdate(records) }
    },
    // As bench:hostile does: honest tasks under each strategy right after the push.
    async after(s) {
      for (const strategy of ['balanced', 'cost', 'speed']) await s.honestTask({ strategy })
    }
  },
  {
    name: 'namespace bomb (600 namespaces)',
    async update() {
      return { doc: 'memory-index', bytes: await namespaceUpdate(await throwawayKey(), 600) }
    },
    async after(s) {
      await s.a.evaluate(() => window.zerostate.memory.set('board', 'after-bomb', 1))
      await s.b.waitForFunction(() => window.zerostate.memory.get('board', 'after-bomb') === 1, null, { timeout: 10_000, polling: 100 }).catch(() => {})
    }
  }
]

/** Busy stretches (no idle sample) of a profile, with their samples. */
function stretches(profile) {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const out = []
  let cur
  let ts = profile.startTime
  for (let k = 0; k < profile.samples.length; k++) {
    ts += profile.timeDeltas[k]
    const node = byNode.get(profile.samples[k])
    const idle = node.callFrame.functionName === '(idle)'
    const d = (profile.timeDeltas[k + 1] ?? 0) / 1000
    if (idle) {
      if (cur != null) out.push(cur)
      cur = undefined
      continue
    }
    cur ??= { start: ts, ms: 0, gcMs: 0, samples: [] }
    cur.ms += d
    if (node.callFrame.functionName === '(garbage collector)') cur.gcMs += d
    cur.samples.push([node.id, d])
  }
  if (cur != null) out.push(cur)
  const name = (id) => frameName(byNode.get(id).callFrame)
  const path = (id) => {
    const p = []
    for (let n = id; n != null; n = parent.get(n)) p.unshift(name(n))
    return p.filter((x) => !x.startsWith('(root)'))
  }
  return { out, name, path }
}

function report(label, profile, longTasks) {
  const { out, name, path } = stretches(profile)
  // Ranked by their time outside the garbage collector: the profile also holds the forced GCs
  // that measure() runs for its heap figures before and after the window (stretches of ~200-600 ms
  // that are nearly all GC), which would otherwise top the list.
  out.sort((a, b) => b.ms - b.gcMs - (a.ms - a.gcMs))
  console.log(
    `\n== ${label}: long tasks (ms) ${JSON.stringify(longTasks.map(Math.round))}; busiest stretches outside GC ${out
      .slice(0, 5)
      .map((s) => `${(s.ms - s.gcMs).toFixed(0)} (+${s.gcMs.toFixed(0)} GC)`)
      .join(', ')} ms`
  )
  for (const s of out.slice(0, +(process.env.STRETCHES ?? 2))) {
    const self = new Map()
    const inclusive = new Map()
    for (const [id, d] of s.samples) {
      self.set(name(id), (self.get(name(id)) ?? 0) + d)
      const seen = new Set()
      for (const f of path(id)) {
        if (seen.has(f)) continue
        seen.add(f)
        inclusive.set(f, (inclusive.get(f) ?? 0) + d)
      }
    }
    console.log(`-- stretch of ${s.ms.toFixed(0)} ms (${s.gcMs.toFixed(0)} of it GC): self time`)
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${v.toFixed(1).padStart(8)} ms  ${k}`)
    console.log('-- inclusive time')
    for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${v.toFixed(1).padStart(8)} ms  ${k}`)
  }
}

const s = await hostileStage()
try {
  const cdp = await s.a.context().newCDPSession(s.a)
  await cdp.send('Profiler.enable')
  await cdp.send('Profiler.setSamplingInterval', { interval: 250 })
  for (const [i, attack] of ATTACKS.entries()) {
    if (process.env.ONLY != null && !attack.name.includes(process.env.ONLY)) continue
    const h = await s.hostile()
    await h.dialDirect(s.idA)
    const pushed = attack.run == null ? await attack.update() : undefined
    const before = await s.metrics()
    await cdp.send('Profiler.start')
    const r = await s.measure(async () => {
      // JOIN=1: a new tab joins during the attack, as in bench:hostile (A's side of the join is in the profile too).
      const join = process.env.JOIN == null ? undefined : joinTiming(s.mesh, [s.idA, s.idB], { members: [s.a, s.b] }).catch(() => undefined)
      const out =
        attack.run == null
          ? { reset: (await h.pushSync(s.idA, pushed.doc, pushed.bytes, pushed.opts)).reset, bytes: pushed.bytes.byteLength }
          : await attack.run(s, h)
      // A dev tool: the window bench:hostile gives each attack (it sleeps 2-3 s, then checks).
      await sleep(3000)
      await attack.after?.(s)
      await join
      return out
    })
    const m = await s.metrics()
    console.log(
      Object.fromEntries(
        Object.keys(m)
          .filter((k) => /strike|blocked|reject|pruned|invalid|overQuota|namespace/i.test(k) && m[k] !== before[k])
          .map((k) => [k, m[k] - (before[k] ?? 0)])
      )
    )
    const { profile } = await cdp.send('Profiler.stop')
    if (process.env.PROFILE_OUT != null) writeFileSync(`${process.env.PROFILE_OUT}/attack${i}.cpuprofile`, JSON.stringify(profile))
    const longTasks = await s.a.evaluate(() => window.__probe.longTasks.slice())
    console.log(
      `\n${attack.name}: ${r.result.bytes} bytes; maxLongTaskMs ${r.maxLongTaskMs}, maxLagMs ${Math.round(r.maxLagMs)}, pings ${r.pings.ok} ok / ${r.pings.failed} failed`
    )
    report(attack.name, profile, longTasks)
  }
} finally {
  await s.stop()
}
