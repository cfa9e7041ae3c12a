// Trust on the pages (issue 12), in real Chromium tabs with the real relay: A submits from the Submit
// form, B and C (two other profiles) donate. The task page shows how the step was verified (the
// result and its check by another user), the Credits page lists the receipt A spent and B or C
// earned (each checkable), the Registry and Mesh pages show the donors' reputation, a daily budget
// refuses a task with a clear sentence before it runs, and the pages pass axe and fit 390 px.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { after, before, describe, it } from 'node:test'
import { eventually, startMesh } from './harness.mjs'

const LIMIT = 240_000
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
const PHONE = { width: 390, height: 844 }

/** axe-core's violations on the page as it is now (evaluated over CDP: the CSP refuses injected scripts). */
async function axe(page) {
  await page.evaluate(AXE_SOURCE)
  return await page.evaluate(async () => {
    const r = await window.axe.run(document, { rules: { 'label-content-name-mismatch': { enabled: true } } })
    return r.violations.map((v) => `${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(' | ')}`)
  })
}

/** How far the page is wider than a 390 px screen, with the widest culprits (empty when it fits). */
async function sideways(page) {
  return await page.evaluate((vw) => {
    if (document.documentElement.scrollWidth <= vw) return ''
    const culprits = [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > vw + 0.5)
      .slice(0, 5)
      .map((el) => el.tagName.toLowerCase() + (typeof el.className === 'string' && el.className ? `.${el.className.split(' ')[0]}` : ''))
    return `${document.documentElement.scrollWidth}px (${culprits.join(', ')})`
  }, PHONE.width)
}

/** Client-side navigation through the nav (a full load would restart the tab's peer). */
async function go(page, href) {
  await page.click(`nav a[href="${href}"]`)
  await page.waitForURL((u) => u.pathname === href)
  await page.waitForSelector('main h1')
}

describe('trust on the pages', () => {
  let mesh, a, b, c, ids, keys
  before(async () => {
    mesh = await startMesh()
    a = await mesh.newPeer()
    b = await mesh.newPeer()
    c = await mesh.newPeer()
    ids = await Promise.all([a, b, c].map((p) => p.evaluate(() => window.zerostate.peerId)))
    keys = await Promise.all([a, b, c].map((p) => p.evaluate(() => window.zerostate.publicKey)))
    await Promise.all([b, c].map((p) => p.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))))
    // A sees both donors donating hash and has proven the profile key each announces.
    await a.waitForFunction(
      ([donorIds, donorKeys]) => {
        const zs = window.zerostate
        const ps = zs.peers()
        const live = zs.trust.users().filter((u) => u.peers.length > 0)
        return (
          donorIds.every((id) => ps.some((p) => p.id === id && p.donating && p.capabilities.includes('hashing'))) &&
          donorKeys.every((k) => live.some((u) => u.user === k))
        )
      },
      [ids.slice(1), keys.slice(1)],
      { timeout: 120_000, polling: 200 }
    )
  })
  after(async () => {
    await mesh?.stop()
  })

  it('the task page shows the step verified by another user; Credits lists the receipt spent and earned; Registry and Mesh show reputation', {
    timeout: LIMIT
  }, async () => {
    const found = []
    const wide = []
    await a.setViewportSize(PHONE)
    const check = async (where) => {
      for (const v of await axe(a)) found.push(`${where} ${v}`)
      const w = await sideways(a)
      if (w !== '') wide.push(`${where}: ${w}`)
    }

    // A task from the Submit form, pinned to the bundled hash agent.
    await go(a, '/submit')
    await a.fill('[data-testid="submit-description"]', 'hash this line')
    await a.selectOption('[data-testid="submit-agent"]', { label: 'hash 1.0.0 (bundled)' })
    await a.fill('[data-testid="submit-input"]', 'verified on two profiles')
    await a.click('[data-testid="submit-button"]')
    await a.waitForURL(/\/tasks\//)
    const taskId = a.url().split('/tasks/')[1]
    await a.waitForSelector('[data-testid="task-result"]', { timeout: 60_000 })
    await a.click('[data-testid="dag-node"]')
    const v = a.locator('[data-testid="step-verification"]')
    await v.waitFor()
    assert.equal(await v.getAttribute('data-status'), 'verified')
    assert.equal(await v.getAttribute('data-replicas'), '2')
    assert.equal(await v.getAttribute('data-agreed'), '2')
    assert.match(await v.textContent(), /Verified: 2 of 2 results from different users agreed/)
    const shown = await v.locator('code').evaluateAll((els) => els.map((e) => e.getAttribute('title')))
    assert.deepEqual(new Set(shown), new Set(ids.slice(1)), 'the peers of the result and its check are B and C')
    const result = await a.evaluate((id) => window.zerostate.task(id)?.done, taskId)
    assert.deepEqual(result.steps[0].verification.peers, shown)
    await check(`/tasks/${taskId}`)

    // Credits on A: what it spent, receipt by receipt, each checkable here.
    await go(a, '/credits')
    await a.waitForSelector('[data-testid="receipt"][data-direction="spent"]')
    const spentRows = a.locator(`[data-testid="receipt"][data-direction="spent"][data-task="${taskId}"]`)
    assert.equal(await spentRows.count(), 2, 'one receipt to each donor of the verified step')
    const ledgerA = await a.evaluate(() => window.zerostate.credits())
    assert.ok(ledgerA.spent > 0 && ledgerA.earned === 0)
    assert.equal(Number(await a.getAttribute('[data-testid="credits-spent"]', 'data-value')), ledgerA.spent)
    assert.equal(Number(await a.getAttribute('[data-testid="credits-balance"]', 'data-value')), -ledgerA.spent)
    await spentRows.first().locator('[data-testid="receipt-verify"]').click()
    await a.waitForSelector('[data-testid="receipt-check"][data-ok="true"]')
    // A forged receipt (price changed) is refused by the same check.
    const forged = await a.evaluate(async () => {
      const r = window.zerostate.credits().receipts[0]
      return await window.zerostate.trust.verifyReceipt({ ...r, price: r.price + 1 }).then(
        () => 'accepted',
        (e) => e.name
      )
    })
    assert.equal(forged, 'InvalidReceiptError')
    await check('/credits (A)')

    // The donors earned what A spent: each holds the receipt for its result, shown on its own Credits page.
    for (const [i, donor] of [b, c].entries()) {
      await eventually(async () => (await donor.evaluate((id) => window.zerostate.credits().receipts.filter((r) => r.task === id).length, taskId)) === 1, {
        timeout: 20_000,
        message: `donor ${i + 1} to hold its receipt`
      })
      await go(donor, '/credits')
      const row = donor.locator(`[data-testid="receipt"][data-direction="earned"][data-task="${taskId}"]`)
      await row.waitFor()
      assert.match(await row.textContent(), new RegExp(`from\\s+${keys[0].replace(/^ed25519:/, '').slice(0, 5)}`))
      assert.ok(Number(await donor.getAttribute('[data-testid="credits-earned"]', 'data-value')) > 0)
      await row.locator('[data-testid="receipt-verify"]').click()
      await donor.waitForSelector('[data-testid="receipt-check"][data-ok="true"]')
    }
    const earned = await Promise.all([b, c].map((p) => p.evaluate((id) => window.zerostate.credits().receipts.find((r) => r.task === id), taskId)))
    const spent = await a.evaluate((id) => window.zerostate.credits().receipts.filter((r) => r.task === id), taskId)
    assert.deepEqual(new Set(earned.map((r) => r.signature)), new Set(spent.map((r) => r.signature)), 'the donors hold exactly the receipts A issued')

    // Each profile's audit log: A recorded the task it submitted, each donor the step it served for A.
    const submitted = await a.evaluate(() => window.zerostate.audit.list({ kind: 'task.submitted' }))
    assert.ok(
      submitted.some((r) => r.subject === taskId),
      `A's audit log records task ${taskId} submitted: ${JSON.stringify(submitted)}`
    )
    for (const donor of [b, c]) {
      await donor.waitForFunction((id) => window.zerostate.audit.list({ kind: 'task.served' }).some((r) => r.subject?.startsWith(`${id}/`)), taskId)
      const rec = await donor.evaluate((id) => window.zerostate.audit.list({ kind: 'task.served' }).find((r) => r.subject?.startsWith(`${id}/`)), taskId)
      assert.equal(rec.peer, await a.evaluate(() => window.zerostate.peerId), 'the served record names the submitting peer')
      assert.match(rec.why, /: result$/)
    }
    assert.equal((await Promise.all([a, b, c].map((p) => p.evaluate(() => window.zerostate.audit.verify())))).filter((v) => !v.ok).length, 0)

    // Registry: the donors' users with their verified results; the hash agent's details list them too.
    await go(a, '/registry')
    for (const k of keys.slice(1)) {
      const row = a.locator(`[data-testid="registry-users-row"][data-user="${k}"]`)
      await row.waitFor()
      assert.ok(Number(await row.getAttribute('data-score')) > 0.5, 'a user whose result agreed ranks above the prior')
    }
    const hashId = await a.evaluate(() => window.zerostate.agents.list().find((x) => x.name === 'hash' && x.bundled)?.id)
    await a.click(`[data-testid="registry-row"][data-agent-id="${hashId}"] button.link`)
    await a.waitForSelector('[data-testid="agent-detail"]')
    const agentUsers = await a.locator('[data-testid="agent-users-row"]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-user')))
    assert.deepEqual(new Set(agentUsers), new Set(keys.slice(1)))

    // What routing learned, on the same page: the hash agent's arm with the outcomes of A's task, as the router holds them.
    const armOf = (id) =>
      a.evaluate((agentId) => {
        const l = window.zerostate.orchestrator.router.learning()
        const arm = Object.values(l.bandit)
          .flat()
          .find((x) => x.agentId === agentId)
        return arm && { successes: arm.successes, failures: arm.failures }
      }, id)
    const arm = a.locator(`[data-testid="learned-arm"][data-agent-id="${hashId}"]`)
    await arm.waitFor()
    const learned = await armOf(hashId)
    assert.ok(learned.successes >= 1, 'the router learned from the verified task')
    assert.deepEqual({ successes: Number(await arm.getAttribute('data-successes')), failures: Number(await arm.getAttribute('data-failures')) }, learned)
    assert.equal((await arm.locator('td').first().textContent()).trim(), String(learned.successes))
    assert.match(await arm.locator('th').textContent(), /^hash 1\.0\.0/)
    // The agent's Reputation column shows what routing believes of it now (it had verified results), not "—".
    const repCell = a.locator(`[data-testid="registry-row"][data-agent-id="${hashId}"] [data-testid="registry-reputation"]`)
    await a.waitForFunction(
      ({ id, sel }) => {
        const want = window.zerostate.agents.get(id)?.reputation
        return want != null && document.querySelector(sel)?.getAttribute('data-reputation') === String(want)
      },
      { id: hashId, sel: `[data-testid="registry-row"][data-agent-id="${hashId}"] [data-testid="registry-reputation"]` }
    )
    assert.match((await repCell.textContent()).trim(), /^\d+ %$/)
    assert.match(await a.locator('[data-testid="learned-flags-empty"]').textContent(), /No agent or user is flagged/)
    // Two more tasks while the page is open: the row is re-read as they finish (no reload).
    for (const i of [1, 2])
      await a.evaluate(
        async ([agentId, n]) => (await window.zerostate.submit({ description: `learn ${n}`, agent: agentId, input: `learn ${n}` })).done,
        [hashId, i]
      )
    // Each verified task can teach the router more than one outcome (its replica's too), and they
    // land a moment apart: the row must count the two tasks and catch up with what the router holds.
    await eventually(
      async () => {
        const shown = Number(await arm.getAttribute('data-successes'))
        return shown >= learned.successes + 2 && shown === (await armOf(hashId)).successes
      },
      { timeout: 20_000, message: 'the learned row to count the two new tasks, as the router does' }
    )
    await check('/registry (agent details open)')

    // Mesh: each donor's row says what A knows of its user.
    await go(a, '/')
    for (const id of ids.slice(1)) {
      const cell = a.locator(`[data-testid="peer-list"] tr[data-peer="${id}"] [data-testid="peer-reputation"]`)
      await cell.waitFor()
      const text = await cell.textContent()
      assert.match(text, /^\d+ % \([\d.]+ valid, 0 wrong\)$/)
      assert.ok(Number(text.split(' ')[0]) > 50, text)
    }
    assert.ok((await a.locator('[data-testid="topology-reputation"]').count()) >= 2)
    await check('/ (mesh)')

    // A daily budget below the next task's estimate: refused with a sentence before anything runs.
    const spentNow = await a.evaluate(() => Math.round(window.zerostate.credits().spent * 1e6) / 1e6)
    await go(a, '/settings')
    await a.fill('[data-testid="budget-daily"]', String(spentNow + 0.1))
    await a.click('[data-testid="budget-save"]')
    await a.waitForSelector('[data-testid="budget-status"] .ok')
    assert.deepEqual(
      await a.evaluate(() => {
        const s = window.zerostate.spending()
        return [s.dailyBudget, s.spentToday]
      }),
      [spentNow + 0.1, spentNow]
    )
    await check('/settings')
    const served = await Promise.all([b, c].map((p) => p.evaluate(() => window.zerostate.donation().served)))
    await go(a, '/submit')
    await a.fill('[data-testid="submit-description"]', 'hash over budget')
    await a.selectOption('[data-testid="submit-agent"]', { label: 'hash 1.0.0 (bundled)' })
    await a.fill('[data-testid="submit-input"]', 'too dear today')
    await a.click('[data-testid="submit-button"]')
    await a.waitForURL(/\/tasks\//)
    const err = a.locator('[data-testid="task-error"]')
    await err.waitFor({ timeout: 30_000 })
    assert.match(await err.textContent(), /estimated at 0\.4 credits \(verification included\), but [\d.]+ of today's budget of [\d.]+ are spent/)
    const name = await a.evaluate((id) => window.zerostate.task(id)?.done.catch((e) => e.name), a.url().split('/tasks/')[1])
    assert.equal(name, 'DailyBudgetExceededError')
    assert.deepEqual(await Promise.all([b, c].map((p) => p.evaluate(() => window.zerostate.donation().served))), served, 'no donor ran anything')

    assert.deepEqual(found, [], 'axe finds no violations')
    assert.deepEqual(wide, [], 'no page scrolls sideways at 390 px')
  })
})
