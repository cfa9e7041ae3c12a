// node bench/sync-forward.mjs — how long one write takes to reach every peer of a mesh, and the
// bytes it costs, with MeshProvider forwarding (a change travels on from the peer that received
// it, issue 16) against the old path (`forward: false`: peers not linked to the author wait for
// their own anti-entropy round) in the same run, arms alternating.
//
// Topologies on the in-memory transport with a fixed one-way latency per message:
// - a line of 6 docs (5 hops), a write at one end, timed to the other;
// - 50 peers with ~16 links each (every peer links to 8 random others), a write on one, timed to all.
// Each write is made on a doc just synced ("active") and after the docs sat idle long enough for
// anti-entropy to back off to RESYNC_BACKOFF_MAX ("idle"). Anti-entropy runs at RESYNC_MS, much
// shorter than the app's 15 s so the old path finishes in a bench: its times scale with the
// interval (×(15000 / RESYNC_MS) in the app); forwarding does not depend on it.
// Writes bench/results/sync-forward.json.
import { loadavg } from 'node:os'
import { register } from 'tsx/esm/api'
import * as Y from 'yjs'
import { summary, writeResults } from './stats.mjs'

register()
await import('../src/lib/core/polyfills.ts')
const { MeshProvider, RESYNC_BACKOFF_MAX } = await import('../src/lib/memory/mesh-provider.ts')
const { MemoryNetwork, MemorySyncTransport } = await import('../src/lib/memory/memory-sync-transport.ts')

const QUICK = process.env.QUICK === '1'
const LATENCY_MS = 10
const RESYNC_MS = 500
const ROUNDS = QUICK ? 1 : 3
const log = (...a) => console.error('[bench:sync-forward]', ...a)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
async function until(cond, ms = 180_000) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timeout')
    await sleep(1)
  }
}
// A deterministic generator for the random mesh (same graph in both arms).
function rng(seed) {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 0x1_0000_0000
  }
}

async function build(ids, edges, forward) {
  const net = new MemoryNetwork({ autoLink: false })
  const peers = []
  for (const id of ids) {
    const t = new MemorySyncTransport(net, id, { latencyMs: LATENCY_MS })
    await t.start()
    const doc = new Y.Doc()
    const provider = new MeshProvider('registry', doc, t, { forward, limits: { resyncIntervalMs: RESYNC_MS } })
    peers.push({ id, t, doc, provider })
  }
  for (const [a, b] of edges) net.link(a, b)
  const degree = new Map(ids.map((id) => [id, edges.filter(([a, b]) => a === id || b === id).length]))
  await until(() => peers.every((p) => p.provider.syncedPeers.size === degree.get(p.id)))
  return {
    net,
    peers,
    async stop() {
      for (const p of peers) {
        p.doc.destroy()
        await p.t.stop()
      }
    }
  }
}

const wire = (net) => {
  let bytes = 0
  let payloads = 0
  for (const v of net.traffic.values()) {
    bytes += v.bytes
    payloads += v.payloads
  }
  return { bytes, payloads }
}

/** One write of a registry-sized record on `from`; ms until `targets` all hold it, bytes and payloads on the wire meanwhile, CPU ms of this process. */
async function oneWrite(mesh, from, targets, key) {
  const before = wire(mesh.net)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  from.doc.getMap('entries').set(key, { record: 'x'.repeat(1000) })
  await until(() => targets.every((p) => p.doc.getMap('entries').has(key)))
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const after = wire(mesh.net)
  return { ms, bytes: after.bytes - before.bytes, payloads: after.payloads - before.payloads, cpuMs: (cpu.user + cpu.system) / 1000 }
}

async function scenario(name, ids, edges, from, targets) {
  const out = {}
  for (const arm of ['forward', 'old']) out[arm] = { active: [], idle: [] }
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which arm goes first.
    for (const arm of round % 2 === 0 ? ['forward', 'old'] : ['old', 'forward']) {
      const mesh = await build(ids, edges, arm === 'forward')
      const src = mesh.peers.find((p) => p.id === from)
      const dst = mesh.peers.filter((p) => targets.includes(p.id))
      out[arm].active.push(await oneWrite(mesh, src, dst, `active-${round}`))
      // Idle until every channel's anti-entropy backed off to its longest wait.
      await sleep(RESYNC_MS * (2 * RESYNC_BACKOFF_MAX))
      out[arm].idle.push(await oneWrite(mesh, src, dst, `idle-${round}`))
      log(name, arm, `round ${round}:`, out[arm].active.at(-1).ms.toFixed(0), 'ms active,', out[arm].idle.at(-1).ms.toFixed(0), 'ms idle')
      await mesh.stop()
    }
  }
  const sum = (rows) => ({
    ms: summary(rows.map((r) => r.ms)),
    bytes: summary(rows.map((r) => r.bytes)),
    payloads: summary(rows.map((r) => r.payloads)),
    cpuMs: summary(rows.map((r) => r.cpuMs))
  })
  const result = { peers: ids.length, links: edges.length }
  for (const arm of ['forward', 'old']) result[arm] = { active: sum(out[arm].active), idle: sum(out[arm].idle) }
  for (const phase of ['active', 'idle']) {
    const f = result.forward[phase]
    const o = result.old[phase]
    result[`ratio_${phase}`] = {
      ms_old_over_forward: Math.round((o.ms.p50 / f.ms.p50) * 10) / 10,
      bytes_forward_over_old: Math.round((f.bytes.p50 / o.bytes.p50) * 100) / 100
    }
  }
  return result
}

const load = [loadavg()[0]]
const t0 = Date.now()

const line = ['l0', 'l1', 'l2', 'l3', 'l4', 'l5']
const lineEdges = line.slice(1).map((id, i) => [line[i], id])
const lineResult = await scenario('line6', line, lineEdges, 'l0', ['l5'])
load.push(loadavg()[0])

const rand = rng(16)
const meshIds = Array.from({ length: 50 }, (_, i) => `m${String(i).padStart(2, '0')}`)
const meshEdges = []
const has = (a, b) => meshEdges.some(([x, y]) => (x === a && y === b) || (x === b && y === a))
for (const a of meshIds) {
  let added = 0
  while (added < 8) {
    const b = meshIds[Math.floor(rand() * meshIds.length)]
    if (b === a || has(a, b)) continue
    meshEdges.push([a, b])
    added++
  }
}
const meshResult = await scenario(
  'mesh50',
  meshIds,
  meshEdges,
  'm00',
  meshIds.filter((id) => id !== 'm00')
)
// The flood's bound: the author sends on its links, every other peer on all but the first it heard from.
meshResult.flood_payloads_bound = 2 * meshEdges.length - (meshIds.length - 1)
load.push(loadavg()[0])

const result = {
  when: new Date().toISOString(),
  commit: process.env.GIT_COMMIT ?? null,
  settings: { latencyMs: LATENCY_MS, resyncIntervalMs: RESYNC_MS, backoffMax: RESYNC_BACKOFF_MAX, rounds: ROUNDS, recordBytes: 1000 },
  note: 'old = forward: false (anti-entropy only). Its times scale with resyncIntervalMs: the app uses 15000 ms, 30x this bench. ms: write to the last target holding it; bytes: JSON bytes of every sync message on the wire meanwhile (incl. anti-entropy rounds); cpuMs: this process (all peers).',
  load1: load,
  seconds: Math.round((Date.now() - t0) / 1000),
  line6: lineResult,
  mesh50: meshResult
}
console.log(JSON.stringify({ line6: { forward: lineResult.forward, old: lineResult.old }, mesh50_bound: meshResult.flood_payloads_bound }, null, 1))
if (!QUICK) writeResults('sync-forward', result)
else console.log(JSON.stringify(result, null, 1))
process.exit(0)
