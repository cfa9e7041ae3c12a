// Hostile bench (issue 11): replay every attack of the issue from a hostile Node peer against
// real tabs and the real relay, and write, per attack beside an idle control run in the same
// run (once first, once last), what the victim tab (A unless said) went through: longest
// main-thread task, timer lag, pings to its honest peer (B), an honest task, JS heap before /
// peak / after, a new tab's join time during the attack (with where the time went), the
// attacker struck and blocked, and — after reloading A — whether its registry, its shared
// namespace and its tasks are intact. Writes bench/results/hostile.json.
//
// Add an attack: push { item, name, victim?, run(s) → detail } to ATTACKS. run() gets the
// stage with a fresh hostile peer as s.h; the new tab joins concurrently from the start,
// unless the attack calls s.startJoin() itself once it is mounted (then it is timed from there).
import { cpus, loadavg } from 'node:os'
import { readFileSync } from 'node:fs'
import {
  deepContentJsonEntry,
  invalidPresence,
  namespaceUpdate,
  registryEntries,
  registryUpdate,
  reservationFlood,
  throwawayKey
} from '../test/hostile/attacks.mjs'
import {
  DISCOVERY_TOPIC,
  frame,
  IDENTIFY_PUSH_PROTOCOL,
  PRESENCE_TOPIC,
  RELAY_HOP_PROTOCOL,
  RELAY_LIMITS,
  SYNC_PROTOCOL,
  TASK_PROTOCOL
} from '../test/hostile/hostile-peer.mjs'
import { hostileStage, TEXT, until } from '../test/hostile/scenario.mjs'
import { joinTiming } from '../test/hostile/probe.mjs'
import { writeResults } from './stats.mjs'

const { generateKeyPair, publicKeyToProtobuf } = await import('@libp2p/crypto/keys')
const { multiaddr } = await import('@multiformats/multiaddr')

const BOMB = 8 * 1024 * 1024
const ONLY = process.env.ONLY == null ? undefined : new RegExp(process.env.ONLY, 'i') // a pattern of attack names, to replay a few

function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** What the relay's guard did so far, from its GET /metrics (relay/metrics.ts). */
async function relayGuard(url) {
  const body = await (await fetch(new URL('/metrics', url))).text()
  const num = (name, labels = '') => Number(body.match(new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\d+)`, 'm'))?.[1] ?? 0)
  const refused = Object.fromEntries(
    ['per-address', 'full', 'rate', 'unproven', 'pending', 'roster'].map((r) => [r, num('zerostate_relay_refused_total', `{reason="${r}"}`)])
  )
  return {
    blocked: num('zerostate_relay_peers_blocked_total'),
    squatters: num('zerostate_relay_squatters_blocked_total'),
    refused,
    evicted: num('zerostate_relay_reservations_evicted_total')
  }
}
function guardDelta(before, after) {
  const refused = Object.fromEntries(Object.entries(after.refused).map(([k, v]) => [k, v - (before.refused[k] ?? 0)]))
  return { blocked: after.blocked - before.blocked, squatters: after.squatters - before.squatters, refused, evicted: after.evicted - before.evicted }
}

/** A pubsub-peer-discovery record (protobuf Peer { bytes publicKey = 1; repeated bytes addrs = 2 }). */
function discoveryRecord(publicKey, addrs) {
  const out = []
  const field = (tag, bytes) => {
    out.push(tag)
    let n = bytes.byteLength
    while (n >= 0x80) {
      out.push((n & 0x7f) | 0x80)
      n >>>= 7
    }
    out.push(n, ...bytes)
  }
  field(10, publicKey)
  for (const a of addrs) field(18, a)
  return Uint8Array.from(out)
}

async function forgedDiscovery(h, n) {
  for (let i = 0; i < n; i++) {
    const key = await generateKeyPair('Ed25519')
    const addrs = [
      multiaddr(`/ip4/10.0.${i % 250}.1/tcp/${1000 + i}/ws`).bytes,
      multiaddr(`/ip4/192.168.7.${i % 250}/tcp/22/ws/p2p/${h.relayPeerId}/p2p-circuit/webrtc`).bytes
    ]
    await h.publish(DISCOVERY_TOPIC, discoveryRecord(publicKeyToProtobuf(key.publicKey), addrs)).catch(() => {})
  }
  await h.publish(DISCOVERY_TOPIC, discoveryRecord(publicKeyToProtobuf(h.node.peerId.publicKey), [multiaddr('/ip4/10.9.9.9/tcp/80/ws').bytes])).catch(() => {})
}

/** The WebRTC connection ids a page holds, per remote peer. */
const webrtcConns = (page) =>
  page.evaluate(() =>
    Object.fromEntries(
      window.zerostate.mesh.libp2p
        .getConnections()
        .filter((c) => c.status === 'open' && c.limits == null && /\/webrtc/.test(c.remoteAddr.toString()))
        .map((c) => [c.remotePeer.toString(), c.id])
    )
  )

const idle = (name) => ({
  item: 0,
  name,
  noHostile: true,
  async run() {
    await sleep(3000)
    return {}
  }
})

const ATTACKS = [
  idle('idle control'),
  {
    item: 8,
    name: 'keep-alive stall (A main thread blocked 1.5 s, 3 times)',
    noHostile: true,
    async run(s) {
      const before = await webrtcConns(s.a)
      for (let i = 0; i < 3; i++) {
        await s.a.evaluate(() => {
          const end = performance.now() + 1500
          while (performance.now() < end) {
            /* busy */
          }
        })
        await sleep(1000)
      }
      await sleep(2000)
      const after = await webrtcConns(s.a)
      return { linkToBKept: before[s.idB] != null && after[s.idB] === before[s.idB] }
    }
  },
  ...[
    [2, 'task length-prefix bomb (8 MiB of 0x80)', TASK_PROTOCOL],
    [2, 'sync length-prefix bomb (8 MiB of 0x80)', SYNC_PROTOCOL],
    [2, 'identify-push length-prefix bomb (8 MiB of 0x80)', IDENTIFY_PUSH_PROTOCOL]
  ].map(([item, name, protocol]) => ({
    item,
    name,
    async run(s) {
      await s.h.dialDirect(s.idA)
      return await s.h.lengthPrefixBomb(s.idA, protocol, { bytes: BOMB })
    }
  })),
  {
    item: 2,
    name: 'relay hop length-prefix bomb (8 MiB of 0x80)',
    relayVictim: true,
    async run(s) {
      const cpu0 = cpuSeconds(s.mesh.relay.process.pid)
      const r = await s.h.lengthPrefixBomb(s.h.relayConnection(), RELAY_HOP_PROTOCOL, { bytes: BOMB })
      return { ...r, relayCpuS: Math.round((cpuSeconds(s.mesh.relay.process.pid) - cpu0) * 100) / 100 }
    }
  },
  ...[
    [12, 'task invalid frames (20 schema-breaking frames)', TASK_PROTOCOL, '{"type":"offer","rid":"x"}'],
    [12, 'sync invalid frames (up to 20 schema-breaking frames, a new stream for each)', SYNC_PROTOCOL, '{"type":"step9","doc":"registry"}']
  ].map(([item, name, protocol, body]) => ({
    item,
    name,
    async run(s) {
      let written = 0
      let streams = 0
      if (protocol === SYNC_PROTOCOL) {
        // The sync transport resets a stream at its first invalid frame: a repeat offender opens
        // another, one frame each (until the block refuses it).
        for (let i = 0; i < 20; i++) {
          const raw = await s.h.openRaw(s.idA, protocol, { signal: AbortSignal.timeout(3000) }).catch(() => undefined)
          if (raw == null) break
          streams++
          if (raw.write(frame(body))) written++
          await Promise.race([raw.closed, sleep(2000)])
        }
      } else {
        const raw = await s.h.openRaw(s.idA, protocol)
        streams = 1
        for (let i = 0; i < 20; i++) if (raw.write(frame(body))) written++
      }
      await until(async () => ((await s.metrics())['mesh.peers.blocked'] ?? 0) > (s.before['mesh.peers.blocked'] ?? 0), { message: 'block' }).catch(() => {})
      return { written, streams, reconnected: await s.h.canConnect(s.idA, { timeout: 3000 }) }
    }
  })),
  {
    item: 3,
    name: 'task-offer flood (300 offers to the donor B on one stream)',
    victim: 'b',
    async run(s) {
      const agentId = await s.b.evaluate(() => window.zerostate.agents.list().find((a) => a.bundled && a.capabilities.includes('word-count'))?.id)
      const raw = await s.h.openRaw(s.idB, TASK_PROTOCOL)
      let sent = 0
      for (let i = 0; i < 300; i++) {
        const offer = {
          type: 'offer',
          rid: `flood-${i}`,
          taskId: `t${i}`,
          stepId: 's1',
          attempt: 1,
          idempotencyKey: `k${i}`,
          agentId,
          input: TEXT,
          deadline: Date.now() + 60_000
        }
        if (!raw.write(frame(JSON.stringify(offer)))) break
        sent++
      }
      await Promise.race([raw.closed, sleep(5000)])
      const served = await s.b.evaluate(() => window.zerostate.donation?.().served ?? null)
      return { offersSent: sent, answers: raw.received().length, bServed: served }
    }
  },
  {
    item: 11,
    name: 'agent-fetch amplification (100 requests to the donor B)',
    victim: 'b',
    async run(s) {
      const agentId = await s.b.evaluate(() => window.zerostate.agents.list().find((a) => a.bundled)?.id)
      const raw = await s.h.openRaw(s.idB, TASK_PROTOCOL)
      let sent = 0
      for (let i = 0; i < 100; i++) {
        const f = frame(JSON.stringify({ type: 'agent-fetch', rid: `amp-${i}`, agentId }))
        if (!raw.write(f)) break
        sent += f.byteLength
      }
      await Promise.race([raw.closed, sleep(5000)])
      const received = raw.received().reduce((n, c) => n + c.byteLength, 0)
      return { requestBytes: sent, answerBytes: received, amplification: Math.round((received / Math.max(1, sent)) * 10) / 10 }
    }
  },
  {
    item: 11,
    name: 'sync step-1 amplification (200 empty state vectors asking for the registry, one stream)',
    async run(s) {
      const raw = await s.h.openRaw(s.idA, SYNC_PROTOCOL)
      let sent = 0
      // An empty state vector (one varint 0) asks for the whole doc.
      for (const msg of [{ type: 'open', doc: 'registry' }, ...Array.from({ length: 200 }, () => ({ type: 'step1', sv: 'AA==' }))]) {
        const f = frame(JSON.stringify(msg))
        if (!raw.write(f)) break
        sent += f.byteLength
      }
      await until(async () => ((await s.metrics())['mesh.peers.blocked'] ?? 0) > (s.before['mesh.peers.blocked'] ?? 0), { message: 'block' }).catch(() => {})
      await Promise.race([raw.closed, sleep(3000)])
      const received = raw.received().reduce((n, c) => n + c.byteLength, 0)
      const m = await s.metrics()
      return {
        requestBytes: sent,
        answerBytes: received,
        amplification: Math.round((received / Math.max(1, sent)) * 10) / 10,
        overBudget: (m['memory.sync.step1OverBudget'] ?? 0) - (s.before['memory.sync.step1OverBudget'] ?? 0),
        coalesced: (m['memory.sync.step1Coalesced'] ?? 0) - (s.before['memory.sync.step1Coalesced'] ?? 0)
      }
    }
  },
  {
    item: 9,
    name: 'gossip flood (40 × 20 KB, 10 × 200 KB, 60 invalid presence)',
    async run(s) {
      s.startJoin()
      let published = 0
      for (let i = 0; i < 110; i++) {
        const data = i < 40 ? new Uint8Array(20_000).fill(0x7b) : i < 50 ? new Uint8Array(200_000).fill(0x7b) : invalidPresence(i)
        await s.h
          .publish(PRESENCE_TOPIC, data)
          .then(() => published++)
          .catch(() => {})
        if (i % 10 === 9) await sleep(100)
      }
      await sleep(1500)
      const m = await s.metrics()
      return { published, tooLargeAtA: m['mesh.gossip.rejected.too-large'] ?? 0, invalidAtA: m['mesh.presence.invalid'] ?? 0 }
    }
  },
  {
    item: 10,
    name: 'forged discovery flood (200 forged records, then 200 more during the join)',
    async run(s) {
      const dials0 = (await s.metrics())['mesh.dial.attempts'] ?? 0
      // An attacker floods the tabs it reaches: wait until A takes the topic from it (its
      // subscription crosses the direct link), or 10 s.
      const pubsub = s.h.node.services.pubsub
      const aSubscribed = () => pubsub.getSubscribers(DISCOVERY_TOPIC).some((p) => p.toString() === s.idA)
      const t0 = Date.now()
      while (!aSubscribed() && Date.now() - t0 < 10_000) await sleep(100)
      const direct = s.h.node.getConnections().some((c) => c.remotePeer.toString() === s.idA && c.status === 'open' && c.limits == null)
      const subscribed = aSubscribed()
      await forgedDiscovery(s.h, 200)
      s.startJoin()
      await forgedDiscovery(s.h, 200)
      await s.joined()
      return { dialsByA: ((await s.metrics())['mesh.dial.attempts'] ?? 0) - dials0, directToA: direct, aSubscribed: subscribed }
    }
  },
  {
    item: 7,
    name: 'relay admission flood (200 throwaway identities reserving)',
    relayVictim: true,
    async run(s) {
      const relays = (await (await fetch(new URL('/zerostate/relays.json', s.mesh.url))).json()).relays
      const cpu0 = cpuSeconds(s.mesh.relay.process.pid)
      const guard0 = await relayGuard(s.mesh.url)
      const flood = await reservationFlood(relays, 200, { concurrency: 8 })
      s.startJoin()
      await s.joined()
      // The flood stays connected: the relay blocks the holders that never gossip a presence
      // once their grace (RELAY_LIMITS.presenceGraceMs, 10 s) is over, down to the few an
      // address may hold (unprovenTolerated). Wait for that, or 30 s.
      const lapsing = flood.reserved - RELAY_LIMITS.unprovenTolerated
      const t0 = Date.now()
      let squatters = 0
      while (Date.now() - t0 < 30_000) {
        squatters = (await relayGuard(s.mesh.url)).squatters - guard0.squatters
        if (squatters >= lapsing) break
        await sleep(250)
      }
      const lapsedAfterMs = Date.now() - t0
      const relayCpuS = Math.round((cpuSeconds(s.mesh.relay.process.pid) - cpu0) * 100) / 100
      await flood.stop()
      return { reserved: flood.reserved, refused: flood.refused, floodMs: flood.ms, squattersBlocked: squatters, lapsedAfterMs, relayCpuS }
    }
  },
  {
    item: 6,
    name: 'self-reported capacity (1,024 free workers; 4 load-balanced tasks)',
    async run(s) {
      // 1,024 workers: more than any peer of this code claims (at most 128: 8 call slots each, 1,024 slots).
      const stop = s.h.keepAnnouncing({ capabilities: ['word-count', 'text-stats'], donating: true, freeWorkers: 1024, workers: 1024 }, 1000)
      const listed = await s.a
        .waitForFunction((id) => window.zerostate.peers().some((p) => p.id === id && p.donating), s.h.peerId, { timeout: 10_000 })
        .then(() => true)
        .catch(() => false)
      const tasks = []
      for (let i = 0; i < 4; i++) tasks.push(await s.honestTask({ strategy: 'load-balanced' }))
      stop()
      const m = await s.metrics()
      return {
        claim: { workers: 1024, freeWorkers: 1024 },
        listedAsDonorAtA: listed,
        presenceRefusedAtA: (m['mesh.presence.invalid'] ?? 0) - (s.before['mesh.presence.invalid'] ?? 0),
        tasksOk: tasks.filter((t) => t.status === 'succeeded').length,
        tasks: tasks.length,
        offersToHostile: s.h.observed().taskStreamsIn,
        servedByHostile: tasks.filter((t) => t.peer === s.h.peerId).length
      }
    }
  },
  {
    item: 4,
    name: 'capability takeover (512 signed entries from 2 fresh keys, word-count at price 0)',
    async run(s) {
      const records = []
      for (const k of [await throwawayKey(), await throwawayKey()]) records.push(...(await registryEntries(k, 256, { capability: 'word-count' })))
      const update = registryUpdate(records)
      const pushed = await s.h.pushSync(s.idA, 'registry', update)
      await sleep(2000)
      const tasks = {}
      for (const strategy of ['balanced', 'cost', 'speed']) tasks[strategy] = (await s.honestTask({ strategy })).status
      return { updateBytes: update.byteLength, reset: pushed.reset, agentsAtA: await s.a.evaluate(() => window.zerostate.agents.list().length), tasks }
    }
  },
  {
    item: 5,
    name: 'over-quota entries (600 × ~12 KB signed entries from one key, as sync step 2)',
    async run(s) {
      const records = await registryEntries(await throwawayKey(), 600, { capability: 'word-count', pad: 12_000, prefix: 'q' })
      const update = registryUpdate(records)
      const pushed = await s.h.pushSync(s.idA, 'registry', update, { type: 'step2' })
      await sleep(3000)
      return { updateMB: Math.round((update.byteLength / 2 ** 20) * 10) / 10, frames: pushed.frames, reset: pushed.reset }
    }
  },
  {
    item: 3,
    name: 'namespace bomb (600 signed namespaces in one update)',
    async run(s) {
      const update = await namespaceUpdate(await throwawayKey(), 600)
      const pushed = await s.h.pushSync(s.idA, 'memory-index', update)
      await sleep(3000)
      // A namespace value written afterwards must still reach B.
      await s.a.evaluate(() => window.zerostate.memory.set('board', 'after-bomb', 1))
      const reachedB = await s.b
        .waitForFunction(() => window.zerostate.memory.get('board', 'after-bomb') === 1, null, { timeout: 10_000, polling: 100 })
        .then(() => true)
        .catch(() => false)
      const namespacesAtA = await s.a.evaluate(() => window.zerostate.memory.namespaces?.().length ?? null)
      return { updateBytes: update.byteLength, reset: pushed.reset, namespacesAtA, writeAfterReachedB: reachedB }
    }
  },
  {
    item: 1,
    name: 'registry wipe (one entry, ContentJSON nested 20,000 deep)',
    async run(s) {
      const update = await deepContentJsonEntry(await throwawayKey(), 20_000)
      const pushed = await s.h.pushSync(s.idA, 'registry', update)
      await sleep(3000)
      return { updateBytes: update.byteLength, reset: pushed.reset, agentsAtA: await s.a.evaluate(() => window.zerostate.agents.list().length) }
    }
  },
  {
    item: 12,
    name: 'refused sync updates, repeated (3 updates announced at 1.5 MiB, over the 1 MiB cap an honest burst can pass)',
    async run(s) {
      const resets = []
      // A refusal an honest peer can cause strikes; the third blocks. (One that no honest peer can,
      // e.g. the registry-wipe record above, blocks at the first.)
      const update = new Uint8Array(1536 * 1024)
      for (let i = 0; i < 3; i++) {
        const pushed = await s.h.pushSync(s.idA, 'registry', update).catch((err) => ({ error: err.message }))
        resets.push(pushed.reset ?? pushed.error)
        await until(async () => ((await s.metrics())['memory.sync.rejectedUpdates'] ?? 0) >= (s.before['memory.sync.rejectedUpdates'] ?? 0) + i + 1, {
          timeout: 15_000,
          message: `refusal ${i + 1}`
        }).catch(() => {})
      }
      await until(async () => ((await s.metrics())['mesh.peers.blocked'] ?? 0) > (s.before['mesh.peers.blocked'] ?? 0), { message: 'block' }).catch(() => {})
      const audit = await s.a.evaluate((id) => window.zerostate.audit?.list({ peer: id }).map((r) => `${r.kind}: ${r.why}`), s.h.peerId)
      return { resets, reconnected: await s.h.canConnect(s.idA, { timeout: 3000 }), audit }
    }
  },
  idle('idle control (end)')
]

const INTERESTING = /strike|blocked|reject|refused|invalid|pruned|forged|quota|budget|oversized|guard/i
function diff(before, after) {
  return Object.fromEntries(
    Object.entries(after)
      .filter(([k, v]) => INTERESTING.test(k) && typeof v === 'number' && v !== (before[k] ?? 0))
      .map(([k, v]) => [k, v - (before[k] ?? 0)])
  )
}

const stage = await hostileStage()
const results = []
const load0 = loadavg()
// A replay of a few attacks (ONLY) goes to its own file, beside its own idle controls: the full run's figures stay.
const write = () =>
  writeResults(ONLY == null ? 'hostile' : 'hostile-replay', {
    date: new Date().toISOString(),
    machine: {
      cores: cpus().length,
      loadAverageAtStart: load0.map((x) => Math.round(x * 100) / 100),
      loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100)
    },
    note: 'Per attack: the victim tab (A unless said) measured from the outside while the attack ran; blocked: blocks by the victim (blockedBy: A, B, or the relay, read from its GET /metrics); blockedAtRelay: blocks by the relay in the same window, for every row (relay: what it blocked, refused and struck); "idle control" is the same window with no attack, in the same run (first and last). joinMs: a new tab, navigation start → direct links to A and B (its own clock, as bench:mesh), started during the attack; join.wallMs from before its context opened; join.peers says where the time went (ms after the new page navigation start). intactAfterReload: A reloaded after the attack; registry agents, the shared namespace value and an honest task; others: B reloaded (and donating again) and a new tab of a fresh profile, each with the registry agents and the shared namespace value.',
    attacks: results
  })
/** An attack that does not end in 3 minutes is cut (its row says so). */
const capped = (p, ms = 180_000) =>
  Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`attack still running after ${ms} ms`)), ms))])
try {
  for (const attack of ATTACKS) {
    if (ONLY != null && !ONLY.test(attack.name) && attack.item !== 0) continue
    const victim = attack.victim === 'b' ? stage.b : stage.a
    const before = await victim.evaluate(() => window.zerostate.metrics())
    const beforeB = attack.victim === 'b' ? before : await stage.b.evaluate(() => window.zerostate.metrics())
    // The relay strikes too (gossip it refuses, squatted reservations): read its guard around every row.
    const guard0 = await relayGuard(stage.mesh.url).catch(() => undefined)
    const h = attack.noHostile ? undefined : await capped(stage.hostile(), 60_000).catch(() => undefined)
    if (!attack.noHostile && h == null) {
      results.push({ item: attack.item, attack: attack.name, error: 'no hostile peer could start (relay unreachable)' })
      continue
    }
    if (h != null) await h.dialDirect(attack.victim === 'b' ? stage.idB : stage.idA).catch(() => {})
    let join
    const startJoin = () => {
      join ??= joinTiming(stage.mesh, [stage.idA, stage.idB], { members: [stage.a, stage.b] }).catch((err) => ({ ms: null, error: err.message }))
      return join
    }
    const s = {
      ...stage,
      probe: stage.probe,
      h,
      before,
      startJoin,
      joined: () => startJoin(),
      metrics: (page = victim) => page.evaluate(() => window.zerostate.metrics())
    }
    const r = await capped(
      stage.measure(async () => {
        if (!attack.name.includes('discovery') && !attack.name.includes('admission') && !attack.name.includes('gossip')) startJoin()
        const detail = await capped(attack.run(s)).catch((err) => ({ error: err.message }))
        const task = attack.victim === 'b' || attack.item === 6 || attack.item === 4 ? undefined : await stage.honestTask()
        return { detail, task: task?.status, join: await startJoin() }
      }),
      300_000
    ).catch((err) => ({ error: err.message }))
    if (r.error != null) {
      results.push({ item: attack.item, attack: attack.name, error: r.error })
      write()
      console.log(`${attack.name}: ${r.error}`)
      continue
    }
    const after = await victim.evaluate(() => window.zerostate.metrics())
    // The relay is the victim: what it blocked and refused, from its own /metrics.
    const guard =
      guard0 == null
        ? undefined
        : await relayGuard(stage.mesh.url)
            .then((g) => guardDelta(guard0, g))
            .catch((err) => ({ error: err.message }))
    const intact = await capped(stage.intactAfterReload({ everyTab: true }), 120_000).catch((err) => ({ ok: false, error: err.message }))
    const row = {
      item: attack.item,
      attack: attack.name,
      victim: attack.victim === 'b' ? 'B' : 'A',
      maxLongTaskMs: r.maxLongTaskMs,
      maxLagMs: r.maxLagMs,
      pings: { ok: r.pings.ok, failed: r.pings.failed, maxMs: r.pings.maxMs },
      honestTask: r.result.task,
      heapMB: { before: r.heapBeforeMB, peak: r.heapPeakMB, after: r.heapAfterMB },
      joinMs: r.result.join?.ms ?? null,
      joinWallMs: r.result.join?.wallMs ?? null,
      windowMs: r.ms,
      struck: diff(before, after),
      blocked: attack.relayVictim ? guard?.blocked : (after['mesh.peers.blocked'] ?? 0) - (before['mesh.peers.blocked'] ?? 0),
      blockedBy: attack.relayVictim ? 'relay' : attack.victim === 'b' ? 'B' : 'A',
      blockedAtRelay: guard?.blocked,
      relay: guard,
      attackerReconnects: h == null ? undefined : h.observed().connectionsOpened,
      intactAfterReload: intact,
      detail: r.result.detail,
      join: r.result.join
    }
    if (attack.victim === 'b') row.otherTabA = undefined
    else row.struckAtB = diff(beforeB, await stage.b.evaluate(() => window.zerostate.metrics()))
    results.push(row)
    write()
    await h?.stop().catch(() => {})
    console.log(
      `${String(row.item).padStart(2)} ${row.attack.slice(0, 70).padEnd(70)} task ${String(row.maxLongTaskMs).padStart(5)} ms · lag ${String(row.maxLagMs).padStart(5)} ms · pings ${row.pings.ok}/${row.pings.ok + row.pings.failed} · heap ${row.heapMB.before}→${row.heapMB.peak}→${row.heapMB.after} MB · join ${row.joinMs} ms · blocked ${row.blocked} (relay ${row.blockedAtRelay}) · intact ${intact.ok} · ${JSON.stringify(row.detail)}`
    )
  }
} finally {
  await stage.stop()
}
write()
process.exit(0)
