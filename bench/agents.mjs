// bench:agents (issue 14): the tiny generated GGUF model (test/fixtures/gguf.mjs) in wllama
// (llama.cpp in WebAssembly, single-thread: the pages are not cross-origin isolated), in real
// Chromium tabs of the built app with the real relay. Donor B loads the model; then, in the same
// run and interleaved:
// - on B itself: summarize-llm and classify-llm (JSON Schema grammar) through the runtime as a
//   donor runs them: time to first token, tokens/s after it;
// - from submitter A over the mesh: summarize-llm submitted to B, time from submit to the first
//   token event on A, beside one open-stream round trip A→B (zerostate.ping).
// Prints the figures and writes bench/results/agents.json. Not measured here: the 4 MP image resize
// (no media agents yet).
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { startMesh, waitForFullMesh } from '../test/harness.mjs'
import { tinyLlamaGguf } from '../test/fixtures/gguf.mjs'

const RUNS = Number(process.env.RUNS ?? 7)
const MODEL_PATH = '/models/zs-tiny-llama.gguf'
const INPUT = 'Tabs lend their CPUs to the mesh. A donor with a model answers prompts for peers without one. '.repeat(3)
const gguf = tinyLlamaGguf()

const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  return s.length === 0 ? null : s[Math.floor(s.length / 2)]
}
const round = (x) => (x == null ? null : Math.round(x * 10) / 10)

const mesh = await startMesh()
try {
  const ctxB = await mesh.newContext()
  await ctxB.route(`**${MODEL_PATH}`, (route) => route.fulfill({ status: 200, contentType: 'application/octet-stream', body: Buffer.from(gguf) }))
  const a = await mesh.newPeer()
  const b = await mesh.newPeer({ context: ctxB })
  const [, idB] = await waitForFullMesh([a, b], 30_000)
  await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
  const load = await b.evaluate(async (path) => {
    const t0 = performance.now()
    const model = await window.zerostate.llm.loadGguf({ url: new URL(path, location.href).href })
    return { model, ms: performance.now() - t0 }
  }, MODEL_PATH)
  await a.waitForFunction((id) => (window.zerostate.peers().find((p) => p.id === id)?.capabilities ?? []).includes('llm-prompt'), idB, { timeout: 20_000 })

  /** One run on B's own runtime (the donor's view). */
  const onDonor = (name, input) =>
    b.evaluate(
      async ([agentName, text]) => {
        const zs = window.zerostate
        const agent = zs.agents.list({ text: agentName }).find((x) => x.name === agentName)
        let first
        let tokens = 0
        const start = performance.now()
        await zs.runtime.run({ id: agent.id, manifest: agent.manifest, wasm: new Uint8Array() }, text, {
          onToken: () => {
            first ??= performance.now() - start
            tokens++
          }
        })
        const ms = performance.now() - start
        return { ms, firstTokenMs: first, tokens, tokensPerS: tokens > 1 ? (tokens - 1) / ((ms - first) / 1000) : null }
      },
      [name, input]
    )
  /** One run submitted from A (the submitter's view), with a ping to B just before. */
  const fromSubmitter = (input) =>
    a.evaluate(
      async ([text, donor]) => {
        const zs = window.zerostate
        const rttMs = await zs.ping(donor)
        const agent = zs.agents.list({ capability: 'llm-summarization' })[0]
        const start = performance.now()
        let first
        let tokens = 0
        const h = zs.submit({ description: 'summarize', agent: agent.id, input: text, preferences: { verification: 'none' } })
        h.on('progress', (e) => {
          if (e.tokens == null) return
          first ??= performance.now() - start
          tokens++
        })
        const r = await h.done
        const ms = performance.now() - start
        return { ms, firstTokenMs: first, tokens, tokensPerS: tokens > 1 ? (tokens - 1) / ((ms - first) / 1000) : null, rttMs, peer: r.steps[0].peer }
      },
      [input, idB]
    )

  const donorSummarize = []
  const donorClassify = []
  const submitter = []
  for (let i = 0; i < RUNS; i++) {
    // A fresh input per run, tagged at its start: llama.cpp reuses the KV cache of a repeated prompt
    // prefix, so both sides share only the template's prefix and process the same number of new tokens.
    donorSummarize.push(await onDonor('summarize-llm', `[${i}d] ${INPUT}`))
    submitter.push(await fromSubmitter(`[${i}s] ${INPUT}`))
    donorClassify.push(await onDonor('classify-llm', `[${i}c] I love this`))
  }
  const wrong = submitter.filter((r) => r.peer !== idB).length
  const sum = (rows) => ({
    runs: rows.length,
    tokensMedian: median(rows.map((r) => r.tokens)),
    firstTokenMsMedian: round(median(rows.map((r) => r.firstTokenMs))),
    tokensPerSMedian: round(median(rows.map((r) => r.tokensPerS))),
    msMedian: round(median(rows.map((r) => r.ms)))
  })
  const ttftSubmitter = median(submitter.map((r) => r.firstTokenMs))
  const ttftDonor = median(donorSummarize.map((r) => r.firstTokenMs))
  const rtt = median(submitter.map((r) => r.rttMs))
  const result = {
    when: new Date().toISOString(),
    machine: { cores: cpus().length, loadavg: loadavg().map((x) => round(x)) },
    model: { ...load.model, bytes: gguf.byteLength, loadMs: round(load.ms) },
    donor: { summarize: sum(donorSummarize), classifyJsonSchema: sum(donorClassify) },
    submitter: { summarize: sum(submitter), ranElsewhere: wrong, openStreamRttMsMedian: round(rtt) },
    timeToFirstToken: {
      donorMs: round(ttftDonor),
      submitterMs: round(ttftSubmitter),
      addedMs: round(ttftSubmitter - ttftDonor),
      addedInRoundTrips: rtt > 0 ? round((ttftSubmitter - ttftDonor) / rtt) : null,
      goal: 'added delay at most 2 open-stream round trips'
    },
    notMeasured: ['4 MP image resize across the mesh (no media agents yet)']
  }
  console.log(JSON.stringify(result, null, 2))
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
  writeFileSync(new URL('./results/agents.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`)
} finally {
  await mesh.stop()
}
