// Shared memory and the agent registry across real Chromium tabs and a real relay.
// Contract (shared/design/API.md + the memory layer): window.zerostate.memory.get/set/keys,
// window.zerostate.agents.list, window.zerostate.registry (the memory layer's Registry).
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { startMesh, waitForApi, waitForFullMesh } from './harness.mjs'

const SHA = 'ab'.repeat(32)

async function hasMemoryLayer(page) {
  return await page.evaluate(() => window.zerostate?.registry != null && window.zerostate?.memory != null)
}

describe('shared memory and registry across tabs', () => {
  let mesh
  let a, b, c
  let wired = true
  before(async () => {
    mesh = await startMesh()
    const ctxs = await Promise.all([0, 1, 2].map(() => mesh.newContext()))
    ;[a, b, c] = await Promise.all(ctxs.map((context) => mesh.newPeer({ context })))
    wired = await hasMemoryLayer(a)
    if (wired) await waitForFullMesh([a, b, c], 20_000)
  })
  after(async () => {
    await mesh?.stop()
  })

  it('an agent published in tab A shows in B and C within 2 s', async (t) => {
    if (!wired) return t.skip('window.zerostate.registry is not wired yet')
    const entry = await a.evaluate(
      (sha) =>
        window.zerostate.registry.publish({
          id: 'e2e-summarizer',
          manifest: { name: 'E2E Summarizer', capabilities: ['text.summarize'] },
          moduleSha256: sha,
          holders: [window.zerostate.peerId]
        }),
      SHA
    )
    const published = Date.now()
    await Promise.all([b, c].map((p) => p.waitForFunction((key) => window.zerostate.registry.get(key) != null, entry.key, { timeout: 2000, polling: 20 })))
    const took = Date.now() - published
    assert.ok(took <= 2000, `took ${took} ms`)
    for (const p of [b, c]) {
      const seen = await p.evaluate((key) => window.zerostate.registry.get(key), entry.key)
      assert.equal(seen.signature, entry.signature)
      assert.equal(seen.author, await a.evaluate(() => window.zerostate.publicKey))
      const listed = await p.evaluate(() => window.zerostate.registry.list({ capability: 'text.summarize' }).map((e) => e.id))
      assert.deepEqual(listed, ['e2e-summarizer'])
    }
  })

  it('memory written in B is read in C', async (t) => {
    if (!wired) return t.skip('window.zerostate.memory is not wired yet')
    await b.evaluate(() => window.zerostate.memory.set('e2e', 'fact', { text: 'the sky is blue', n: 1 }))
    await c.waitForFunction(() => window.zerostate.memory.get('e2e', 'fact')?.n === 1, null, { timeout: 5000, polling: 20 })
    assert.deepEqual(await c.evaluate(() => window.zerostate.memory.keys('e2e')), ['fact'])
  })

  it('a tab that joins late catches up', async (t) => {
    if (!wired) return t.skip('not wired yet')
    await a.evaluate(() => window.zerostate.memory.set('e2e', 'before-late', 42))
    const late = await mesh.newPeer({ context: await mesh.newContext() })
    await late.waitForFunction(() => window.zerostate.memory.get('e2e', 'before-late') === 42 && window.zerostate.memory.get('e2e', 'fact')?.n === 1, null, {
      timeout: 10_000,
      polling: 50
    })
    await late.waitForFunction(() => window.zerostate.registry.list().some((e) => e.id === 'e2e-summarizer'), null, { timeout: 10_000, polling: 50 })
    await late.close()
  })

  it('a reload of C keeps everything, even with every other peer gone', async (t) => {
    if (!wired) return t.skip('not wired yet')
    await c.waitForFunction(() => window.zerostate.memory.get('e2e', 'before-late') === 42, null, { timeout: 5000 })
    await c.evaluate(() => window.zerostate.memory.set('e2e', 'written-by-c', 'c'))
    // Nobody else can hand the data back: close A and B, then reload C.
    await a.close()
    await b.close()
    await c.reload()
    await waitForApi(c)
    await c.waitForFunction(() => window.zerostate.memory.get('e2e', 'written-by-c') === 'c', null, { timeout: 5000, polling: 20 })
    const state = await c.evaluate(() => ({
      fact: window.zerostate.memory.get('e2e', 'fact'),
      late: window.zerostate.memory.get('e2e', 'before-late'),
      agents: window.zerostate.registry.list().map((e) => e.id)
    }))
    assert.deepEqual(state.fact, { text: 'the sky is blue', n: 1 })
    assert.equal(state.late, 42)
    assert.ok(state.agents.includes('e2e-summarizer'))
  })
})

describe('two tabs of one profile', () => {
  let mesh
  before(async () => {
    mesh = await startMesh()
  })
  after(async () => {
    await mesh?.stop()
  })

  it("see each other's writes live (no reload)", async (t) => {
    const ctx = await mesh.newContext()
    const one = await mesh.newPeer({ context: ctx })
    if (!(await hasMemoryLayer(one))) return t.skip('not wired yet')
    const two = await mesh.newPeer({ context: ctx })
    assert.equal(await one.evaluate(() => window.zerostate.publicKey), await two.evaluate(() => window.zerostate.publicKey))
    await one.evaluate(() => window.zerostate.memory.set('tabs', 'from-one', 1))
    const t0 = Date.now()
    await two.waitForFunction(() => window.zerostate.memory.get('tabs', 'from-one') === 1, null, { timeout: 2000, polling: 10 })
    await two.evaluate(() => window.zerostate.memory.set('tabs', 'from-two', 2))
    await one.waitForFunction(() => window.zerostate.memory.get('tabs', 'from-two') === 2, null, { timeout: 2000, polling: 10 })
    assert.ok(Date.now() - t0 < 2000)
    // The journal is private to the profile but shared by its tabs.
    const hasJournal = await one.evaluate(() => window.zerostate.journal != null)
    if (hasJournal) {
      await one.evaluate(() => window.zerostate.journal.put({ id: 'task-1', status: 'running', createdAt: 1, updatedAt: 1, steps: [] }))
      await two.waitForFunction(() => window.zerostate.journal.get('task-1')?.status === 'running', null, { timeout: 2000 })
    }
  })
})
