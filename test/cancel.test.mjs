// Cancel from the task page (issue 10 item 8): two tabs and the real relay. A submits a slow
// agent through the Submit form, B donates and runs it; Cancel on A's task page moves the DAG
// node to 'cancelled', B is told (its donor counts a cancelled run) and nothing is committed.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ensureBuilt, startMesh, waitForFullMesh } from './harness.mjs'
import { slowEcho } from './fixtures/runtime-wat.mjs'

describe('cancel from the task page', { timeout: 120_000 }, () => {
  let mesh, a, b
  before(async () => {
    ensureBuilt()
    mesh = await startMesh()
    a = await mesh.newPeer({ path: '/submit' })
    b = await mesh.newPeer()
    await waitForFullMesh([a, b])
    await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
  })
  after(async () => {
    await mesh?.stop()
  })

  it('Cancel moves the running step to cancelled in the DAG, the donor is told and no result is committed', async () => {
    const agentId = await a.evaluate(
      async (bytes) => {
        const entry = await window.zerostate.agents.publish({
          manifest: {
            name: 'very-slow-echo',
            version: '1.0.0',
            description: 'loops for minutes, then echoes',
            capabilities: ['very-slow-echo'],
            abi: 'json-v1',
            price: 0
          },
          wasm: new Uint8Array(bytes)
        })
        return entry.id
      },
      [...slowEcho(200_000)] /* minutes: cancelled long before it ends */
    )
    await b.waitForFunction((id) => window.zerostate.agents.list({ capability: 'very-slow-echo' }).some((e) => e.id === id), agentId, {
      timeout: 10_000,
      polling: 50
    })
    const bId = await b.evaluate(() => window.zerostate.peerId)
    await a.waitForFunction((id) => window.zerostate.peers().some((p) => p.id === id && p.donating && p.freeWorkers > 0), bId, { timeout: 10_000, polling: 50 })

    await a.fill('[data-testid="submit-description"]', 'echo very slowly')
    await a.fill('[data-testid="submit-input"]', 'cancel me')
    await a.waitForSelector(`[data-testid="submit-agent"] option[value="${agentId}"]`, { state: 'attached' })
    await a.selectOption('[data-testid="submit-agent"]', agentId)
    await a.click('[data-testid="submit-button"]')
    await a.waitForURL(/\/tasks\//)
    const node = '[data-testid="dag-node"][data-step="s1"]'
    await a.waitForSelector(`${node}[data-state="accepted"]`, { timeout: 20_000 })
    // B runs it now.
    await b.waitForFunction(() => (window.zerostate.orchestrator.stats()['donor.accepted'] ?? 0) > 0, null, { timeout: 10_000, polling: 50 })

    await a.click('[data-testid="task-cancel"]')
    await a.waitForSelector(`${node}[data-state="cancelled"]`, { timeout: 10_000 })
    assert.match(await a.textContent(node), /cancelled/)
    // The legend names the state too.
    assert.match(await a.textContent('ul.legend'), /cancelled/)

    // B was told: its donor stopped the run (counted as cancelled, nothing completed).
    await b.waitForFunction(() => (window.zerostate.orchestrator.stats()['donor.cancelled'] ?? 0) >= 1, null, { timeout: 15_000, polling: 100 })
    const bStats = await b.evaluate(() => window.zerostate.orchestrator.stats())
    assert.equal(bStats['donor.completed'] ?? 0, 0)
    // Nothing was committed on A, and the task is listed as cancelled.
    const aSide = await a.evaluate(() => ({ committed: window.zerostate.orchestrator.stats().committed, status: window.zerostate.tasks()[0]?.status }))
    assert.deepEqual(aSide, { committed: 0, status: 'cancelled' })
    assert.deepEqual(a.__errors ?? [], [])
  })
})
