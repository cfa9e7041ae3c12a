// Tools across the mesh (issue 14, vision §6), in real Chromium tabs with the real relay: submitter A
// runs the bundled notes agent (json-v1; it calls memory.set, memory.get and kv.scratch through
// zerostate.tool_call) on donor B. By default B grants no memory tool, so the step fails with the typed
// error naming memory.set and the donor grant; once B grants memory.get/memory.set to "notes" on its
// Settings page, the same request saves the note (the agent is parked by JSPI while the tool runs in
// B's page), A reads it from shared memory, and B's metrics and A's trace show the calls.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { eventually, startMesh, waitForFullMesh } from './harness.mjs'

/** Submit the notes agent from a tab; the outcome as plain data. */
async function submitNote(page, text) {
  return await page.evaluate(async (text) => {
    const h = window.zerostate.submit({
      description: 'save a note',
      agent: 'notes',
      input: { namespace: 'team', key: 'todo', text },
      tools: { memory: ['team'] },
      preferences: { verification: 'none' }
    })
    try {
      const r = await h.done
      return { ok: true, id: h.id, output: r.output, peer: r.steps[0].peer }
    } catch (err) {
      return { ok: false, id: h.id, name: err.name, message: err.message }
    }
  }, text)
}

describe('tools: denied by default, allowed once the donor grants them', () => {
  let mesh, a, b, idB
  before(async () => {
    mesh = await startMesh()
    a = await mesh.newPeer()
    b = await mesh.newPeer({ path: '/settings' })
    ;[, idB] = await waitForFullMesh([a, b], 30_000)
    await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
    await a.waitForFunction(
      (id) => window.zerostate.peers().some((p) => p.id === id && p.donating && p.freeWorkers > 0 && p.capabilities.includes('note-taking')),
      idB,
      { timeout: 20_000 }
    )
  })
  after(async () => {
    await mesh?.stop()
  })

  it('the donor tab suspends agents with JSPI (the page is not cross-origin isolated: no SharedArrayBuffer)', async () => {
    const env = await b.evaluate(() => ({
      jspi: typeof WebAssembly.Suspending === 'function' && typeof WebAssembly.promising === 'function',
      isolated: globalThis.crossOriginIsolated === true,
      sab: typeof SharedArrayBuffer === 'function'
    }))
    assert.deepEqual(env, { jspi: true, isolated: false, sab: false })
  })

  it('by default the call is refused with ToolDeniedError naming memory.set and the donor grant', async () => {
    assert.deepEqual(await b.evaluate(() => window.zerostate.tools.grants()), { all: ['kv.scratch', 'llm.complete'], agents: {}, httpOrigins: [] })
    const r = await submitNote(a, 'buy milk')
    assert.equal(r.ok, false, 'the task must fail')
    assert.match(r.message, /ToolDeniedError|may not call memory\.set/, r.message)
    assert.match(r.message, /"notes" may not call memory\.set on this peer: the donor has not granted it/, r.message)
    assert.equal(await a.evaluate(() => window.zerostate.memory.get('team', 'todo')), undefined)
    const m = await b.evaluate(() => window.zerostate.metrics())
    assert.ok(m['tools.denied'] >= 1, `tools.denied ${m['tools.denied']}`)
    // kv.scratch (granted by default) ran before memory.set was refused.
    assert.ok(m['tools.calls.kv.scratch'] >= 1, `kv.scratch calls ${m['tools.calls.kv.scratch']}`)
  })

  it('after B grants memory.get and memory.set to notes in Settings, the same request saves and reads the note', async () => {
    await b.fill('[data-testid="tools-agent-name"]', 'notes')
    await b.click('[data-testid="tools-agent-add"]')
    await b.check('[data-testid="tool-grant-notes-memory.set"]')
    await b.check('[data-testid="tool-grant-notes-memory.get"]')
    await b.waitForSelector('[data-testid="tools-status"] .ok')
    const grants = await b.evaluate(() => window.zerostate.tools.grants())
    assert.deepEqual(grants.agents, { notes: ['memory.set', 'memory.get'] })
    // Saved for the profile: a reload of the page's settings would read them back.
    assert.deepEqual(JSON.parse(await b.evaluate(() => localStorage.getItem('zerostate:tool-grants'))).agents, { notes: ['memory.set', 'memory.get'] })

    const okBefore = (await b.evaluate(() => window.zerostate.metrics()))['tools.ok'] ?? 0
    const r = await submitNote(a, 'buy oat milk')
    assert.equal(r.ok, true, `${r.name}: ${r.message}`)
    assert.equal(r.peer, idB, 'the step ran on the donor')
    assert.deepEqual(r.output, { saved: true, namespace: 'team', key: 'todo', read: 'buy oat milk' })
    // The note is in B's shared memory, and reaches A over the mesh.
    assert.equal(await b.evaluate(() => window.zerostate.memory.get('team', 'todo')), 'buy oat milk')
    await eventually(async () => (await a.evaluate(() => window.zerostate.memory.get('team', 'todo'))) === 'buy oat milk', {
      timeout: 15_000,
      message: 'A to see the note B saved'
    })
    // Counted: kv.scratch, memory.set and memory.get, all ok.
    const m = await b.evaluate(() => window.zerostate.metrics())
    assert.equal(m['tools.ok'] - okBefore, 3, `tools.ok went from ${okBefore} to ${m['tools.ok']}`)
    // Traced: the donor's tool spans come back to A with the step's (signed, verified).
    let names = []
    await eventually(
      async () => {
        const trace = await a.evaluate((id) => window.zerostate.trace(id), r.id)
        names = trace.spans.filter((s) => s.name === 'donor.tool').map((s) => `${s.attributes['tool.name']}:${s.status}`)
        return names.length >= 3
      },
      { timeout: 10_000, message: "A's trace to hold B's three tool spans" }
    )
    assert.deepEqual([...names].sort(), ['kv.scratch:ok', 'memory.get:ok', 'memory.set:ok'])
  })

  it('a task that does not allow the namespace is refused even with the donor grant', async () => {
    const r = await a.evaluate(async () => {
      const h = window.zerostate.submit({
        description: 'save a note',
        agent: 'notes',
        input: { namespace: 'secrets', key: 'k', text: 'x' },
        tools: { memory: ['team'] },
        preferences: { verification: 'none' }
      })
      return await h.done.then(
        () => ({ ok: true }),
        (err) => ({ ok: false, message: err.message })
      )
    })
    assert.equal(r.ok, false)
    assert.match(r.message, /the task does not allow memory namespace "secrets"/, r.message)
  })
})
