// Tasks across the mesh, with real Chromium tabs and a real relay: A submits,
// B and C donate and run the steps.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { startMesh, waitForFullMesh } from './harness.mjs'
import { slowEcho } from './fixtures/runtime-wat.mjs'

const TEXT =
  'WebRTC lets browsers connect directly. Peers exchange offers through a relay. ' +
  'After that the relay is not needed. Direct connections are fast and private. ' +
  'The mesh keeps working without the relay. Donors run agents in sandboxed workers.'

describe('tasks across the mesh', () => {
  let mesh, a, b, c, ids
  before(async () => {
    mesh = await startMesh()
    ;[a, b, c] = [await mesh.newPeer(), await mesh.newPeer(), await mesh.newPeer()]
    ids = await waitForFullMesh([a, b, c])
    await Promise.all([b, c].map((p) => p.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))))
    await a.waitForFunction(
      ([idB, idC]) => {
        const ps = window.zerostate.peers()
        return [idB, idC].every((id) => ps.some((p) => p.id === id && p.donating && p.freeWorkers > 0 && p.capabilities.includes('text-summarization')))
      },
      [ids[1], ids[2]],
      { timeout: 10_000 }
    )
  })
  after(async () => {
    await mesh?.stop()
  })

  it('runs a multi-step task on the donors, not on the submitter, with correct outputs', async () => {
    const result = await a.evaluate(async (text) => {
      const h = window.zerostate.submit({
        description: 'summarize this text, and also count the words, and also extract keywords',
        input: text,
        preferences: { strategy: 'load-balanced' }
      })
      return await h.done
    }, TEXT)
    // The profile's journal keeps the task and each step's outcome (agent, peer).
    await a.waitForFunction((id) => window.zerostate.journal.get(id)?.status === 'succeeded', result.id, { timeout: 5000 })
    const journalled = await a.evaluate((id) => window.zerostate.journal.get(id), result.id)
    assert.equal(journalled.steps.length, result.steps.length)
    for (const s of result.steps) assert.equal(journalled.steps.find((j) => j.id === s.id)?.peer, s.peer)
    assert.equal(result.status, 'succeeded')
    assert.equal(result.plan.planner, 'deterministic')
    assert.ok(result.steps.length >= 3, `expected 3 steps, got ${result.steps.length}`)
    for (const s of result.steps) {
      assert.equal(s.status, 'succeeded')
      assert.ok([ids[1], ids[2]].includes(s.peer), `step ${s.id} ran on ${s.peer}, not on a donor`)
    }
    // Work really happened on the donors' runtimes, none on the submitter's.
    const done = await Promise.all([a, b, c].map((p) => p.evaluate(() => window.zerostate.runtime.stats().completed)))
    assert.equal(done[0], 0)
    // Each donor's runtime ran exactly the results the task attributes to it: the steps' and their verification replicas (issue 12).
    const ran = (id) => result.steps.reduce((n, s) => n + (s.verification?.peers ?? [s.peer]).filter((p) => p === id).length, 0)
    assert.equal(done[1], ran(ids[1]))
    assert.equal(done[2], ran(ids[2]))
    // The word count step is right.
    const words = TEXT.split(/\s+/).filter(Boolean).length
    const stats = result.steps.map((s) => s.output).find((o) => o != null && typeof o === 'object' && 'words' in o)
    assert.equal(stats?.words, words)
  })

  it('tasks(), task(id) and subscribe() follow a task; an unsubscribed listener hears nothing more', async () => {
    const seen = await a.evaluate(async () => {
      const zs = window.zerostate
      const counts = { kept: 0, dropped: 0 }
      const offKept = zs.subscribe(() => counts.kept++)
      const offDropped = zs.subscribe(() => counts.dropped++)
      const h = zs.submit({ description: 'hash it', agent: 'hash', input: 'subscribe me' })
      const live = zs.task(h.id)
      const running = zs.tasks().find((t) => t.id === h.id)?.status
      const result = await h.done
      // Subscribers keep hearing of changes (coalesced to at most one notice per 100 ms).
      await new Promise((resolve) => {
        const off = zs.subscribe(() => {
          off()
          resolve()
        })
      })
      offDropped()
      const dropped = counts.dropped
      // More changes: the kept listener hears them, the dropped one does not.
      const kept = counts.kept
      await zs.memory.set('subscribe-test', 'k', 1)
      await new Promise((resolve) => {
        const tick = () => (counts.kept > kept ? resolve() : setTimeout(tick, 20))
        tick()
      })
      offKept()
      return {
        same: live === h,
        running,
        status: zs.tasks().find((t) => t.id === h.id)?.status,
        output: result.output,
        heard: counts.kept,
        droppedAfter: counts.dropped - dropped,
        unknown: zs.task('t-unknown-task-id') === undefined
      }
    })
    assert.equal(seen.same, true, 'task(id) returns the handle submit() returned')
    assert.ok(['planning', 'running'].includes(seen.running), `a fresh task is listed as planning or running, not ${seen.running}`)
    assert.equal(seen.status, 'succeeded')
    assert.equal(typeof seen.output?.sha256, 'string')
    assert.ok(seen.heard > 0, 'subscribers heard of changes')
    assert.equal(seen.droppedAfter, 0, 'an unsubscribed listener is not called')
    assert.equal(seen.unknown, true)
  })

  it('fails a task whose capability no agent has with a clear message', async () => {
    const err = await a.evaluate(async () => {
      try {
        await window.zerostate.submit({ description: 'teleport me', capabilities: ['teleportation'] }).done
        return null
      } catch (e) {
        return { name: e.name, message: e.message }
      }
    })
    assert.ok(err != null, 'the task should fail')
    // Errors are told apart by name (API.md); in the built app that name must survive minification.
    assert.equal(err.name, 'PlanValidationError')
    assert.match(err.message, /teleportation/)
    assert.match(err.message, /publish one|no agent/i)
  })

  it('a cancelled task rejects with TaskCancelledError and is journalled as cancelled', async () => {
    const res = await a.evaluate(async () => {
      const h = window.zerostate.submit({ description: 'hash it', input: 'to be cancelled' })
      h.cancel()
      const name = await h.done.then(
        () => null,
        (e) => e.name
      )
      const deadline = Date.now() + 5000
      let status = window.zerostate.journal.get(h.id)?.status
      while (Date.now() < deadline && status !== 'cancelled') {
        await new Promise((r) => setTimeout(r, 20))
        status = window.zerostate.journal.get(h.id)?.status
      }
      return { name, status }
    })
    assert.deepEqual(res, { name: 'TaskCancelledError', status: 'cancelled' })
  })

  it('finishes a task exactly once on C when the donor running it closes mid-task', async () => {
    const wasm = [...slowEcho(2500)]
    const agentId = await a.evaluate(async (bytes) => {
      const entry = await window.zerostate.agents.publish({
        manifest: { name: 'slow-echo', version: '1.0.0', description: 'burns CPU, then echoes', capabilities: ['slow-echo'], abi: 'json-v1', price: 0 },
        wasm: new Uint8Array(bytes)
      })
      return entry.id
    }, wasm)
    // agents.publish on A reaches agents.list on B and C (registry sync + verification) within 2 s.
    const published = Date.now()
    await Promise.all(
      [b, c].map((p) =>
        p.waitForFunction((id) => window.zerostate.agents.list({ capability: 'slow-echo' }).some((e) => e.id === id), agentId, { timeout: 2000, polling: 20 })
      )
    )
    assert.ok(Date.now() - published <= 2000)
    const before = await Promise.all([b, c].map((p) => p.evaluate(() => window.zerostate.runtime.stats().completed)))
    const accepted = await a.evaluate(async (id) => {
      const h = window.zerostate.submit({ description: 'echo slowly', agent: id, input: { hello: 'mesh' } })
      window.__slow = h
      window.__slowResult = h.done.then(
        (r) => r,
        (e) => ({ error: e.message })
      )
      return await new Promise((resolve) =>
        h.on('step', (e) => {
          if (e.status === 'accepted') resolve(e.peer)
        })
      )
    }, agentId)
    assert.ok([ids[1], ids[2]].includes(accepted))
    const [victim, survivor] = accepted === ids[1] ? [b, c] : [c, b]
    const survivorId = accepted === ids[1] ? ids[2] : ids[1]
    await victim.context().close()
    const result = await a.evaluate(() => window.__slowResult)
    assert.equal(result.error, undefined, `task failed: ${result.error}`)
    assert.deepEqual(result.output, { hello: 'mesh' })
    assert.equal(result.steps.length, 1)
    assert.equal(result.steps[0].peer, survivorId)
    const committed = await a.evaluate(() => window.zerostate.orchestrator.stats())
    assert.ok((committed['dispatch.committed'] ?? committed.committed) >= 1)
    // The survivor fetched the agent's bytes from A (content-addressed) and ran it once.
    const survivorBefore = accepted === ids[1] ? before[1] : before[0]
    assert.equal(await survivor.evaluate(() => window.zerostate.runtime.stats().completed), survivorBefore + 1)
  })
})
