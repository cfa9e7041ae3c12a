// The memory layer in real Chromium, independent of how the app wires it: the
// layer is bundled with esbuild and driven directly. Covers what Node cannot show:
// real IndexedDB across a reload, BroadcastChannel between two tabs of one
// profile, WebCrypto Ed25519 signatures and the module-worker update check.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { build } from 'esbuild'
import { launchBrowser } from './harness.mjs'

const ROOT = new URL('..', import.meta.url).pathname

const ENTRY = `
  import { createMemoryLayer, defaultUpdateChecker } from './src/lib/memory/index.ts'
  import { loadIdentity, MemoryKeyStore } from './src/lib/core/index.ts'
  window.startLayer = async (prefix) => {
    const identity = await loadIdentity(new MemoryKeyStore())
    const layer = createMemoryLayer({ identity, persistence: 'indexeddb', dbPrefix: prefix })
    await layer.start()
    window.layer = layer
    return identity.publicKey
  }
  window.checkWorker = async () => {
    const checker = defaultUpdateChecker(2000)
    const out = {}
    try { await checker.check(new Uint8Array([0, 0])); out.valid = 'ok' } catch (e) { out.valid = e.name }
    try { await checker.check(new Uint8Array([0xde, 0xad, 0xbe, 0xef])); out.garbage = 'ok' } catch (e) { out.garbage = e.name }
    checker.destroy()
    return out
  }
  document.title = 'ready'
`

describe('memory layer in Chromium', () => {
  let server, browser, url
  before(async () => {
    const opts = {
      bundle: true,
      format: 'esm',
      write: false,
      target: 'es2022',
      platform: 'browser',
      logLevel: 'error',
      define: { 'process.env.NODE_ENV': '"production"' }
    }
    const page = await build({ ...opts, stdin: { contents: ENTRY, resolveDir: ROOT, loader: 'ts' } })
    const worker = await build({ ...opts, entryPoints: [`${ROOT}src/lib/memory/update-check-worker.ts`] })
    const files = {
      '/': ['text/html', '<!doctype html><script type="module" src="/app.js"></script>'],
      '/app.js': ['text/javascript', page.outputFiles[0].contents],
      // The bundle resolves new URL('./update-check-worker.ts', import.meta.url) next to itself.
      '/update-check-worker.ts': ['text/javascript', worker.outputFiles[0].contents]
    }
    server = createServer((req, res) => {
      const f = files[req.url]
      if (f == null) {
        res.statusCode = 404
        res.end()
        return
      }
      res.setHeader('content-type', f[0])
      res.end(f[1])
    })
    await new Promise((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${server.address().port}/`
    browser = await launchBrowser()
  })
  after(async () => {
    await browser?.close()
    server?.close()
  })

  async function open(context) {
    const page = await context.newPage()
    await page.goto(url)
    await page.waitForFunction(() => document.title === 'ready')
    return page
  }

  it("two tabs of one profile see each other's writes live, and a reload keeps them", async () => {
    const ctx = await browser.newContext()
    const one = await open(ctx)
    const two = await open(ctx)
    await one.evaluate(() => window.startLayer('p1:'))
    await two.evaluate(() => window.startLayer('p1:'))
    await one.evaluate(() => window.layer.memory.set('notes', 'a', { from: 'one' }))
    await two.waitForFunction(() => window.layer.memory.get('notes', 'a')?.from === 'one', null, { timeout: 2000, polling: 10 })
    const entry = await two.evaluate(() =>
      window.layer.registry.publish({ id: 'tabbed', manifest: { name: 'T', capabilities: ['x'] }, moduleSha256: 'cd'.repeat(32) })
    )
    assert.match(entry.signature, /^[A-Za-z0-9_-]{80,90}$/)
    await one.waitForFunction(() => window.layer.registry.list({ capability: 'x' }).length === 1, null, { timeout: 2000, polling: 10 })
    await one.evaluate(() => window.layer.journal.put({ id: 't1', status: 'running', createdAt: 1, updatedAt: 1, steps: [] }))
    await two.waitForFunction(() => window.layer.journal.get('t1')?.status === 'running', null, { timeout: 2000, polling: 10 })
    // Reload both tabs: everything comes back from IndexedDB (no peers, no other tab alive).
    await two.close()
    await one.reload()
    await one.waitForFunction(() => document.title === 'ready')
    await one.evaluate(() => window.startLayer('p1:'))
    const state = await one.evaluate(() => ({
      note: window.layer.memory.get('notes', 'a'),
      agents: window.layer.registry.list().map((e) => e.id),
      task: window.layer.journal.get('t1')?.status
    }))
    assert.deepEqual(state, { note: { from: 'one' }, agents: ['tabbed'], task: 'running' })
    await ctx.close()
  })

  it('another profile shares nothing with it', async () => {
    const ctx = await browser.newContext()
    const page = await open(ctx)
    await page.evaluate(() => window.startLayer('p1:'))
    assert.deepEqual(await page.evaluate(() => window.layer.memory.keys('notes')), [])
    await ctx.close()
  })

  it('the update check runs in a module worker: valid passes, garbage is refused', async () => {
    const ctx = await browser.newContext()
    const page = await open(ctx)
    assert.deepEqual(await page.evaluate(() => window.checkWorker()), { valid: 'ok', garbage: 'RejectedUpdateError' })
    await ctx.close()
  })
})
