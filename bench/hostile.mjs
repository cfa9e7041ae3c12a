// Hostile bench (issue 11): replay attacks from a hostile Node peer against real tabs and
// the real relay, and write, per attack beside an idle control run in the same run, what
// the victim tab (A) went through: longest main-thread task, timer lag, pings to its honest
// peer (B), JS heap before / peak / after, a new tab's join time during the attack, and
// whether the attacker was struck and blocked. Writes bench/results/hostile.json.
//
// Add an attack: push { name, run(stage) → { detail }, until?(stage) } to ATTACKS below;
// run() gets a fresh hostile peer as stage.h.
import { loadavg, cpus } from 'node:os'
import { readFileSync } from 'node:fs'
import { frame, IDENTIFY_PUSH_PROTOCOL, RELAY_HOP_PROTOCOL, SYNC_PROTOCOL, TASK_PROTOCOL } from '../test/hostile/hostile-peer.mjs'
import { hostileStage, until } from '../test/hostile/scenario.mjs'
import { joinTimeMs } from '../test/hostile/probe.mjs'
import { writeResults } from './stats.mjs'

const BOMB = 8 * 1024 * 1024

function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

const blockedOn = (page) => async () => {
  const m = await page.evaluate(() => window.zerostate.metrics())
  return (m['mesh.peers.blocked'] ?? 0) > 0
}

const ATTACKS = [
  {
    name: 'idle control',
    async run() {
      await new Promise((r) => setTimeout(r, 3000))
      return {}
    }
  },
  ...[
    ['task length-prefix bomb (8 MiB of 0x80)', TASK_PROTOCOL],
    ['sync length-prefix bomb (8 MiB of 0x80)', SYNC_PROTOCOL],
    ['identify-push length-prefix bomb (8 MiB of 0x80)', IDENTIFY_PUSH_PROTOCOL]
  ].map(([name, protocol]) => ({
    name,
    async run(s) {
      await s.h.dialDirect(s.idA)
      return await s.h.lengthPrefixBomb(s.idA, protocol, { bytes: BOMB })
    }
  })),
  {
    name: 'relay hop length-prefix bomb (8 MiB of 0x80)',
    async run(s) {
      const cpu0 = cpuSeconds(s.mesh.relay.process.pid)
      const r = await s.h.lengthPrefixBomb(s.h.relayConnection(), RELAY_HOP_PROTOCOL, { bytes: BOMB })
      return { ...r, relayCpuS: Math.round((cpuSeconds(s.mesh.relay.process.pid) - cpu0) * 100) / 100 }
    }
  },
  {
    name: 'task invalid frames (20 schema-breaking frames)',
    async run(s) {
      const raw = await s.h.openRaw(s.idA, TASK_PROTOCOL)
      for (let i = 0; i < 20; i++) raw.write(frame('{"type":"offer","rid":"x"}'))
      await until(blockedOn(s.a), { message: 'block' }).catch(() => {})
      return {}
    }
  },
  {
    name: 'agent-fetch amplification (100 requests to the donor B)',
    victim: 'b',
    async run(s) {
      const agentId = await s.b.evaluate(() => window.zerostate.agents.list().find((a) => a.bundled)?.id)
      await s.h.dialDirect(s.idB)
      const raw = await s.h.openRaw(s.idB, TASK_PROTOCOL)
      let sent = 0
      for (let i = 0; i < 100; i++) {
        const f = frame(JSON.stringify({ type: 'agent-fetch', rid: `amp-${i}`, agentId }))
        sent += f.byteLength
        if (!raw.write(f)) break
      }
      await Promise.race([raw.closed, new Promise((r) => setTimeout(r, 5000))])
      const received = raw.received().reduce((n, c) => n + c.byteLength, 0)
      return { requestBytes: sent, answerBytes: received, amplification: Math.round((received / Math.max(1, sent)) * 10) / 10 }
    }
  }
]

const stage = await hostileStage()
const results = []
try {
  for (const attack of ATTACKS) {
    const victim = attack.victim === 'b' ? stage.b : stage.a
    const before = await victim.evaluate(() => window.zerostate.metrics())
    const h = attack.name === 'idle control' ? undefined : await stage.hostile()
    const r = await stage.measure(async () => {
      const [detail, joinMs] = await Promise.all([attack.run({ ...stage, h }), joinTimeMs(stage.mesh, [stage.idA, stage.idB]).catch(() => null)])
      return { detail, joinMs }
    })
    const after = await victim.evaluate(() => window.zerostate.metrics())
    const strikes = Object.fromEntries(
      Object.entries(after)
        .filter(([k, v]) => k.startsWith('mesh.strikes.') && v !== (before[k] ?? 0))
        .map(([k, v]) => [k.slice('mesh.strikes.'.length), v - (before[k] ?? 0)])
    )
    const row = {
      attack: attack.name,
      victim: attack.victim === 'b' ? 'B' : 'A',
      maxLongTaskMs: r.maxLongTaskMs,
      maxLagMs: r.maxLagMs,
      pings: { ok: r.pings.ok, failed: r.pings.failed, maxMs: r.pings.maxMs },
      heapMB: { before: r.heapBeforeMB, peak: r.heapPeakMB, after: r.heapAfterMB },
      joinMs: r.result.joinMs,
      windowMs: r.ms,
      strikes,
      blocked: (after['mesh.peers.blocked'] ?? 0) - (before['mesh.peers.blocked'] ?? 0),
      ...r.result.detail
    }
    results.push(row)
    console.log(
      `${row.attack.padEnd(55)} longest task ${String(row.maxLongTaskMs).padStart(4)} ms · lag ${String(row.maxLagMs).padStart(4)} ms · pings ${row.pings.ok}/${row.pings.ok + row.pings.failed} · heap ${row.heapMB.before}→${row.heapMB.peak}→${row.heapMB.after} MB · join ${row.joinMs} ms · blocked ${row.blocked}`
    )
  }
} finally {
  await stage.stop()
}
writeResults('hostile', {
  date: new Date().toISOString(),
  machine: { cores: cpus().length, loadAverage: loadavg().map((x) => Math.round(x * 100) / 100) },
  note: 'Per attack: the victim tab (A unless said) measured from the outside while the attack ran; "idle control" is the same window with no attack, in the same run.',
  attacks: results
})
process.exit(0)
