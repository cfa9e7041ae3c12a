// Observability on every page (issue 15): alert rules are checked from the app's start and a
// rule that starts firing shows as a notice (with its figure) on whatever page the user is on;
// the Dashboard's history is sampled and saved from the start, so a reload shows it without
// the Dashboard ever having been open; and a tab's Logs page, opened fresh, already lists the
// tab's start, its relay, the peers that joined, donation switched on and its tasks (with
// their trace ids) at the default info level.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { eventually, startMesh, waitForApi } from './harness.mjs'

/** Submit n tasks that fail (an agent nobody has); resolves with their ids once all failed. */
const failTasks = (page, n) =>
  page.evaluate(async (n) => {
    const ids = []
    for (let i = 0; i < n; i++) {
      const h = window.zerostate.submit({ description: 'run a missing agent', agent: `no-such-agent-${i}`, input: 'x' })
      ids.push(h.id)
      const outcome = await h.done.then(
        (r) => r.status,
        () => 'failed'
      )
      if (outcome !== 'failed') throw new Error(`task ${h.id} ${outcome}, expected it to fail`)
    }
    return ids
  }, n)

/** The failed-task counts of the samples this tab's profile saved in IndexedDB. */
const savedFailed = (page) =>
  page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const req = indexedDB.open('zerostate-metrics')
        req.onerror = () => reject(req.error)
        req.onsuccess = () => {
          const db = req.result
          if (!db.objectStoreNames.contains('samples')) return resolve([])
          const all = db.transaction('samples').objectStore('samples').getAll()
          all.onsuccess = () => {
            db.close()
            resolve(all.result.map((s) => s.failed))
          }
          all.onerror = () => reject(all.error)
        }
      })
  )

describe('observability on every page', () => {
  let mesh, a, b
  before(async () => {
    mesh = await startMesh()
    a = await mesh.newPeer({ path: '/dashboard' })
  })
  after(async () => {
    await mesh?.stop()
  })

  it('a tab opened on the Logs page lists its start, relay, peers, donation and tasks at info level', async () => {
    b = await mesh.newPeer({ path: '/logs' })
    const [aId, bId] = await Promise.all([a, b].map((p) => p.evaluate(() => window.zerostate.peerId)))
    const records = () =>
      b.$$eval('[data-testid="log-record"]', (els) =>
        els.map((e) => ({ level: e.dataset.level, module: e.dataset.module, trace: e.dataset.traceId, task: e.dataset.task, text: e.textContent }))
      )
    const short = (id) => `${id.slice(0, 8)}…${id.slice(-6)}`
    // Only info and above are kept by default; these come from the start and the mesh alone.
    await b.waitForFunction(
      (peer) => [...document.querySelectorAll('[data-testid="log-record"]')].some((e) => e.textContent.includes(`peer ${peer} joined (`)),
      short(aId),
      { timeout: 30_000 }
    )
    const start = await records()
    assert.ok(start.length > 0 && start.every((r) => r.level !== 'debug' && r.level !== 'trace'), JSON.stringify(start))
    const has = (list, module, pattern) => list.some((r) => r.module === module && pattern.test(r.text))
    assert.ok(has(start, 'app:mesh', new RegExp(`peer ${bId} starting`)), `no start record: ${JSON.stringify(start)}`)
    assert.ok(has(start, 'app:mesh', /relay connected \(/), `no relay record: ${JSON.stringify(start)}`)
    assert.ok(has(start, 'app:mesh', new RegExp(`peer ${short(bId).replace('…', '.')} joined the mesh`)), JSON.stringify(start))

    await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
    await b.waitForFunction(() =>
      [...document.querySelectorAll('[data-testid="log-record"]')].some((e) => /donating compute: on, 1 worker/.test(e.textContent))
    )

    const [task] = await failTasks(b, 1)
    await b.waitForFunction(
      (id) => [...document.querySelectorAll('[data-testid="log-record"]')].some((e) => e.dataset.task === id && / failed: /.test(e.textContent)),
      task
    )
    const mine = (await records()).filter((r) => r.task === task)
    const submitted = mine.find((r) => /submitted/.test(r.text))
    assert.ok(submitted != null && submitted.level === 'info', JSON.stringify(mine))
    // The task's records carry its trace id, the one trace() returns.
    const { traceId } = await b.evaluate((id) => window.zerostate.trace(id), task)
    assert.match(traceId, /^[0-9a-f]{32}$/)
    assert.ok(
      mine.every((r) => r.trace === traceId),
      `records ${JSON.stringify(mine)} vs trace ${traceId}`
    )
    await b.evaluate(() => window.zerostate.donate({ enabled: false }))
    await b.waitForFunction(() => [...document.querySelectorAll('[data-testid="log-record"]')].some((e) => /donating compute: off/.test(e.textContent)))
  })

  it('an alert fires, with its figure, while the user is on another page', async () => {
    // Make the failure-rate rule quick (1 s) on the Dashboard; nothing has failed on A yet.
    await a.getByTestId('alert-edit').click()
    const rule = a.locator('[data-testid="alert-editor"] fieldset', { hasText: 'Failure rate above' })
    await rule.getByLabel('For (seconds)').fill('1')
    await a.getByRole('button', { name: 'Save rules' }).click()
    await a.waitForSelector('[data-rule="failure-rate"][data-firing="false"]')
    // Leave for the History page (in-app navigation: the same tab, no reload).
    await a.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'History' }).click()
    await a.waitForURL((u) => u.pathname === '/tasks')
    assert.equal(await a.locator('[data-testid="alert-notices"] [data-rule]').count(), 0)
    await failTasks(a, 3)
    const notice = a.locator('[data-testid="alert-notices"] [data-rule="failure-rate"]')
    await notice.waitFor({ timeout: 15_000 })
    assert.equal(new URL(a.url()).pathname, '/tasks')
    // The figure that fired it: every task of the last minute failed.
    assert.match(await notice.textContent(), /Failure rate 100\.0% over the last minute \(alert above 10% for 1 s\)/)
    await notice.getByRole('button', { name: 'Dismiss this alert' }).click()
    await notice.waitFor({ state: 'detached' })
  })

  it('the Dashboard history survives a reload in a tab that never opened the Dashboard', async () => {
    const ctx = await mesh.newContext()
    const c = await mesh.newPeer({ context: ctx, path: '/' })
    await failTasks(c, 4)
    // Samples are written every few seconds from the start: wait until one holding the 4 failures is saved.
    await eventually(async () => (await savedFailed(c)).some((n) => n >= 4), {
      timeout: 20_000,
      interval: 500,
      message: 'a saved sample holding the 4 failed tasks'
    })
    const saved = await savedFailed(c)
    assert.ok(saved.includes(4), `saved failed counts: ${JSON.stringify(saved)}`)
    await c.reload()
    await waitForApi(c)
    await c.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Dashboard' }).click()
    await c.waitForURL((u) => u.pathname === '/dashboard')
    await c.getByTestId('window-1h').check()
    // The hour's window holds the 4 failed tasks of the session before the reload.
    await c.waitForSelector('[data-testid="dashboard-summary"][data-failed="4"]', { timeout: 10_000 })
  })
})
