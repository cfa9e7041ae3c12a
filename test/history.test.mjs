// Task results and history (issue 10 items 6, 7, 22), in real Chromium tabs with the
// real relay: A submits "summarize …, then hash it" through the Submit page, B donates.
// The task page shows both step outputs named by step (not s1/s2) and the route
// breakdown; after a reload (same browser profile: IndexedDB kept) Recent tasks lists
// the task from the journal, its page shows its outputs, and Run again resubmits it.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { startMesh, waitForApi, waitForFullMesh } from './harness.mjs'

const TEXT =
  'WebRTC lets browsers connect directly. Peers exchange offers through a relay. ' +
  'After that the relay is not needed. Direct connections are fast and private. ' +
  'The mesh keeps working without the relay. Donors run agents in sandboxed workers.'

describe('task results and history', () => {
  let mesh, a, b, ids
  before(async () => {
    mesh = await startMesh()
    ;[a, b] = [await mesh.newPeer(), await mesh.newPeer()]
    ids = await waitForFullMesh([a, b])
    await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
    await a.waitForFunction(
      (idB) => window.zerostate.peers().some((p) => p.id === idB && p.donating && p.freeWorkers > 0 && p.capabilities.includes('hashing')),
      ids[1],
      { timeout: 10_000 }
    )
  })
  after(async () => {
    await mesh?.stop()
  })

  it('shows every step output by name with its route breakdown, and keeps the task across a reload', async () => {
    await a.goto(new URL('/submit', mesh.url).href)
    await waitForApi(a)
    await a.fill('[data-testid="submit-description"]', 'summarize this text, then hash it')
    await a.fill('[data-testid="submit-input"]', TEXT)
    await a.click('[data-testid="submit-button"]')
    await a.waitForURL(/\/tasks\//)
    const taskId = new URL(a.url()).pathname.split('/').pop()
    await a.waitForSelector('[data-testid="task-result"]', { timeout: 30_000 })

    // Both steps' outputs are shown (a sequential plan used to show only the last), named by what they do.
    const outputs = await a.$$eval('[data-testid="step-output"]', (els) =>
      els.map((e) => ({ step: e.dataset.step, title: e.querySelector('h3')?.textContent ?? '', text: e.textContent ?? '' }))
    )
    assert.equal(outputs.length, 2, `expected 2 step outputs, got ${JSON.stringify(outputs)}`)
    for (const o of outputs) assert.doesNotMatch(o.title.split('step')[0], /^\s*s\d+\s*$/, `a step is named by its id: ${o.title}`)
    assert.match(outputs[0].title, /summar/i)
    assert.match(outputs[1].title, /hash/i)
    const result = await a.evaluate((id) => window.zerostate.task(id).done, taskId)
    const hashOut = JSON.stringify(result.steps[1].output)
    const digest = /[0-9a-f]{64}/.exec(hashOut)?.[0]
    assert.ok(digest, `the hash step outputs a sha-256: ${hashOut}`)
    assert.ok(outputs[1].text.includes(digest), 'the hash step output is shown')
    assert.doesNotMatch(await a.textContent('[data-testid="task-result"]'), /\b1 steps\b|\b2 step\b/)

    // The route breakdown: one row per criterion, values in 0..1; no error line on a succeeded step.
    await a.click(`[data-testid="dag-node"][data-step="${result.steps[0].id}"]`)
    await a.waitForSelector('[data-testid="route-breakdown"]')
    const rows = await a.$$eval('[data-testid="route-breakdown"] tbody tr', (trs) =>
      trs.map((tr) => [tr.dataset.criterion, Number(tr.querySelector('td')?.textContent)])
    )
    assert.deepEqual(
      rows.map((r) => r[0]),
      ['cost', 'quality', 'speed', 'region', 'reputation', 'load', 'specialization']
    )
    for (const [k, v] of rows) assert.ok(v >= 0 && v <= 1, `${k} = ${v}`)
    assert.match(await a.textContent('[data-testid="step-reasoning"]'), new RegExp(`peer ${ids[1].slice(0, 4)}`))
    assert.doesNotMatch(await a.textContent('[data-testid="step-reasoning"]'), /of \d+ eligible(?! agent)/)
    assert.equal(await a.$('[data-testid="step-error"]'), null)

    // Reload: the journal keeps the task.
    await a.waitForFunction((id) => window.zerostate.journal.get(id)?.status === 'succeeded', taskId, { timeout: 5000 })
    await a.goto(new URL('/submit', mesh.url).href)
    await waitForApi(a)
    const listed = await a.evaluate(() => window.zerostate.tasks())
    const mine = listed.find((t) => t.id === taskId)
    assert.ok(mine, `tasks() after reload: ${JSON.stringify(listed)}`)
    assert.equal(mine.status, 'succeeded')
    assert.equal(mine.description, 'summarize this text, then hash it')
    assert.equal(mine.stepsDone, 2)
    await a.waitForSelector(`[data-testid="task-row"][data-task-id="${taskId}"]`)

    // Its page shows its outputs from the journal.
    await a.click(`[data-testid="task-row"][data-task-id="${taskId}"] a`)
    await a.waitForSelector('[data-testid="task-past"]')
    await a.waitForSelector('[data-testid="task-result"]')
    assert.equal(await a.$('[data-testid="task-unknown"]'), null)
    const pastOutputs = await a.$$eval('[data-testid="step-output"]', (els) => els.map((e) => e.textContent ?? ''))
    assert.equal(pastOutputs.length, 2)
    assert.ok(pastOutputs[1].includes(digest), 'the past hash output is shown')
    const past = await a.evaluate((id) => window.zerostate.task(id).done, taskId)
    assert.ok(JSON.stringify(past.steps[1].output).includes(digest), 'the past handle resolves with the recorded outputs')

    // Run again from Recent tasks resubmits the same request (input included) and gets the same digest.
    await a.goto(new URL('/submit', mesh.url).href)
    await waitForApi(a)
    await a.click(`[data-testid="task-row"][data-task-id="${taskId}"] [data-testid="run-again"]`)
    await a.waitForURL((u) => u.pathname.startsWith('/tasks/') && !u.pathname.endsWith(taskId))
    const againId = new URL(a.url()).pathname.split('/').pop()
    await a.waitForSelector('[data-testid="task-result"]', { timeout: 30_000 })
    const again = await a.evaluate((id) => window.zerostate.task(id).done, againId)
    assert.ok(JSON.stringify(again.steps.at(-1).output).includes(digest), 'Run again hashed the same summary of the same input')
    assert.deepEqual(
      (await a.evaluate(() => window.zerostate.tasks())).slice(0, 2).map((t) => t.id),
      [againId, taskId]
    )
    assert.deepEqual(a.__errors ?? [], [])
  })

  it('a reload the moment a task finished finds it succeeded, not running, and does not carry it on', async () => {
    for (let i = 0; i < 6; i++) {
      const id = await a.evaluate(async (text) => {
        const zs = window.zerostate
        const agent = zs.agents.list({ capability: 'hashing' })[0]
        const h = zs.submit({ description: 'hash it', input: text, agent: agent.id })
        await h.done
        return h.id
      }, `${TEXT} (${i})`)
      // At once: the final record used to wait ~60 ms for the journal's batch, so the reloaded tab read
      // "running" and carried the task on, offering its step again.
      await a.reload()
      await waitForApi(a)
      const row = await a.evaluate((taskId) => window.zerostate.tasks().find((t) => t.id === taskId), id)
      assert.equal(row?.status, 'succeeded', `task ${i} after the reload: ${JSON.stringify(row)}`)
      assert.equal(await a.evaluate(() => window.zerostate.metrics()['tasks.resumed'] ?? 0), 0)
    }
  })
})
