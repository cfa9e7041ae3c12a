// WASI conformance through the mesh (issue 14): the 19 WebAssembly/wasi-testsuite programs that
// need no files, arguments or environment (test/fixtures/wasi-testsuite) are published as agents
// by donor tab B and submitted from tab A, each with an empty input; the exit status and stdout
// that come back to A must match the suite's expectation. (B publishes them so that it holds their
// bytes: a donor fetching 19 agents from A within a minute would pass the agent-fetch budget of 10
// requests a minute per peer and be struck.)
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { startMesh, waitForFullMesh } from './harness.mjs'
import { wasiTestsuite } from './fixtures/wasi-testsuite/index.mjs'

describe('wasi-testsuite programs run as agents across the mesh', () => {
  const programs = wasiTestsuite()
  let mesh, a, b, ids
  const agentIds = new Map()
  before(async () => {
    mesh = await startMesh()
    ;[a, b] = [await mesh.newPeer(), await mesh.newPeer()]
    ids = await waitForFullMesh([a, b], 30_000)
    await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
    await a.waitForFunction((idB) => window.zerostate.peers().some((p) => p.id === idB && p.donating && p.freeWorkers > 0), ids[1], { timeout: 15_000 })
    for (const t of programs) {
      const id = await b.evaluate(
        async ([name, bytes]) =>
          (
            await window.zerostate.agents.publish({
              manifest: { name, version: '1.0.0', description: 'WebAssembly/wasi-testsuite program', capabilities: ['wasi-conformance'], abi: 'wasi-preview1' },
              wasm: new Uint8Array(bytes)
            })
          ).id,
        [t.agentName, [...t.wasm]]
      )
      agentIds.set(t.agentName, id)
    }
    await a.waitForFunction((n) => window.zerostate.agents.list({ capability: 'wasi-conformance' }).length >= n, programs.length, { timeout: 20_000 })
  })
  after(async () => {
    await mesh?.stop()
  })

  it(`all ${programs.length} pass on the donor with the suite's exit status and stdout`, async () => {
    const ranOnA0 = await a.evaluate(() => window.zerostate.runtime.stats().completed)
    const results = []
    for (const t of programs) {
      const r = await a.evaluate(async (agent) => {
        const h = window.zerostate.submit({ description: 'wasi conformance', agent, input: '', preferences: { verification: 'none' } })
        const steps = []
        h.on('step', (e) => steps.push({ status: e.status, peer: e.peer, error: e.error }))
        try {
          const res = await h.done
          return { ok: true, output: res.output, peer: res.steps[0]?.peer, steps }
        } catch (err) {
          return { ok: false, name: err.name, message: err.message, steps }
        }
      }, agentIds.get(t.agentName))
      results.push({ t, r })
    }
    const failures = []
    for (const { t, r } of results) {
      const label = `${t.lang}/${t.name}`
      if (t.exitCode === 0) {
        if (!r.ok) failures.push(`${label}: ${r.name}: ${r.message}`)
        else if (t.stdout != null && r.output !== t.stdout) failures.push(`${label}: stdout ${JSON.stringify(r.output)}, expected ${JSON.stringify(t.stdout)}`)
        else if (r.peer !== ids[1]) failures.push(`${label}: ran on ${r.peer}, not on the donor (${JSON.stringify(r.steps)})`)
      } else {
        const status = /exited with status (\d+)/.exec(r.message ?? '')?.[1]
        if (r.ok || Number(status) !== t.exitCode)
          failures.push(`${label}: expected exit status ${t.exitCode}, got ${r.ok ? 'success' : `${r.name}: ${r.message}`}`)
        else if (!r.steps.some((s) => s.peer === ids[1])) failures.push(`${label}: the failing step never ran on the donor (${JSON.stringify(r.steps)})`)
      }
    }
    assert.deepEqual(failures, [], `${programs.length - failures.length} of ${programs.length} passed`)
    const ranOnA = (await a.evaluate(() => window.zerostate.runtime.stats().completed)) - ranOnA0
    assert.equal(ranOnA, 0, 'nothing ran in the submitting tab')
  })
})
