// Trust among strangers (issue 12), with real Chromium tabs and a real relay: A submits,
// B, C and D donate honestly, E donates and lies on half of its results (its runtime is
// patched in the page, as a cheater would). No wrong result may be accepted, every task
// succeeds, and E ends with the lowest reputation: on A, on a tab opened after the run
// (shared signed statements) and on A after a reload (persisted).
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { eventually, startMesh, waitForApi } from './harness.mjs'

const TASKS = Number(process.env.TRUST_TASKS ?? 200)
// Donor tabs, the last one the liar: 3 honest + 1 liar, as the issue asks (TRUST_DONORS changes it).
const DONORS = Number(process.env.TRUST_DONORS ?? 4)
const sha256 = (s) => createHash('sha256').update(s, 'utf8').digest('hex')

describe('trust among strangers', () => {
  let mesh, a, donors, liar, ids
  before(async () => {
    mesh = await startMesh()
    a = await mesh.newPeer()
    donors = []
    for (let i = 0; i < DONORS; i++) donors.push(await mesh.newPeer())
    liar = donors[DONORS - 1]
    // A needs a direct link to every donor (they need not all reach each other).
    ids = await Promise.all([a, ...donors].map((p) => p.evaluate(() => window.zerostate.peerId)))
    await a
      .waitForFunction((donorIds) => donorIds.every((id) => window.zerostate.peers().some((p) => p.id === id && p.transport === 'webrtc')), ids.slice(1), {
        timeout: 120_000,
        polling: 100
      })
      .catch(async (err) => {
        const seen = await a.evaluate(() => window.zerostate.peers().map((p) => `${p.id.slice(-6)}:${p.transport}`))
        throw new Error(`A reached ${JSON.stringify(seen)} of ${JSON.stringify(ids.slice(1).map((i) => i.slice(-6)))}: ${err.message}`)
      })
    await Promise.all(donors.map((p) => p.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))))
    await a
      .waitForFunction(
        (donorIds) => {
          const ps = window.zerostate.peers()
          return donorIds.every((id) => ps.some((p) => p.id === id && p.donating && p.publicKey != null && p.capabilities.includes('hashing')))
        },
        ids.slice(1),
        // A setup wait, not a measure: each donor tab loads its agents before it advertises them.
        { timeout: 60_000, polling: 100 }
      )
      .catch(async (err) => {
        const seen = await a.evaluate(() =>
          window.zerostate
            .peers()
            .map((p) => `${p.id.slice(-6)}:${p.donating ? 'donating' : 'not donating'}:${p.publicKey == null ? 'no key' : 'key'}:${p.capabilities.length} caps`)
        )
        throw new Error(`A saw ${JSON.stringify(seen)} of donors ${JSON.stringify(ids.slice(1).map((i) => i.slice(-6)))}: ${err.message}`)
      })
    // The cheater: every other result of its runtime carries a forged (but well-formed) digest.
    await liar.evaluate(() => {
      const rt = window.zerostate.runtime
      const run = rt.run.bind(rt)
      let n = 0
      window.__lies = 0
      rt.run = async (...args) => {
        const r = await run(...args)
        if (n++ % 2 === 0 && r.output != null && typeof r.output === 'object' && 'sha256' in r.output) {
          window.__lies++
          return { ...r, output: { ...r.output, sha256: 'f'.repeat(64) } }
        }
        return r
      }
    })
  })
  after(async () => {
    await mesh?.stop()
  })

  it(`accepts no wrong result over ${TASKS} tasks, every task succeeds, and the liar ends lowest (here, on a new tab, after a reload)`, async () => {
    const results = await a.evaluate(async (n) => {
      const out = []
      let next = 0
      const worker = async () => {
        while (next < n) {
          const i = next++
          const input = `trust task ${i}`
          try {
            const r = await window.zerostate.submit({ description: 'hash it', agent: 'hash', input }).done
            out.push({ input, sha256: r.output?.sha256, verification: r.steps[0].verification, peer: r.steps[0].peer })
          } catch (e) {
            out.push({ input, error: `${e.name}: ${e.message}` })
          }
        }
      }
      await Promise.all([worker(), worker(), worker(), worker()])
      return out
    }, TASKS)
    const failed = results.filter((r) => r.error != null)
    assert.equal(failed.length, 0, `every task succeeds; ${failed.length} failed, first: ${failed[0]?.error}`)
    const wrong = results.filter((r) => r.sha256 !== sha256(r.input))
    assert.deepEqual(wrong, [], 'no wrong result is accepted')
    const lies = await liar.evaluate(() => window.__lies)
    assert.ok(lies > 0, 'the liar did lie')
    const replicated = results.filter((r) => (r.verification?.replicas ?? 1) > 1).length
    assert.ok(replicated > 0 && replicated < TASKS, `replication adapts (${replicated} of ${TASKS} tasks replicated)`)

    const lowest = async (page) => {
      const reps = await page.evaluate((peerIds) => peerIds.map((id) => window.zerostate.reputation(id)?.score ?? null), ids.slice(1))
      const l = DONORS - 1
      return { reps, liarLowest: reps.every((s, i) => s != null && (i === l || s > reps[l])) }
    }
    const onA = await lowest(a)
    assert.ok(onA.liarLowest, `on A the liar has the lowest reputation: ${JSON.stringify(onA.reps)}`)
    const peersRep = await a.evaluate((id) => window.zerostate.peers().find((p) => p.id === id)?.reputation, ids[DONORS])
    assert.equal(peersRep, onA.reps[DONORS - 1])
    // Credits: A paid receipts; an honest donor holds receipts that pay it.
    const credits = await a.evaluate(() => window.zerostate.credits())
    assert.ok(credits.spent > 0 && credits.balance < 0 && credits.receipts.length > 0)
    await eventually(async () => (await donors[0].evaluate(() => window.zerostate.credits().earned)) > 0, { message: 'B to hold receipts' })

    // A tab opened after the run knows nothing itself: it reads the signed statements.
    // A setup wait, not a measure: a sixth tab on a loaded 2-core machine took over 30 s to start (load 18).
    const late = await mesh.newPeer({ waitReady: false })
    await waitForApi(late, 90_000)
    // It must know who is behind the liar and at least one honest donor (presence carries the profile key);
    // a fifth tab on a loaded machine does not always link up with every other one.
    const known = (ps, id) => ps.some((p) => p.id === id && p.publicKey != null)
    await late
      .waitForFunction(
        ([liarId, honestIds]) => {
          const ps = window.zerostate.peers()
          const has = (id) => ps.some((p) => p.id === id && p.publicKey != null)
          return has(liarId) && honestIds.some(has)
        },
        [ids[DONORS], ids.slice(1, DONORS)],
        { timeout: 60_000, polling: 100 }
      )
      .catch(async (err) => {
        const seen = await late.evaluate(() => ({
          peers: window.zerostate.peers().map((p) => `${p.id.slice(-6)}:${p.transport}:${p.publicKey == null ? 'no key' : 'key'}`),
          counters: Object.fromEntries(Object.entries(window.zerostate.metrics()).filter(([k, v]) => v !== 0 && /^(mesh|gossip)\./.test(k)))
        }))
        throw new Error(`the new tab knew ${JSON.stringify(seen)} of ${JSON.stringify(ids.slice(1).map((i) => i.slice(-6)))}: ${err.message}`)
      })
    let seen
    await eventually(
      async () => {
        const ps = await late.evaluate(() => window.zerostate.peers())
        const { reps } = await lowest(late)
        const honest = reps.slice(0, -1).filter((_, i) => known(ps, ids[i + 1]))
        seen = { reps }
        const liarScore = reps[DONORS - 1]
        return liarScore != null && honest.length > 0 && honest.every((s) => s != null && s > liarScore)
      },
      { timeout: 30_000, message: 'the new tab to rank the liar lowest from shared statements' }
    ).catch(() => assert.fail(`on the new tab: ${JSON.stringify(seen?.reps)}`))

    // A reload keeps A's own observations.
    await a.evaluate(() => window.zerostate.stop())
    await a.reload()
    await a.waitForFunction(() => window.zerostate != null, null, { timeout: 30_000 })
    await a.evaluate(() => window.zerostate.ready)
    await a.waitForFunction((donorIds) => donorIds.every((id) => window.zerostate.peers().some((p) => p.id === id && p.publicKey != null)), ids.slice(1), {
      timeout: 20_000
    })
    const reloaded = await lowest(a)
    assert.ok(reloaded.liarLowest, `after a reload: ${JSON.stringify(reloaded.reps)}`)
    assert.ok((await a.evaluate(() => window.zerostate.credits().receipts.length)) >= credits.receipts.length)
  })
})
