// Traces and logs across real tabs (issue 15): A submits a two-step task that runs on donors
// B and C; A's trace holds its own spans and both donors' (sent with their results, sealed
// and verified), with correct parents; the OTLP export has as many spans; the task page's
// waterfall shows them (also at 390 px) and downloads the same file; the Logs page lists the
// task's records with its trace id.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { startMesh, waitForFullMesh } from './harness.mjs'

const TEXT = 'Peers exchange offers through a relay. After that the relay is not needed. Donors run agents in sandboxed workers.'

describe('traces and logs across tabs', () => {
  let mesh, a, b, c, ids, keys
  before(async () => {
    mesh = await startMesh()
    a = await mesh.newPeer({ path: '/submit' })
    ;[b, c] = [await mesh.newPeer(), await mesh.newPeer()]
    ids = await waitForFullMesh([a, b, c])
    keys = await Promise.all([b, c].map((p) => p.evaluate(() => window.zerostate.publicKey)))
    await Promise.all([b, c].map((p) => p.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))))
    await a.waitForFunction(
      (donors) => {
        const ps = window.zerostate.peers()
        return donors.every((id) => ps.some((p) => p.id === id && p.donating && p.freeWorkers > 0 && p.capabilities.includes('text-summarization')))
      },
      [ids[1], ids[2]],
      { timeout: 15_000 }
    )
  })
  after(async () => {
    await mesh?.stop()
  })

  it('one trace of a two-step task holds the submitter and both donors, parents right; waterfall, OTLP file and logs agree', async () => {
    // Two independent steps, one worker per donor: one step on each donor.
    const result = await a.evaluate(async (input) => {
      const h = window.zerostate.submit({
        description: 'summarize this text, and also count the words',
        input,
        preferences: { strategy: 'load-balanced', verification: 'none' }
      })
      return await h.done
    }, TEXT)
    assert.equal(result.steps.length, 2)
    const stepPeers = result.steps.map((s) => s.peer)
    assert.deepEqual([...stepPeers].sort(), [ids[1], ids[2]].sort(), `one step on each donor: ${stepPeers}`)

    const { traceId, spans } = await a.evaluate((id) => window.zerostate.trace(id), result.id)
    assert.match(traceId, /^[0-9a-f]{32}$/)
    assert.ok(
      spans.every((s) => s.traceId === traceId && /^[0-9a-f]{16}$/.test(s.spanId)),
      'every span is in the one trace'
    )
    const byId = new Map(spans.map((s) => [s.spanId, s]))
    assert.equal(byId.size, spans.length, 'span ids are unique')
    const roots = spans.filter((s) => s.parentSpanId == null)
    assert.deepEqual(
      roots.map((s) => [s.name, s.peer]),
      [['task.run', ids[0]]]
    )
    for (const s of spans) if (s.parentSpanId != null) assert.ok(byId.has(s.parentSpanId), `${s.name} on ${s.peer} hangs under a span of the trace`)
    const kids = (p) => spans.filter((s) => s.parentSpanId === p.spanId)
    const run = roots[0]
    assert.deepEqual(
      kids(run)
        .map((s) => s.name)
        .sort(),
      ['plan', 'step', 'step']
    )
    for (const step of kids(run).filter((s) => s.name === 'step')) {
      assert.equal(step.peer, ids[0])
      const donor = result.steps.find((s) => s.id === step.attributes['step.id']).peer
      const attempts = kids(step).filter((s) => s.name === 'dispatch.attempt' && s.status === 'ok')
      assert.deepEqual(
        attempts.map((s) => s.attributes['peer.id']),
        [donor],
        `step ${step.attributes['step.id']}: one successful attempt, on ${donor}`
      )
      const [donorStep, ...others] = kids(attempts[0])
      assert.equal(others.length, 0)
      assert.equal(donorStep.name, 'donor.step')
      assert.equal(donorStep.peer, donor, "the donor's span is recorded under its own peer id")
      assert.equal(donorStep.attributes['zerostate.signer'], keys[ids.indexOf(donor) - 1], "signed with that donor's profile key")
      assert.deepEqual(
        kids(donorStep).map((s) => s.name),
        ['donor.accept', 'donor.queue', 'donor.run', 'donor.answer']
      )
      for (const s of [donorStep, ...kids(donorStep)]) assert.ok(s.endMs >= s.startMs && s.peer === donor)
    }
    assert.deepEqual(new Set(spans.map((s) => s.peer)), new Set(ids), 'spans from the submitter and both donors')
    const rejected = await a.evaluate(() => window.zerostate.metrics()['trace.foreignRejected'])
    assert.equal(rejected, 0)

    // The OTLP export: one resource per peer, as many spans, the same ids.
    const otlp = await a.evaluate((id) => window.zerostate.exportTrace(id), result.id)
    const exported = otlp.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((ss) => ss.spans))
    assert.equal(otlp.resourceSpans.length, 3)
    assert.equal(exported.length, spans.length)
    assert.deepEqual(new Set(exported.map((s) => s.spanId)), new Set(byId.keys()))
    assert.ok(exported.every((s) => s.traceId === traceId && /^\d+$/.test(s.startTimeUnixNano)))

    // The waterfall on the task page (client-side navigation: a full load would restart the tab's peer).
    await a.click(`[data-testid="task-row"][data-task-id="${result.id}"] a`)
    await a.waitForURL((u) => u.pathname === `/tasks/${result.id}`)
    await a.waitForSelector(`[data-testid="trace-waterfall"][data-spans="${spans.length}"][data-trace-id="${traceId}"]`, { timeout: 10_000 })
    const shown = await a.$$eval('[data-testid="trace-span"]', (els) =>
      els.map((e) => ({ id: e.dataset.spanId, parent: e.dataset.parentId, label: e.getAttribute('aria-label') }))
    )
    assert.deepEqual(new Set(shown.map((s) => s.id)), new Set(byId.keys()))
    for (const s of shown) assert.equal(s.parent ?? undefined, byId.get(s.id).parentSpanId)
    assert.ok(shown.every((s) => s.label.length > 0))
    const groups = await a.$$eval('[data-testid="trace-group"]', (els) => els.map((e) => e.dataset.peer))
    assert.equal(groups[0], ids[0], "this tab's spans come first")
    assert.deepEqual(new Set(groups), new Set(ids))
    // Keyboard: the first span focused shows its attributes; arrow down moves to the next.
    // (The pointer is moved off the list first: the link it clicked left it over a span, which would show on hover.)
    await a.mouse.move(1, 1)
    await a.focus('[data-testid="trace-span"]')
    await a.waitForSelector('[data-testid="trace-detail"] [data-attribute="task.id"]')
    await a.keyboard.press('ArrowDown')
    const second = await a.evaluate(() => document.activeElement?.dataset.spanId)
    assert.equal(second, shown[1].id)
    // Selecting a donor's span shows who signed it.
    const donorSpan = spans.find((s) => s.name === 'donor.step')
    await a.click(`[data-testid="trace-span"][data-span-id="${donorSpan.spanId}"]`)
    assert.equal(await a.getAttribute(`[data-testid="trace-span"][data-span-id="${donorSpan.spanId}"]`, 'aria-pressed'), 'true')
    // Away from the list (no hover, no focus), the selected span stays shown.
    await a.mouse.move(1, 1)
    await a.click('h1')
    await a.waitForSelector('[data-testid="trace-detail"] [data-attribute="zerostate.signer"]')
    const signer = await a.textContent('[data-testid="trace-detail"] [data-attribute="zerostate.signer"]')
    assert.equal(signer, donorSpan.attributes['zerostate.signer'])
    // The download is the same OTLP file.
    const [download] = await Promise.all([a.waitForEvent('download'), a.click('[data-testid="trace-download"]')])
    assert.equal(download.suggestedFilename(), `trace-${result.id}.json`)
    const file = JSON.parse(await readFile(await download.path(), 'utf8'))
    assert.equal(file.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((ss) => ss.spans)).length, spans.length)
    // At phone width nothing sticks out sideways.
    await a.setViewportSize({ width: 390, height: 844 })
    await a.waitForFunction(() => document.documentElement.scrollWidth <= 390, null, { timeout: 5000 }).catch(() => {})
    const width = await a.evaluate(() => document.documentElement.scrollWidth)
    assert.ok(width <= 390, `the task page is ${width}px wide at 390px`)
    await a.setViewportSize({ width: 1280, height: 720 })

    // The Logs page, opened from the trace panel, lists the task's records with its trace id.
    await a.click('[data-testid="trace-logs-link"]')
    await a.waitForURL((u) => u.pathname === '/logs')
    await a.waitForSelector(`[data-testid="log-record"][data-task="${result.id}"]`)
    const records = await a.$$eval('[data-testid="log-record"]', (els) =>
      els.map((e) => ({ task: e.dataset.task, trace: e.dataset.traceId, level: e.dataset.level, text: e.querySelector('.message')?.textContent ?? '' }))
    )
    assert.ok(records.length >= 5, `submitted, planned, two steps and done: ${JSON.stringify(records)}`)
    assert.ok(records.every((r) => r.task === result.id && r.trace === traceId))
    assert.ok(records.some((r) => /submitted/.test(r.text)) && records.some((r) => /done in/.test(r.text)))
    for (const s of result.steps) assert.ok(records.some((r) => r.text.includes(`step ${s.id} done`) && r.text.includes(s.peer)))
    const [logFile] = await Promise.all([a.waitForEvent('download'), a.click('[data-testid="logs-download"]')])
    const lines = (await readFile(await logFile.path(), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    assert.equal(lines.length, records.length)
    assert.ok(lines.every((l) => l.taskId === result.id && l.traceId === traceId && typeof l.module === 'string'))
    // Filtering by level: the task logged nothing at warn or above.
    await a.selectOption('[data-testid="logs-filter-level"]', 'warn')
    await a.waitForSelector('[data-testid="logs-empty"]')
    assert.deepEqual(a.__errors ?? [], [])
  })
})
