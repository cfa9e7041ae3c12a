// What a new user hits on Settings, Mesh, Submit, Registry and Agents (issue 10 items 12-16),
// in real Chromium tabs against the real relay. A runs in the UTC time zone (no region from it)
// and never donates; B donates one worker.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { eventually, startMesh, waitForApi, waitForFullMesh } from './harness.mjs'

/** A locator's text as a reader sees it: whitespace collapsed, trimmed. */
async function text(locator) {
  return ((await locator.textContent()) ?? '').replace(/\s+/g, ' ').trim()
}

/** Client-side navigation (a reload would make the tab a new peer). */
async function go(page, href) {
  await page.click(`header nav a[href="${href}"]`)
  await page.waitForFunction((h) => location.pathname === h, href)
}

describe('settings, mesh table, submit form, registry and publish form', () => {
  let mesh, a, b, idA, idB
  before(async () => {
    mesh = await startMesh()
    const utc = await mesh.browser.newContext({ timezoneId: 'UTC' })
    a = await mesh.newPeer({ path: '/settings', context: utc })
    b = await mesh.newPeer({ path: '/settings', context: await mesh.browser.newContext({ timezoneId: 'Europe/Paris' }) })
    ;[idA, idB] = await waitForFullMesh([a, b])
  })
  after(async () => {
    await mesh?.stop()
  })

  it('item 12: a donor counts the steps it ran for others; a tab that never donated says only "Not donating."; the Mesh table names workers and free call slots apart', async () => {
    await b.check('[data-testid="donate-toggle"]')
    await b.waitForFunction(() => window.zerostate.donation().enabled && window.zerostate.donation().workers >= 1)
    // One worker, set on the page as a user would.
    await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
    await a.waitForFunction(
      (id) => window.zerostate.peers().some((p) => p.id === id && p.donating && p.freeWorkers > 0 && p.capabilities.includes('hashing')),
      idB,
      { timeout: 10_000 }
    )
    for (const input of ['abc', 'def']) {
      const r = await a.evaluate((text) => window.zerostate.submit({ description: 'hash this', input: text, agent: 'hash' }).done, input)
      assert.equal(r.status, 'succeeded')
      assert.equal(r.steps[0].peer, idB, 'the step ran on the donor')
    }
    const donorStatus = b.locator('[data-testid="donation-status"]')
    await eventually(async () => /2 steps run for other peers/.test(await text(donorStatus)), { message: 'the donor to count 2 steps' })
    assert.match(await text(donorStatus), /^Donating with 1 worker\b/)
    assert.equal(await donorStatus.getAttribute('data-served'), '2')

    // A submitted two tasks of its own and ran none for others.
    assert.equal(await text(a.locator('[data-testid="donation-status"]')), 'Not donating.')
    assert.equal(await a.evaluate(() => window.zerostate.donation().served), 0)

    // Stopping keeps the count, with a space after the sentence.
    await b.uncheck('[data-testid="donate-toggle"]')
    await eventually(async () => (await text(donorStatus)) === 'Not donating. 2 steps were run for other peers earlier.', {
      message: 'the stopped donor to keep its count'
    })
    await b.check('[data-testid="donate-toggle"]')
    await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))

    await go(a, '/')
    const row = a.locator(`[data-testid="peer-list"] tr[data-peer="${idB}"] [data-testid="peer-donating"]`)
    await eventually(async () => /^yes: 1 worker, \d+ call slots? free$/.test(await text(row)), { message: 'the Mesh table to name 1 worker' })
    await go(a, '/settings')
  })

  it('item 14: under UTC the region is not known and can be chosen; peers see it at once and after a reload; the Submit form suggests the same regions', async () => {
    const status = a.locator('[data-testid="region-status"]')
    assert.equal(await status.getAttribute('data-region'), 'unknown')
    assert.match(await text(status), /names no region/)
    assert.equal(await b.locator('[data-testid="region-status"]').getAttribute('data-region'), 'europe')

    await a.selectOption('[data-testid="region-select"]', 'asia')
    await b.waitForFunction((id) => window.zerostate.peers().find((p) => p.id === id)?.region === 'asia', idA, { timeout: 5000 })
    // The page repaints from coalesced change events (at most every 100 ms): wait for it, B may hear first.
    await a.waitForSelector('[data-testid="region-status"][data-region="asia"]', { timeout: 5000 })

    // A reload is a new peer of the same profile: it advertises the saved region from its first presence.
    await a.reload()
    await waitForApi(a)
    idA = await a.evaluate(() => window.zerostate.peerId)
    await b.waitForFunction((id) => window.zerostate.peers().find((p) => p.id === id)?.region === 'asia', idA, { timeout: 15_000 })
    assert.equal(await a.locator('[data-testid="region-select"]').inputValue(), 'asia')
    assert.deepEqual(await a.evaluate(() => window.zerostate.region().chosen), 'asia')
    await assert.rejects(
      a.evaluate(() => window.zerostate.setRegion('eu-west')),
      /not a region: choose one of europe, americas, asia, africa, oceania/
    )

    await go(a, '/submit')
    const options = await a.locator('[data-testid="pref-regions-list"] option').evaluateAll((os) => os.map((o) => o.value))
    assert.deepEqual(options, ['europe', 'americas', 'asia', 'africa', 'oceania'])
    assert.doesNotMatch((await a.locator('[data-testid="pref-regions"]').getAttribute('placeholder')) ?? '', /eu-west|us-east/)
  })

  it('item 13: min reputation is 0-1; a fault in the collapsed preferences opens them, marks the field and says so next to the button', async () => {
    if (!(await a.evaluate(() => location.pathname === '/submit'))) await go(a, '/submit')
    await a.fill('[data-testid="submit-description"]', 'hash this')
    await a.click('details summary:has-text("Routing preferences")')
    await a.fill('[data-testid="pref-min-reputation"]', '3')
    await a.click('details summary:has-text("Routing preferences")')
    assert.equal(await a.locator('details:has([data-testid="preferences"])').getAttribute('open'), null, 'collapsed again')

    await a.click('[data-testid="submit-button"]')
    const message = a.locator('[data-testid="pref-minReputation-error"]')
    await message.waitFor({ state: 'visible', timeout: 3000 })
    assert.equal(await text(message), 'Min reputation must be a number from 0 to 1.')
    const field = a.locator('[data-testid="pref-min-reputation"]')
    assert.equal(await field.getAttribute('aria-invalid'), 'true')
    assert.equal(await field.getAttribute('aria-describedby'), await message.getAttribute('id'))
    assert.equal(await field.evaluate((el) => el === document.activeElement), true, 'focus moves to the faulty field')
    assert.match(await text(a.locator('[data-testid="submit-error"]')), /Min reputation/)
    assert.equal(await a.evaluate(() => location.pathname), '/submit', 'no task was submitted')

    // Fixed: the message goes and the task is submitted.
    await field.fill('0.5')
    await a.click('[data-testid="submit-button"]')
    await a.waitForFunction(() => location.pathname.startsWith('/tasks/'), null, { timeout: 5000 })
  })

  it('item 15: bundled agents are held by every peer, the same on Registry and Agents', async () => {
    await go(a, '/registry')
    const row = a.locator('[data-testid="registry-row"]:has-text("summarize")').first()
    const holders = row.locator('[data-testid="registry-holders"]')
    await eventually(async () => /^every peer \(\d+ now\)$/.test(await text(holders)), { message: 'the registry to show holders' })
    const n = Number(/\((\d+) now\)/.exec(await text(holders))[1])
    assert.ok(n >= 2, `this tab and B hold it (saw ${n})`)
    const id = await row.getAttribute('data-agent-id')
    await go(a, '/agents')
    assert.equal(await text(a.locator(`[data-testid="agent-row"][data-agent-id="${id}"] [data-testid="agent-holders"]`)), `every peer (${n} now)`)
  })

  it('item 16: the publish form names every faulty field in a sentence next to it (price included); price may be left out', async () => {
    if (!(await a.evaluate(() => location.pathname === '/agents'))) await go(a, '/agents')
    const form = a.locator('[data-testid="publish-form"]')
    await form.locator('input[name="name"]').fill('')
    await form.locator('input[name="capabilities"]').fill('testing')
    await form.locator('input[name="price"]').fill('-3')
    await a.click('[data-testid="publish-button"]')
    const errors = form.locator('[data-testid="publish-field-error"]')
    await errors.first().waitFor({ state: 'visible', timeout: 3000 })
    const byField = Object.fromEntries(await errors.evaluateAll((es) => es.map((e) => [e.dataset.field, e.textContent.trim()])))
    assert.deepEqual(Object.keys(byField).sort(), ['name', 'price'])
    assert.match(byField.name, /^Give the agent a name/)
    assert.match(byField.price, /^The price cannot be negative/)
    for (const text of Object.values(byField)) assert.doesNotMatch(text, /Invalid length|Expected|received/)
    const name = form.locator('input[name="name"]')
    assert.equal(await name.getAttribute('aria-invalid'), 'true')
    assert.equal(await name.getAttribute('aria-describedby'), 'publish-name-error')
    assert.match(await text(a.locator('[data-testid="publish-error"]')), /Name, Price/)

    // The API reports every field too, and a manifest without a price is a free agent.
    const api = await a.evaluate(async () => {
      const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])
      const bad = await window.zerostate.agents
        .publish({ manifest: { name: '', version: '1.0.0', description: '', capabilities: [], abi: 'json-v1', price: -3 }, wasm })
        .catch((e) => ({ name: e.name, message: e.message, issues: e.issues }))
      return bad
    })
    assert.equal(api.name, 'InvalidManifestError')
    assert.deepEqual(
      api.issues.map((i) => i.field),
      ['name', 'capabilities', 'price']
    )
  })
})
