// Browser tests of the agent runtime in Chromium (node --test test/runtime.test.mjs).
// Runs against a production build of test/fixtures/runtime-page (the runtime as Vite bundles it,
// with the real module worker). When the app exposes window.zerostate.runtime, the last test also
// runs a bundled agent there through the shared harness.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { startBuiltRuntimePage, CHROMIUM_ARGS } from './fixtures/runtime-page/server.mjs'
import { modules } from './fixtures/runtime-wat.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
let site, browser, page

before(async () => {
  if (!existsSync(`${root}static/agents/word-stats.wasm`)) execFileSync('node', ['agents/build.mjs'], { cwd: root, stdio: 'ignore' })
  site = await startBuiltRuntimePage(`${tmpdir()}/zerostate-runtime-test`)
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS })
  page = await browser.newPage()
  await page.goto(site.url)
  await page.waitForFunction(() => window.runtimeReady === true)
  await page.evaluate(async () => {
    const { createAgentRuntime, signPackage } = window.runtimeLib
    const identity = await window.testIdentity()
    window.pkg = async (bytes, abi, extra = {}) => {
      const wasm = new Uint8Array(bytes)
      const s = await signPackage(
        identity,
        { name: 'browser-test', version: '1.0.0', description: '', capabilities: ['testing'], abi, price: 0, ...extra },
        wasm
      )
      return { ...s, wasm }
    }
    window.rt = createAgentRuntime({ workers: 1 })
    await window.rt.start()
  })
})
after(async () => {
  await browser?.close()
  await site?.close()
})

test('an infinite loop is stopped at its deadline and the next task on the pool succeeds', async () => {
  const res = await page.evaluate(
    async ([loop, echo]) => {
      const looping = await window.pkg(loop, 'wasi-preview1')
      const t = performance.now()
      const err = await window.rt.run(looping, '', { timeoutMs: 300 }).then(
        () => null,
        (e) => ({ name: e.name, message: e.message })
      )
      const rejectedAfter = performance.now() - t
      const next = await window.rt.run(await window.pkg(echo, 'json-v1'), { after: 'loop' })
      return { err, rejectedAfter, next: next.output, stats: window.rt.stats() }
    },
    [[...modules.wasiLoop()], [...modules.jsonEcho()]]
  )
  assert.equal(res.err?.name, 'AgentTimeoutError')
  assert.match(res.err.message, /within 300 ms/)
  // The 300 ms deadline (not the 30 s default) ended it; how promptly is measured by bench:runtime.
  assert.ok(res.rejectedAfter >= 295 && res.rejectedAfter < 5000, `rejected after ${res.rejectedAfter} ms`)
  assert.deepEqual(res.next, { after: 'loop' })
  assert.equal(res.stats.workers, 1)
  assert.equal(res.stats.replaced, 1)
})

test('a memory bomb declaring its own 4 GiB maximum is stopped at its cap', async () => {
  const res = await page.evaluate(
    async (bomb) => {
      const r = await window.rt.run(await window.pkg(bomb, 'wasi-preview1', { limits: { memoryMiB: 32 } }), '').then(
        () => null,
        (e) => ({ name: e.name, message: e.message })
      )
      return r
    },
    [...modules.memoryBombOwnMax()]
  )
  assert.equal(res?.name, 'AgentMemoryLimitError')
  const used = Number(/\(([\d.]+) MiB in use\)/.exec(res.message)?.[1])
  assert.ok(used <= 32 && used > 24, res.message)
})

test('a module importing outside its ABI is refused with a clear message', async () => {
  const res = await page.evaluate(
    async (bad) => {
      return await window.rt.run(await window.pkg(bad, 'json-v1'), 1).then(
        () => null,
        (e) => ({ name: e.name, message: e.message })
      )
    },
    [...modules.forbiddenImport()]
  )
  assert.deepEqual(res, {
    name: 'ForbiddenImportError',
    message: 'module imports "env.fetch", which the json-v1 ABI does not allow (only "env.abort", "env.log")'
  })
})

test('a bundled WASI agent runs in a real worker, fetched once and then served from IndexedDB', async () => {
  const res = await page.evaluate(async () => {
    const { bundledAgents, loadBundledAgent, IndexedDbAgentStore } = window.runtimeLib
    const agents = await bundledAgents()
    const entry = agents.find((a) => a.manifest.name === 'summarize')
    const store = new IndexedDbAgentStore('runtime-browser-test')
    const pkg = await loadBundledAgent(entry, store)
    const out = await window.rt.run(pkg, 'Bees make honey. Honey is sweet food made by bees. The sky is blue. Bees and honey are linked. Cars are fast.')
    const fetches = performance.getEntriesByType('resource').filter((r) => r.name.endsWith('/agents/summarize.wasm')).length
    await loadBundledAgent(entry, new IndexedDbAgentStore('runtime-browser-test'))
    const fetchesAfter = performance.getEntriesByType('resource').filter((r) => r.name.endsWith('/agents/summarize.wasm')).length
    return { abi: entry.manifest.abi, out: out.output, fetches, fetchesAfter, count: agents.length }
  })
  assert.equal(res.abi, 'wasi-preview1')
  assert.ok(res.count >= 8)
  assert.equal(res.out.totalSentences, 5)
  assert.deepEqual(res.out.sentences, [0, 1, 3])
  assert.equal(res.fetches, 1)
  assert.equal(res.fetchesAfter, 1)
})

test('errors keep their names in the minified production bundle', async () => {
  const res = await page.evaluate(
    async (trap) =>
      window.rt.run(await window.pkg(trap, 'wasi-preview1'), '').then(
        () => null,
        (e) => ({ name: e.name, isRuntime: e instanceof window.runtimeLib.RuntimeError })
      ),
    [...modules.wasiTrap()]
  )
  assert.deepEqual(res, { name: 'AgentTrapError', isRuntime: true })
})

test('the app runs bundled agents in its worker pool and refuses a forbidden import on publish', async () => {
  const { startMesh } = await import('./harness.mjs')
  const mesh = await startMesh()
  try {
    const p = await mesh.newPeer()
    await p.waitForFunction(() => window.zerostate.agents.list({ capability: 'text-statistics' }).length > 0, null, { timeout: 10_000 })
    const out = await p.evaluate(async () => {
      const agent = window.zerostate.agents.list({ capability: 'text-statistics' })[0]
      return (await window.zerostate.agents.run(agent.id, 'One two three.')).output
    })
    assert.equal(out.words, 3)
    const err = await p.evaluate(
      async (bytes) => {
        try {
          await window.zerostate.agents.publish({
            manifest: { name: 'sneaky', version: '1.0.0', description: 'tries to fetch', capabilities: ['testing'], abi: 'json-v1', price: 0 },
            wasm: new Uint8Array(bytes)
          })
          return null
        } catch (e) {
          return { name: e.name, message: e.message }
        }
      },
      [...modules.forbiddenImport()]
    )
    assert.equal(err?.name, 'ForbiddenImportError')
    assert.match(err.message, /env\.fetch/)
    assert.equal(await p.evaluate(() => window.zerostate.agents.list({ text: 'sneaky' }).length), 0)
  } finally {
    await mesh.stop()
  }
})
