// Issue 11 item 11: agent-fetch amplified 631× (2.2 KB of requests drew 1.42 MB). A hostile
// peer asks the donor B for a bundled agent's module 100 times on one task stream: B answers
// at most its per-peer budget (10), refuses the rest by name (OverBudgetError), strikes and
// blocks the asker, and stays responsive; honest tasks still run on B.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { frame, TASK_PROTOCOL } from './hostile-peer.mjs'
import { hostileStage, until } from './scenario.mjs'

/** Split received bytes into the JSON frames they carry. */
function frames(chunks) {
  const all = Buffer.concat(chunks.map((c) => Buffer.from(c)))
  const out = []
  let i = 0
  while (i < all.length) {
    let len = 0
    let shift = 0
    let b
    do {
      b = all[i++]
      len += (b & 0x7f) * 2 ** shift
      shift += 7
    } while (b >= 0x80 && i < all.length)
    if (i + len > all.length) break
    out.push(JSON.parse(all.subarray(i, i + len).toString('utf8')))
    i += len
  }
  return out
}

describe('agent-fetch amplification (issue 11 item 11)', () => {
  let s
  before(async () => {
    s = await hostileStage()
  })
  after(async () => {
    await s?.stop()
  })

  it('answers at most the budget, refuses the rest by name, blocks the asker; B stays responsive', async () => {
    const agentId = await s.b.evaluate(() => window.zerostate.agents.list().find((a) => a.bundled && a.capabilities.includes('word-count'))?.id)
    assert.match(agentId, /^[0-9a-f]{64}$/)
    const h = await s.hostile()
    await h.dialDirect(s.idB)
    const raw = await h.openRaw(s.idB, TASK_PROTOCOL)
    let sent = 0
    const r = await s.measure(
      async () => {
        for (let i = 0; i < 100; i++) {
          const f = frame(JSON.stringify({ type: 'agent-fetch', rid: `amp-${i}`, agentId }))
          if (!raw.write(f)) break
          sent += f.byteLength
        }
      },
      { until: () => until(async () => (await s.metrics(s.b))['mesh.peers.blocked'] >= 1, { message: 'B blocks the asker' }) }
    )
    await Promise.race([raw.closed, new Promise((res) => setTimeout(res, 5000))])
    const got = frames(raw.received())
    const answered = got.filter((m) => m.type === 'agent-payload')
    const received = raw.received().reduce((n, c) => n + c.byteLength, 0)
    // At most the budget's 10 answers; the 11th to 15th requests are refused (by name, when
    // the refusal still reaches the asker before the block closes its connection) and struck.
    assert.ok(answered.length <= 10, `${answered.length} modules answered`)
    for (const m of got.filter((m) => m.type === 'error')) assert.equal(m.name, 'OverBudgetError')
    const m = await s.metrics(s.b)
    assert.equal(m['mesh.strikes.agent-fetch.OverBudgetError'], 5)
    const bound = answered.length === 0 ? 64 * 1024 : answered.length * answered[0].payload.size * 1.4 + 64 * 1024
    assert.ok(received <= bound, `${received} bytes drawn by ${sent} bytes of requests`)
    assert.equal(await h.canConnect(s.idB, { timeout: 4000 }), false, 'the blocked asker reconnected')
    // B kept answering pings from A during the flood (A's probe pings B).
    assert.equal(r.pings.failed, 0)
    assert.ok(r.pings.ok >= 2)
    const task = await s.honestTask()
    assert.equal(task.status, 'succeeded')
  })
})
