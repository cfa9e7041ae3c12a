// LLM agents across the mesh (issue 14), with a tiny GGUF model the test generates (no download):
// donor B loads it into wllama (llama.cpp in WebAssembly, single-thread) with progress and then
// advertises `llm` with its model; donor C has no model. Tab A submits the bundled classify-llm
// agent (an llm-prompt manifest with an output JSON Schema): the router sends it to B only, B's
// answer is constrained by the schema (wllama grammar), and A gets JSON that parses and validates.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { startMesh, waitForFullMesh } from './harness.mjs'
import { readGgufHeader, tinyLlamaGguf } from './fixtures/gguf.mjs'

const MODEL_PATH = '/models/zs-tiny-llama.gguf'

describe('llm-prompt agents on a donor with a tiny GGUF model', () => {
  const gguf = tinyLlamaGguf()
  let mesh, a, b, c, ids
  before(async () => {
    mesh = await startMesh()
    const ctxB = await mesh.newContext()
    // The model is served to B's context only, as a self-hosted model URL would be.
    await ctxB.route(`**${MODEL_PATH}`, (route) => route.fulfill({ status: 200, contentType: 'application/octet-stream', body: Buffer.from(gguf) }))
    ;[a, b, c] = [await mesh.newPeer(), await mesh.newPeer({ context: ctxB }), await mesh.newPeer()]
    ids = await waitForFullMesh([a, b, c], 30_000)
    await Promise.all([b, c].map((p) => p.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))))
  })
  after(async () => {
    await mesh?.stop()
  })

  it('the generated GGUF is a llama model with its tokenizer', () => {
    const h = readGgufHeader(gguf)
    assert.equal(h.magic, 0x46554747)
    assert.equal(h.version, 3)
    assert.equal(h.metadata['general.architecture'], 'llama')
    assert.equal(h.metadata['tokenizer.ggml.model'], 'llama')
    assert.equal(h.metadata['tokenizer.ggml.tokens'].length, h.metadata['llama.vocab_size'])
    assert.ok(gguf.byteLength > 1_000_000 && gguf.byteLength < 8_000_000, `${gguf.byteLength} bytes`)
  })

  it('B loads the model with progress and advertises llm with it; C and A do not', async () => {
    const res = await b.evaluate(async (path) => {
      const progress = []
      const model = await window.zerostate.llm.loadGguf({ url: new URL(path, location.href).href }, (p) => progress.push(p.progress))
      return { model, progress }
    }, MODEL_PATH)
    assert.equal(res.model.name, 'zs-tiny-llama')
    assert.equal(res.model.family, 'llama')
    assert.equal(res.model.multiThread, false, 'single-thread: the page is not cross-origin isolated')
    assert.ok(res.progress.length >= 1 && res.progress.at(-1) === 1, `progress ${JSON.stringify(res.progress)}`)
    await a.waitForFunction(
      (idB) => {
        const caps = window.zerostate.peers().find((p) => p.id === idB)?.capabilities ?? []
        return ['llm', 'llm-prompt', 'llm-model-zs-tiny-llama', 'llm-family-llama'].every((c) => caps.includes(c))
      },
      ids[1],
      { timeout: 15_000 }
    )
    const cCaps = await a.evaluate((idC) => window.zerostate.peers().find((p) => p.id === idC)?.capabilities ?? [], ids[2])
    assert.ok(!cCaps.includes('llm-prompt'), `C advertises ${cCaps}`)
  })

  it('classify-llm from A runs on B (never C) and returns JSON that parses and matches its schema', async () => {
    const runs = []
    for (let i = 0; i < 3; i++) {
      runs.push(
        await a.evaluate(async (text) => {
          const agent = window.zerostate.agents.list({ capability: 'llm-classification' })[0]
          const h = window.zerostate.submit({ description: 'classify the sentiment', agent: agent.id, input: text, preferences: { verification: 'none' } })
          const steps = []
          h.on('step', (e) => steps.push(`${e.status} ${e.peer?.slice(-6)} ${e.error ?? ''}`))
          try {
            const r = await h.done
            return { ok: true, output: r.output, peer: r.steps[0].peer, schema: agent.manifest.output, steps }
          } catch (err) {
            return { ok: false, name: err.name, message: err.message, steps }
          }
        }, `I love this, run ${i}`)
      )
    }
    for (const r of runs) {
      assert.equal(r.ok, true, `${r.name}: ${r.message} (${r.steps?.join('; ')})`)
      assert.equal(r.peer, ids[1], `ran on ${r.peer}: ${r.steps.join('; ')}`)
      assert.deepEqual(Object.keys(r.output).sort(), ['confidence', 'label'])
      assert.ok(r.schema.properties.label.enum.includes(r.output.label), JSON.stringify(r.output))
      assert.ok(r.schema.properties.confidence.enum.includes(r.output.confidence), JSON.stringify(r.output))
    }
  })

  it('summarize-llm text streams from B to A token by token, in order, and shows live on the task page', async () => {
    const text = 'Tabs lend their CPUs to the mesh. A donor with a model answers prompts for peers without one. '.repeat(3)
    const res = await a.evaluate(async (input) => {
      const agent = window.zerostate.agents.list({ capability: 'llm-summarization' })[0]
      const h = window.zerostate.submit({ description: 'summarize', agent: agent.id, input, preferences: { verification: 'none' } })
      const pieces = []
      h.on('progress', (e) => {
        if (e.tokens != null) pieces.push({ ...e.tokens, before: !settled })
      })
      let settled = false
      const r = await h.done
      settled = true
      return { output: r.output, peer: r.steps[0].peer, pieces }
    }, text)
    assert.equal(res.peer, ids[1])
    assert.equal(typeof res.output, 'string')
    assert.ok(res.pieces.length >= 2, `${res.pieces.length} pieces streamed`)
    assert.ok(
      res.pieces.every((p) => p.peer === ids[1] && p.before),
      'every piece came from B before the result'
    )
    assert.deepEqual(
      res.pieces.map((p) => p.seq),
      res.pieces.map((_, i) => i)
    )
    assert.equal(res.pieces.map((p) => p.text).join(''), res.output, 'the streamed text is the answer')

    // On the task page: open a task page first (its code is then loaded, so the next one mounts at
    // once), then watch from before the submit, submit and open the new task's page in one go.
    const go = (taskId) =>
      a.evaluate((t) => {
        const link = document.createElement('a')
        link.href = `/tasks/${t}`
        document.body.append(link)
        link.click()
      }, taskId)
    await go(await a.evaluate(() => window.zerostate.tasks()[0].id))
    await a.waitForSelector('[data-testid="task-progress"]', { timeout: 30_000 })
    const seen = await a.evaluate(async (input) => {
      const lengths = []
      let last
      const obs = new MutationObserver(() => {
        const el = document.querySelector('[data-testid="step-stream"]')
        if (el != null) last = el
        if (el != null && document.querySelector('[data-testid="task-result"]') == null) lengths.push(el.textContent.length)
      })
      obs.observe(document.body, { childList: true, characterData: true, subtree: true })
      const agent = window.zerostate.agents.list({ capability: 'llm-summarization' })[0]
      const h = window.zerostate.submit({ description: 'summarize for the page', agent: agent.id, input, preferences: { verification: 'none' } })
      const link = document.createElement('a')
      link.href = `/tasks/${h.id}`
      document.body.append(link)
      link.click()
      const r = await h.done
      await new Promise((resolve) => requestAnimationFrame(() => resolve()))
      obs.disconnect()
      return { lengths: lengths.filter((n) => n > 0), final: last?.textContent ?? '', output: r.output }
    }, text)
    await a.waitForSelector('[data-testid="task-result"]', { timeout: 10_000 })
    assert.ok(seen.final.length > 0)
    assert.ok(seen.output.endsWith(seen.final) || seen.final === seen.output, `page showed ${JSON.stringify(seen.final.slice(0, 80))}`)
    assert.ok(new Set(seen.lengths).size >= 2, `the text grew while the page was open: ${seen.lengths.join(',')}`)
  })
})
