// Large payloads across the mesh, with real Chromium tabs and a real relay: A submits,
// B donates. A 2 MB text input, and a 2 MB binary input whose 2 MB binary output comes
// back, cross in chunks on the task stream (frames stay under the 64 KiB cap).
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { startMesh, waitForFullMesh } from './harness.mjs'
import { modules } from './fixtures/runtime-wat.mjs'

const MB2 = 2 * 1024 * 1024

describe('large payloads across the mesh', () => {
  let mesh, a, b, ids
  before(async () => {
    mesh = await startMesh()
    ;[a, b] = [await mesh.newPeer(), await mesh.newPeer()]
    ids = await waitForFullMesh([a, b])
    await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
    await a.waitForFunction((idB) => window.zerostate.peers().some((p) => p.id === idB && p.donating && p.freeWorkers > 0), ids[1], { timeout: 10_000 })
  })
  after(async () => {
    await mesh?.stop()
  })

  // Once failed in CI: A saw B as not donating when it submitted (an announcement from before
  // B donated, delivered late by gossip, undid the newer one) and ran the step itself.
  it('a 2 MB text input reaches a donor (word-stats) and the handle reports its upload', async () => {
    const res = await a.evaluate(async (size) => {
      const text = 'alpha beta gamma delta '.repeat(Math.ceil(size / 23))
      const h = window.zerostate.submit({ description: 'count the words', agent: 'word-stats', input: text })
      const uploads = []
      const steps = []
      h.on('progress', (e) => {
        if (e.transfer != null) uploads.push(e.transfer)
      })
      h.on('step', (e) =>
        steps.push(
          `${e.status} ${e.peer.slice(-6)} ${e.error ?? ''} ${e.reasoning ?? ''} peers=${JSON.stringify(window.zerostate.peers().map((p) => [p.id.slice(-6), p.donating, p.freeWorkers, p.transport]))}`
        )
      )
      const r = await h.done
      return { words: text.split(/\s+/).filter(Boolean).length, bytes: text.length, output: r.output, peer: r.steps[0].peer, uploads, steps }
    }, MB2)
    assert.ok(res.bytes >= MB2)
    assert.equal(res.peer, ids[1], `the step ran on the donor: ${res.steps.join('; ')}`)
    assert.equal(res.output.words, res.words)
    const up = res.uploads.filter((t) => t.direction === 'upload')
    assert.ok(up.length > 10, `expected one progress event per chunk, got ${up.length}`)
    assert.equal(up.at(-1).bytes, up.at(-1).totalBytes)
    assert.equal(up.at(-1).totalBytes, res.bytes + 2) // the JSON string's quotes
    const stats = await b.evaluate(() => window.zerostate.orchestrator.stats())
    assert.ok(stats['donor.payloadBytesIn'] >= res.bytes, `the donor counted ${stats['donor.payloadBytesIn']} bytes in`)
    assert.equal(stats['donor.payloadIntegrityErrors'], 0)
  })

  it('a 2 MB binary Blob goes in as bytes and the 2 MB binary output of the agent comes back as the same bytes', async () => {
    const ranOnA0 = await a.evaluate(() => window.zerostate.runtime.stats().completed)
    const wasm = [...modules.wasiCat()]
    const agentId = await a.evaluate(async (bytes) => {
      const entry = await window.zerostate.agents.publish({
        manifest: { name: 'cat', version: '1.0.0', description: 'copies stdin to stdout', capabilities: ['byte-echo'], abi: 'wasi-preview1', price: 0 },
        wasm: new Uint8Array(bytes)
      })
      return entry.id
    }, wasm)
    await b.waitForFunction((id) => window.zerostate.agents.list({ capability: 'byte-echo' }).some((e) => e.id === id), agentId, { timeout: 10_000 })
    const res = await a.evaluate(
      async ([id, size]) => {
        // Every byte value, not UTF-8: it cannot pass as text anywhere on the way.
        const input = new Uint8Array(size)
        for (let i = 0; i < size; i++) input[i] = (i * 7 + (i >>> 11)) & 0xff
        const h = window.zerostate.submit({ description: 'echo the bytes', agent: id, input: new Blob([input]) })
        const transfers = { upload: 0, download: 0, lastDownload: undefined }
        const steps = []
        h.on('step', (e) => steps.push(`${e.status} ${e.peer.slice(-6)} ${e.error ?? ''}`))
        h.on('progress', (e) => {
          if (e.transfer == null) return
          transfers[e.transfer.direction]++
          if (e.transfer.direction === 'download') transfers.lastDownload = e.transfer
        })
        const r = await h.done
        const out = r.output
        let same = out instanceof Uint8Array && out.byteLength === input.byteLength
        for (let i = 0; same && i < size; i++) same = out[i] === input[i]
        return { isBytes: out instanceof Uint8Array, length: out?.byteLength, same, peer: r.steps[0].peer, transfers, steps }
      },
      [agentId, MB2]
    )
    assert.equal(res.peer, ids[1], `the step ran on the donor: ${res.steps.join('; ')}`)
    assert.equal(res.isBytes, true, 'the output came back as a Uint8Array')
    assert.equal(res.length, MB2)
    assert.equal(res.same, true, 'the output bytes equal the input bytes')
    assert.ok(res.transfers.upload > 10 && res.transfers.download > 10, JSON.stringify(res.transfers))
    assert.deepEqual(res.transfers.lastDownload && [res.transfers.lastDownload.bytes, res.transfers.lastDownload.totalBytes], [MB2, MB2])
    const ranOnA = (await a.evaluate(() => window.zerostate.runtime.stats().completed)) - ranOnA0
    assert.equal(ranOnA, 0, 'nothing ran on the submitter')
  })
})
