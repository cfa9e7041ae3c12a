// Issue 11 item 6 against real tabs: a hostile Node peer announces itself donating word-count
// with 1,024 free workers (the most presence allows) and never runs anything. Before, every
// load-balanced task offered to it first. Now A counts the capacity a donor has been seen to
// take (unobserved: 1), so after B has run a task for A, A offers to B first; every task succeeds.
// A claim of more workers than a peer of this code can have (over 128) is refused at presence,
// and its sender struck and blocked as for any invalid presence.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { hostileStage, TEXT } from './scenario.mjs'

describe('self-reported capacity does not win routing (issue 11 item 6)', () => {
  let s
  before(async () => {
    s = await hostileStage()
  })
  after(async () => {
    await s?.stop()
  })

  it('a donor announcing 1,024 free workers does not get every load-balanced first offer', async (t) => {
    const h = await s.hostile()
    const stop = h.keepAnnouncing({ donating: true, freeWorkers: 1024, workers: 128, capabilities: ['word-count'] }, 1000)
    try {
      await h.dialDirect(s.idA)
      await s.a.waitForFunction((id) => window.zerostate.peers().some((p) => p.id === id && p.donating && p.freeWorkers === 1024), h.peerId, {
        timeout: 15_000,
        polling: 100
      })
      const firsts = []
      for (let i = 0; i < 8; i++) {
        const r = await s.a.evaluate(async (text) => {
          const h = window.zerostate.submit({ description: 'count the words', input: text, preferences: { strategy: 'load-balanced' } })
          let first
          h.on('step', (e) => {
            if (e.status === 'dispatched' && first === undefined) first = e.peer
          })
          return await h.done.then(
            (r) => ({ status: r.status, peer: r.steps[0].peer, first }),
            (err) => ({ status: 'failed', error: `${err?.name}: ${err?.message}`, first })
          )
        }, `${TEXT} ${i}`)
        assert.equal(r.status, 'succeeded', r.error)
        assert.equal(r.peer, s.idB)
        firsts.push(r.first)
      }
      const toLiar = firsts.filter((p) => p === h.peerId).length
      t.diagnostic(`first offers to the donor that said 1,024: ${toLiar} of 8`)
      // At most the first, while neither donor has been seen. Before, its 1,024 against B's 8 made
      // its load criterion 1 against 0.008: every first offer went to it.
      assert.ok(toLiar <= 2, `${toLiar} of 8 first offers went to the donor that said 1,024: ${firsts.join(', ')}`)
    } finally {
      stop()
    }
  })

  it('a donor claiming 1,024 workers (no peer of this code claims over 128) is refused at presence, never listed, and blocked', async () => {
    const h = await s.hostile()
    const before = await s.metrics(s.a)
    // Linked first, then the claim: a claim that reached A (through the relay's gossip) before the
    // link got the liar blocked at once, and A then refused the link this test needs to see closed
    // (CI: 'no direct connection … stream closed'). The claim still arrives over both paths.
    await h.dialDirect(s.idA)
    const stop = h.keepAnnouncing({ donating: true, freeWorkers: 1024, workers: 1024, capabilities: ['word-count'] }, 500)
    try {
      const blocked = () => s.metrics(s.a).then((m) => (m['mesh.peers.blocked'] ?? 0) - (before['mesh.peers.blocked'] ?? 0))
      const deadline = Date.now() + 30_000
      while ((await blocked()) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250))
      const m = await s.metrics(s.a)
      assert.equal(await blocked(), 1, `not blocked: ${JSON.stringify(Object.fromEntries(Object.entries(m).filter(([k]) => /presence|strikes/.test(k))))}`)
      assert.ok((m['mesh.presence.invalid'] ?? 0) - (before['mesh.presence.invalid'] ?? 0) >= 1, 'its presence refused')
      assert.equal(await s.a.evaluate((id) => window.zerostate.peers().some((p) => p.id === id && p.donating), h.peerId), false, 'A lists it as a donor')
      assert.equal(await h.canConnect(s.idA, { timeout: 4000 }), false, 'the blocked donor reconnected')
    } finally {
      stop()
    }
  })
})
