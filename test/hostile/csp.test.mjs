// Content-Security-Policy (issue 11, beyond the list): the built pages carry SvelteKit's
// hash-mode policy in a <meta>, the relay's server sends the same policy as a header
// (connect-src narrowed to its own WebSocket address, framing forbidden), and the app works
// under both: it joins the mesh over the relay's WebSocket, tasks run in agent workers
// (WebAssembly compiled from bytes), and no violation is reported. A script injected into the
// page is refused with a securitypolicyviolation event.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startMesh, waitForApi, waitForFullMesh } from '../harness.mjs'
import { TEXT } from './scenario.mjs'

/** Record securitypolicyviolation events from the very start of every page of the context. */
async function watchedPeer(mesh) {
  const ctx = await mesh.newContext()
  await ctx.addInitScript(() => {
    window.__violations = []
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample })
    })
  })
  const page = await ctx.newPage()
  const res = await page.goto(mesh.url)
  await waitForApi(page)
  return { page, res }
}

describe('Content-Security-Policy', () => {
  let mesh
  before(async () => {
    mesh = await startMesh()
  })
  after(async () => {
    await mesh?.stop()
  })

  it('the app runs under the built policy and the relay header, and an injected inline script is refused', async () => {
    const { page: a, res } = await watchedPeer(mesh)
    const { page: b } = await watchedPeer(mesh)
    const header = res.headers()['content-security-policy']
    assert.ok(header, 'the relay sent no Content-Security-Policy header')
    assert.match(header, /script-src 'self' 'wasm-unsafe-eval' 'sha256-/)
    assert.match(header, /frame-ancestors 'none'/)
    const relayWs = new URL(mesh.url)
    assert.match(header, new RegExp(`connect-src 'self' ws://${relayWs.hostname.replace(/\./g, '\\.')}:\\d+`))
    assert.doesNotMatch(header, /connect-src[^;]* ws: /, 'the header should narrow ws: to the relay')
    const meta = await a.evaluate(() => document.querySelector('meta[http-equiv="content-security-policy"]')?.getAttribute('content') ?? '')
    assert.match(meta, /script-src 'self' 'wasm-unsafe-eval' 'sha256-/)
    assert.match(meta, /worker-src 'self' blob:/)

    // Under both: the mesh forms over the relay's WebSocket, and a task runs in B's agent worker.
    await waitForFullMesh([a, b])
    await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
    const idB = await b.evaluate(() => window.zerostate.peerId)
    await a.waitForFunction((id) => window.zerostate.peers().some((p) => p.id === id && p.donating), idB, { timeout: 15_000 })
    const result = await a.evaluate(async (text) => {
      const r = await window.zerostate.submit({ description: 'count the words', input: text }).done
      return { status: r.status, peer: r.steps?.[0]?.peer, output: r.output }
    }, TEXT)
    assert.equal(result.status, 'succeeded')
    assert.equal(result.peer, idB, 'the task did not run on the donor')
    // WebAssembly compiles from bytes on the page too ('wasm-unsafe-eval'): the smallest module.
    assert.equal(await a.evaluate(async () => (await WebAssembly.compile(Uint8Array.of(0, 97, 115, 109, 1, 0, 0, 0))) instanceof WebAssembly.Module), true)
    for (const p of [a, b]) assert.deepEqual(await p.evaluate(() => window.__violations), [], 'the app itself broke its policy')

    // An inline script injected into the page does not run, and the page hears why.
    const injected = await a.evaluate(async () => {
      const s = document.createElement('script')
      s.textContent = 'window.__injected = true'
      document.body.append(s)
      await new Promise((r) => setTimeout(r, 100))
      return { ran: window.__injected === true, violations: window.__violations }
    })
    assert.equal(injected.ran, false, 'an injected inline script ran')
    assert.ok(
      injected.violations.some((v) => v.directive === 'script-src-elem' && v.blocked === 'inline'),
      `no securitypolicyviolation for the inline script: ${JSON.stringify(injected.violations)}`
    )
  })
})
