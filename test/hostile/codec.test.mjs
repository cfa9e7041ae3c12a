// Issue 11 items 2 and 12, replayed with the real relay, real tabs and a hostile Node
// peer: a length prefix that never ends (8 MiB of 0x80) on our task, sync and plan
// protocols, on identify-push and on the relay's hop protocol. Each leaves the tab
// answering (pings to its peer go on), without a long stall or a heap jump, the
// attacker struck and blocked where the protocol is ours, and an honest task working.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { IDENTIFY_PUSH_PROTOCOL, PLAN_PROTOCOL, RELAY_HOP_PROTOCOL, SYNC_PROTOCOL, TASK_PROTOCOL } from './hostile-peer.mjs'
import { hostileStage, until } from './scenario.mjs'

const BOMB = 8 * 1024 * 1024
const MAX_STALL_MS = 200
const MAX_HEAP_GROWTH_MB = 50

/** CPU seconds a process has used (Linux). */
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

function assertTabUnhurt(r, what) {
  assert.equal(r.pings.failed, 0, `${what}: pings failed during the attack (${r.pings.errors.join('; ')})`)
  assert.ok(r.pings.ok >= 2, `${what}: only ${r.pings.ok} pings answered`)
  assert.ok(r.maxLongTaskMs < MAX_STALL_MS, `${what}: a ${r.maxLongTaskMs} ms long task`)
  assert.ok(r.heapPeakMB - r.heapBeforeMB < MAX_HEAP_GROWTH_MB, `${what}: heap ${r.heapBeforeMB} → peak ${r.heapPeakMB} MB`)
}

describe('length-prefix bombs (issue 11 item 2) and strikes (item 12)', () => {
  let s
  before(async () => {
    s = await hostileStage()
  })
  after(async () => {
    await s?.stop()
  })

  for (const [name, protocol, reason] of [
    ['task', TASK_PROTOCOL, 'task.FrameTooLargeError'],
    ['sync', SYNC_PROTOCOL, 'sync.FrameTooLargeError']
  ]) {
    it(`${name}: the stream is reset after a few prefix bytes, the sender struck and blocked`, async () => {
      const h = await s.hostile()
      await h.dialDirect(s.idA)
      const r = await s.measure(() => h.lengthPrefixBomb(s.idA, protocol, { bytes: BOMB }), {
        until: () =>
          until(async () => (await s.metrics())['mesh.peers.blocked'] >= 1 && (await s.metrics())[`mesh.strikes.${reason}`] === 1, { message: 'the strike' })
      })
      assert.equal(r.result.reset, true, 'the tab did not reset the stream')
      assert.ok(r.result.written < BOMB, `all ${r.result.written} bytes were taken`)
      assertTabUnhurt(r, name)
      const m = await s.metrics()
      assert.equal(m[`mesh.strikes.${reason}`], 1)
      // Blocked: its connection is closed and a new one is refused.
      await until(() => h.node.getConnections().every((c) => c.remotePeer.toString() !== s.idA), { message: 'the hang-up' })
      assert.equal(await h.canConnect(s.idA, { timeout: 4000 }), false, 'the blocked peer reconnected')
      const task = await s.honestTask()
      assert.equal(task.status, 'succeeded')
    })
  }

  it('plan: a planner peer answering with a bomb is struck and blocked; planning falls back and the task succeeds', async () => {
    const h = await s.hostile()
    await h.node.handle(PLAN_PROTOCOL, (stream) => {
      stream.send(new Uint8Array(64 * 1024).fill(0x80))
    })
    await h.dialDirect(s.idA)
    h.keepAnnouncing({ capabilities: ['llm'] }, 500)
    await s.a.waitForFunction((id) => window.zerostate.peers().some((p) => p.id === id && p.capabilities.includes('llm')), h.peerId, { timeout: 10_000 })
    const r = await s.measure(() => s.honestTask(), {
      until: () => until(async () => (await s.metrics())['mesh.strikes.plan.FrameTooLargeError'] === 1, { message: 'the strike' })
    })
    assert.equal(r.result.status, 'succeeded')
    assert.ok(r.result.planner != null, 'the result names its planner')
    assert.notEqual(r.result.planner, 'remote')
    assertTabUnhurt(r, 'plan')
    await until(() => h.node.getConnections().every((c) => c.remotePeer.toString() !== s.idA), { message: 'the hang-up' })
  })

  it('identify-push (library reader, patched): reset after at most ~10 prefix bytes, tab unhurt', async () => {
    const h = await s.hostile()
    await h.dialDirect(s.idA)
    const r = await s.measure(() => h.lengthPrefixBomb(s.idA, IDENTIFY_PUSH_PROTOCOL, { bytes: BOMB }))
    assert.equal(r.result.reset, true)
    assert.ok(r.result.written < BOMB)
    assertTabUnhurt(r, 'identify-push')
  })

  // Was an open defect (2 of 3 fresh-clone CI runs 'wrote' the whole 8 MiB): under load the
  // relay's handler started late, its yamux granted window for unread bytes, and the hostile
  // peer's writer queued the rest locally (onDrain() of @libp2p/utils 7.4 resolves at once
  // after the first drain). The relay now caps unread bytes per stream (relay/hop-strike.test.ts)
  // and `written` counts only bytes that left the attacker.
  it('relay hop (library reader, patched): the relay resets the stream and does not burn its CPU; tabs still join', async () => {
    const h = await s.hostile()
    const cpu0 = cpuSeconds(s.mesh.relay.process.pid)
    const r = await s.measure(() => h.lengthPrefixBomb(h.relayConnection(), RELAY_HOP_PROTOCOL, { bytes: BOMB }))
    const cpu = cpuSeconds(s.mesh.relay.process.pid) - cpu0
    assert.equal(r.result.reset, true)
    // The relay holds at most 256 KiB unread per stream with a 256 KiB window (relay.ts).
    assert.ok(r.result.written < 1024 * 1024, `${r.result.written} bytes left the attacker before the reset`)
    assert.ok(cpu < 2, `the relay spent ${cpu} s of CPU`)
    assertTabUnhurt(r, 'relay hop')
    // A new tab joins: its app starts (or says why not) and it links directly to A and B.
    const c = await s.mesh.newPeer({ waitReady: false })
    const consoleLines = []
    c.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') consoleLines.push(`${m.type()}: ${m.text()}`)
    })
    const started = await c
      .waitForFunction(() => (window.zerostate != null ? 'started' : document.body.innerText.match(/could not join the mesh[^\n]*/)?.[0]), null, {
        timeout: 30_000,
        polling: 100
      })
      .then((h) => h.jsonValue())
      .catch(
        async () =>
          `not started in 30 s: ${await c.evaluate(() => document.readyState + ' ' + document.body.innerText.slice(0, 200))} | ${consoleLines.slice(-5).join(' | ')}`
      )
    assert.equal(started, 'started', 'the new tab did not start')
    await c.evaluate(() => window.zerostate.ready)
    await c.waitForFunction((ids) => ids.every((id) => window.zerostate.peers().some((p) => p.id === id && p.transport === 'webrtc')), [s.idA, s.idB], {
      timeout: 15_000
    })
    await c.context().close()
  })
})
