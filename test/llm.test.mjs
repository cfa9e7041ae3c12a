// LLM agents across the mesh (issue 14), with a tiny GGUF model the test generates (no download):
// donor B loads it into wllama (llama.cpp in WebAssembly, single-thread) with progress and then
// advertises `llm` with its model; donor C has no model. Tab A submits the bundled classify-llm
// agent (an llm-prompt manifest with an output JSON Schema): the router sends it to B only, B's
// answer is constrained by the schema (wllama grammar), and A gets JSON that parses and validates.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { eventually, startMesh, waitForFullMesh } from './harness.mjs'
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
    // The model with its context (what one request may hold: the model's 512) and speed, and A's mesh page lists it.
    await a.waitForFunction(
      (idB) => (window.zerostate.peers().find((p) => p.id === idB)?.capabilities ?? []).some((c) => /^llm-run\.llama\.c512\.t[1-9]\d*\.zs-tiny-llama$/.test(c)),
      ids[1],
      { timeout: 15_000 }
    )
    await a.waitForFunction(
      (idB) =>
        /zs-tiny-llama \(llama, 512-token context, ~[\d,]+ tokens\/s\)/.test(
          document.querySelector(`tr[data-peer="${idB}"] [data-testid="peer-models"]`)?.textContent ?? ''
        ),
      ids[1],
      { timeout: 15_000 }
    )
  })

  it("a prompt past the model's context fails on A with LlmContextExceededError naming the counts, counted on B; B goes on", async () => {
    const before = await b.evaluate(() => window.zerostate.metrics()['runtime.llmContextExceeded'] ?? 0)
    const submit = (input) =>
      a.evaluate(async (text) => {
        const agent = window.zerostate.agents.list({ capability: 'llm-summarization' })[0]
        try {
          const r = await window.zerostate.submit({
            description: 'summarize',
            agent: agent.id,
            input: text,
            preferences: { verification: 'none', retry_policy: { max_attempts: 1 } }
          }).done
          return { ok: true, peer: r.steps[0].peer }
        } catch (err) {
          return { ok: false, message: err.message }
        }
      }, input)
    const r = await submit('ab '.repeat(600))
    assert.equal(r.ok, false)
    assert.match(r.message, /LlmContextExceededError: The prompt is \d+ tokens and the model's context is 512/)
    assert.equal(await b.evaluate(() => window.zerostate.metrics()['runtime.llmContextExceeded']), before + 1)
    assert.deepEqual(await submit('a short text'), { ok: true, peer: ids[1] })
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

// Settings → "Donate a language model" (issue 14): the same tiny GGUF, loaded the way a user would, from
// a URL and from a file, with progress; models that cannot run are refused with a sentence saying why;
// the loaded model shows with its speed, can be unloaded, and a second load from the URL comes from the
// browser's cache. Then an llm-prompt agent that declares tools runs on that donor: its first turn is a
// tool call held by the grammar (toolChoice "required"), which goes through B's real tool host, and the
// answer comes back to A; a tool B has not granted fails the step with ToolDeniedError.
describe('Settings: a donor loads a GGUF model, and llm-prompt agents call tools on it', () => {
  // A 2048-token context: the tool specs in the system text take ~600 of this character-level vocabulary's tokens.
  const gguf = tinyLlamaGguf({ nCtx: 2048 })
  let mesh, a, b, ids
  /** GET requests for the model's whole file (not the Range check, not a HEAD), by path. */
  const downloads = new Map()
  let releaseSlow
  const slowDownload = new Promise((resolve) => {
    releaseSlow = resolve
  })
  before(async () => {
    mesh = await startMesh()
    const ctxB = await mesh.newContext()
    await ctxB.route('**/models/**', async (route) => {
      const url = new URL(route.request().url())
      const range = route.request().headers().range
      if (range == null && route.request().method() === 'GET') downloads.set(url.pathname, (downloads.get(url.pathname) ?? 0) + 1)
      if (url.pathname === MODEL_PATH) return await route.fulfill({ status: 200, contentType: 'application/octet-stream', body: Buffer.from(gguf) })
      // An HTML page where the model should be (a Hugging Face "blob" link instead of "resolve").
      if (url.pathname === '/models/page.gguf')
        return await route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>model</title>' })
      // A download that hangs until the test is over (the user cancels it).
      if (url.pathname === '/models/slow.gguf' && range == null) return await slowDownload.then(() => route.abort().catch(() => {}))
      if (url.pathname === '/models/slow.gguf') return await route.fulfill({ status: 200, body: Buffer.from(gguf) })
      // A 40 GB model: the Range check learns its size from Content-Range before anything is downloaded.
      if (url.pathname === '/models/huge.gguf')
        return await route.fulfill({ status: 206, headers: { 'content-range': 'bytes 0-15/42949672960' }, body: Buffer.from(gguf.subarray(0, 16)) })
      return await route.fulfill({ status: 404, body: 'not found' })
    })
    ;[a, b] = [await mesh.newPeer(), await mesh.newPeer({ context: ctxB, path: '/settings' })]
    ids = await waitForFullMesh([a, b], 30_000)
    await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
    await b.waitForSelector('[data-testid="gguf-panel"][data-state="idle"]')
  })
  after(async () => {
    releaseSlow()
    await mesh?.stop()
  })

  const loadUrl = async (path) => {
    await b.fill('[data-testid="gguf-url"]', new URL(path, mesh.url).href)
    await b.click('[data-testid="gguf-load-url"]')
  }
  const errorShown = async () => {
    const el = await b.waitForSelector('[data-testid="gguf-error"]', { timeout: 30_000 })
    return { name: await el.getAttribute('data-error'), text: await el.textContent() }
  }

  it('models that cannot run here are refused with a sentence saying why, before any download', { timeout: 120_000 }, async () => {
    await loadUrl('/models/page.gguf')
    let e = await errorShown()
    assert.equal(e.name, 'GgufFormatError')
    assert.match(e.text, /is not a GGUF model \(it looks like an HTML page/)
    await loadUrl('/models/huge.gguf')
    await b.waitForSelector('[data-testid="gguf-error"][data-error="ModelTooLargeError"]', { timeout: 30_000 })
    e = await errorShown()
    assert.match(e.text, /is 40\.0 GB, too big to run here: /)
    assert.equal(downloads.get('/models/huge.gguf') ?? 0, 0, 'the 40 GB model was never downloaded')
    await loadUrl('/models/missing.gguf')
    await b.waitForSelector('[data-testid="gguf-error"][data-error="ModelUnreachableError"]', { timeout: 30_000 })
    assert.match((await errorShown()).text, /answered HTTP 404/)
    // A file that is not GGUF (a PNG), picked on disk.
    await b.setInputFiles('[data-testid="gguf-file"]', {
      name: 'photo.png',
      mimeType: 'image/png',
      buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0])
    })
    await b.click('[data-testid="gguf-load-file"]')
    await b.waitForSelector('[data-testid="gguf-error"][data-error="GgufFormatError"]', { timeout: 30_000 })
    assert.match((await errorShown()).text, /"photo\.png" is not a GGUF model/)
  })

  it('a download under way can be cancelled: the panel goes back to no model and says so', { timeout: 120_000 }, async () => {
    await loadUrl('/models/slow.gguf')
    await b.waitForSelector('[data-testid="gguf-panel"][data-state="loading"] [data-testid="gguf-progress"]', { timeout: 30_000 })
    await b.click('[data-testid="gguf-cancel"]')
    await b.waitForSelector('[data-testid="gguf-panel"][data-state="idle"]', { timeout: 30_000 })
    assert.match(await b.textContent('[data-testid="gguf-state"]'), /The load was cancelled\. No model loaded/)
    assert.equal(await b.evaluate(() => window.zerostate.llm.gguf()), undefined)
  })

  it('B loads the model from its URL in Settings with progress, sees it with its speed, and A sees B advertise llm', { timeout: 180_000 }, async () => {
    // Watch the panel from before the click: the progress bar and its text as they are drawn.
    await b.evaluate(() => {
      window.__seen = { bars: 0, texts: [] }
      new MutationObserver(() => {
        if (document.querySelector('[data-testid="gguf-progress"]') != null) window.__seen.bars++
        const t = document.querySelector('[data-testid="gguf-progress-text"]')?.textContent
        if (t != null && window.__seen.texts.at(-1) !== t) window.__seen.texts.push(t)
      }).observe(document.body, { childList: true, subtree: true, characterData: true, attributes: true })
    })
    await loadUrl(MODEL_PATH)
    await b.waitForSelector('[data-testid="gguf-panel"][data-state="ready"]', { timeout: 120_000 })
    const seen = await b.evaluate(() => window.__seen)
    assert.ok(seen.bars > 0, 'the progress bar was shown')
    assert.ok(
      seen.texts.some((t) => /Loading .*zs-tiny-llama\.gguf: \d+\.\d of \d+\.\d MB/.test(t)),
      `download progress was shown: ${JSON.stringify(seen.texts)}`
    )
    assert.equal(await b.textContent('[data-testid="gguf-model-name"]'), 'zs-tiny-llama')
    await b.waitForFunction(() => /^\d+(\.\d)? tokens\/s$/.test(document.querySelector('[data-testid="gguf-speed"]')?.textContent ?? ''), null, {
      timeout: 60_000
    })
    assert.equal(downloads.get(MODEL_PATH), 1)
    await a.waitForFunction(
      (idB) =>
        ['llm', 'llm-prompt', 'llm-model-zs-tiny-llama'].every((c) =>
          window.zerostate
            .peers()
            .find((p) => p.id === idB)
            ?.capabilities.includes(c)
        ),
      ids[1],
      { timeout: 15_000 }
    )
  })

  it('a prompt step from A runs on the model B loaded in Settings', { timeout: 180_000 }, async () => {
    const r = await a.evaluate(async () => {
      const agent = window.zerostate.agents.list({ capability: 'llm-classification' })[0]
      try {
        const res = await window.zerostate.submit({ description: 'classify', agent: agent.id, input: 'what a day', preferences: { verification: 'none' } }).done
        return { ok: true, output: res.output, peer: res.steps[0].peer }
      } catch (err) {
        return { ok: false, message: `${err.name}: ${err.message}` }
      }
    })
    assert.equal(r.ok, true, r.message)
    assert.equal(r.peer, ids[1])
    assert.ok(['positive', 'negative', 'neutral'].includes(r.output.label), JSON.stringify(r.output))
  })

  it('Unload stops B advertising llm; loading the URL again comes from the cache; a file loads too', { timeout: 240_000 }, async () => {
    await b.click('[data-testid="gguf-unload"]')
    await b.waitForSelector('[data-testid="gguf-panel"][data-state="idle"]')
    await a.waitForFunction(
      (idB) =>
        !window.zerostate
          .peers()
          .find((p) => p.id === idB)
          ?.capabilities.includes('llm-prompt'),
      ids[1],
      { timeout: 15_000 }
    )
    await loadUrl(MODEL_PATH)
    await b.waitForSelector('[data-testid="gguf-panel"][data-state="ready"]', { timeout: 120_000 })
    assert.match(await b.textContent('[data-testid="gguf-state"]'), /from this browser’s cache/)
    assert.equal(downloads.get(MODEL_PATH), 1, 'the second load did not download the model again')
    await b.click('[data-testid="gguf-unload"]')
    await b.waitForSelector('[data-testid="gguf-panel"][data-state="idle"]')
    await b.setInputFiles('[data-testid="gguf-file"]', { name: 'tiny.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from(gguf) })
    await b.click('[data-testid="gguf-load-file"]')
    await b.waitForSelector('[data-testid="gguf-panel"][data-state="ready"]', { timeout: 120_000 })
    assert.equal(await b.textContent('[data-testid="gguf-model-name"]'), 'zs-tiny-llama')
    await a.waitForFunction(
      (idB) =>
        window.zerostate
          .peers()
          .find((p) => p.id === idB)
          ?.capabilities.includes('llm-prompt'),
      ids[1],
      { timeout: 15_000 }
    )
  })

  /** Publish an llm-prompt agent with tools from B (it holds it), wait until A lists it; its id. */
  async function publishToolAgent(name, tools) {
    const id = await b.evaluate(
      async ({ name, tools }) => {
        const manifest = {
          name,
          version: '1.0.0',
          description: `An LLM agent that calls ${tools.join(', ')} (test).`,
          capabilities: [`test-${name}`],
          abi: 'llm-prompt',
          tools,
          output: { enum: ['yes', 'no'] },
          limits: { timeMs: 120000 },
          llm: { prompt: 'Question: {{input}}\nAnswer:', toolChoice: 'required', generation: { maxTokens: 900, temperature: 0, seed: 7 } }
        }
        return (await window.zerostate.agents.publish({ manifest, wasm: new Uint8Array() })).id
      },
      { name, tools }
    )
    await a.waitForFunction((id) => window.zerostate.agents.get(id) != null, id, { timeout: 30_000 })
    return id
  }
  const submit = (agentId) =>
    a.evaluate(async (agentId) => {
      const h = window.zerostate.submit({
        description: 'ask with tools',
        agent: agentId,
        input: 'is the scratch space empty?',
        preferences: { verification: 'none' }
      })
      try {
        const r = await h.done
        return { ok: true, id: h.id, output: r.output, peer: r.steps[0].peer }
      } catch (err) {
        return { ok: false, id: h.id, name: err.name, message: err.message }
      }
    }, agentId)

  it('an llm-prompt agent whose manifest declares kv.scratch calls it on B (grammar-held call, real tool host) and answers', { timeout: 240_000 }, async () => {
    const id = await publishToolAgent('scratch-llm', ['kv.scratch'])
    const before = await b.evaluate(() => window.zerostate.metrics())
    const r = await submit(id)
    assert.equal(r.ok, true, `${r.name}: ${r.message}`)
    assert.equal(r.peer, ids[1])
    assert.ok(['yes', 'no'].includes(r.output), JSON.stringify(r.output))
    const m = await b.evaluate(() => window.zerostate.metrics())
    const calls = (m['tools.calls.kv.scratch'] ?? 0) - (before['tools.calls.kv.scratch'] ?? 0)
    assert.ok(calls >= 1, `B's tool host ran kv.scratch ${calls} times`)
    assert.equal((m['tools.denied'] ?? 0) - (before['tools.denied'] ?? 0), 0)
    // The donor's tool spans come back to A in the step's trace.
    await eventually(
      async () => {
        const trace = await a.evaluate((t) => window.zerostate.trace(t), r.id)
        return trace.spans.some((s) => s.name === 'donor.tool' && s.attributes['tool.name'] === 'kv.scratch')
      },
      { timeout: 15_000, message: "A's trace to hold B's kv.scratch span" }
    )
  })

  it('a tool B has not granted (memory.get) fails the step with ToolDeniedError naming the tool and the donor grant', { timeout: 240_000 }, async () => {
    const id = await publishToolAgent('memo-llm', ['memory.get'])
    const r = await submit(id)
    assert.equal(r.ok, false, 'the step must fail')
    assert.match(r.message, /ToolDeniedError|may not call memory\.get/, r.message)
    assert.match(r.message, /"memo-llm" may not call memory\.get on this peer: the donor has not granted it/, r.message)
    assert.ok((await b.evaluate(() => window.zerostate.metrics()))['tools.denied'] >= 1)
  })
})
