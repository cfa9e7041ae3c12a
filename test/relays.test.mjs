// Several relays (issue 16): relays peer with each other (gossipsub direct peers), so tabs
// that joined through different relays find each other, and when a relay dies, tabs keep
// joining through the others.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { eventually, launchBrowser, startRelay, waitForApi, waitForFullMesh } from './harness.mjs'

describe('several relays', () => {
  let r1
  let r2
  let browser
  before(async () => {
    r1 = await startRelay()
    // The second relay peers with the first (one side is enough: it redials while the first is away).
    r2 = await startRelay({ args: ['--peer', r1.multiaddrs[0]] })
    browser = await launchBrowser()
  })
  after(async () => {
    await browser?.close().catch(() => {})
    await r1?.kill()
    await r2?.kill()
  })

  /** A tab whose relay list (in order of preference) is `relays`, served by the second relay's app server. */
  async function tab(relays) {
    const ctx = await browser.newContext()
    await ctx.addInitScript(() => {
      localStorage.setItem('zerostate:spending', JSON.stringify({ allowance: 1e6 }))
    })
    await ctx.route('**/zerostate/relays.json', (route) => route.fulfill({ contentType: 'application/json', body: JSON.stringify({ relays }) }))
    const page = await ctx.newPage()
    await page.goto(r2.url)
    await waitForApi(page, 60_000)
    return page
  }
  const joinedThrough = (page) => page.evaluate(() => window.zerostate.relayStatus().connected)

  it('tabs of different relays link directly; with one relay killed a new tab joins through the other and reaches them', async () => {
    // The second relay's own list names both (the --peer one too), so its pages may dial both.
    const served = (await (await fetch(new URL('/zerostate/relays.json', r2.url))).json()).relays
    assert.deepEqual(new Set(served), new Set([...r2.multiaddrs, ...r1.multiaddrs]))

    const a = await tab([r1.multiaddrs[0], r2.multiaddrs[0]])
    const b = await tab([r2.multiaddrs[0], r1.multiaddrs[0]])
    // Each joined through one relay only: what one publishes reaches the other only through the relays' peering.
    assert.deepEqual(await joinedThrough(a), [r1.peerId])
    assert.deepEqual(await joinedThrough(b), [r2.peerId])
    const [idA, idB] = await waitForFullMesh([a, b], 60_000)

    await r1.kill()
    // A falls back on the second relay (its direct link to B does not need any relay).
    await eventually(async () => (await joinedThrough(a)).includes(r2.peerId), { timeout: 30_000, message: 'tab A to join through relay 2' })
    assert.ok(
      (await b.evaluate(() => window.zerostate.peers())).some((p) => p.id === idA && p.transport === 'webrtc'),
      'A and B stay linked'
    )

    // C prefers the dead relay: it joins through the other and reaches B (and A) directly.
    const c = await tab([r1.multiaddrs[0], r2.multiaddrs[0]])
    assert.deepEqual(await joinedThrough(c), [r2.peerId])
    const ids = await waitForFullMesh([a, b, c], 60_000)
    assert.deepEqual(ids.slice(0, 2), [idA, idB])
  })
})
