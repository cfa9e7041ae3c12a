// Issue 11 items 1, 5 and 4 against real tabs: a hostile Node peer pushes, over the sync
// protocol, (1) a registry record whose manifest is ContentJSON nested 20,000 deep, (5) 600
// entries from one key (quota 256), and (4) paid, validly signed entries from 2 fresh keys
// claiming word-count at price 0 and held by the hostile peer. The first two are refused at
// the guard, counted and struck; the third enter the registry but lose every route to the
// bundled agent. After a reload of A, and on a new tab C, the registry still lists the
// bundled agents, holds none of the refused records, and honest tasks succeed.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { waitForFullMesh } from '../harness.mjs'
import { hostileStage, TEXT, until } from './scenario.mjs'
import { deepJsonRecordUpdate, overQuotaUpdate, pushRegistryUpdate, takeoverUpdate } from './registry-attack.mjs'

const sum = (m, re) => Object.entries(m).reduce((n, [k, v]) => (re.test(k) ? n + v : n), 0)

describe('the registry survives strangers (issue 11 items 1, 4, 5)', () => {
  let s
  before(async () => {
    s = await hostileStage()
  })
  after(async () => {
    await s?.stop()
  })

  it('a 20,000-deep ContentJSON record and 600 entries from one key are refused at the guard, counted, and each sender blocked at once', async () => {
    // Two senders: each update proves its sender hostile on its own (no honest peer holds JSON
    // content in the registry, nor more than the quota of one author), so each is blocked at its first.
    const [h, h2] = [await s.hostile(), await s.hostile()]
    await h.dialDirect(s.idA)
    await h2.dialDirect(s.idA)
    const before = await s.metrics(s.a)
    const deep = deepJsonRecordUpdate(`ed25519:${'D'.repeat(43)}`)
    const flood = await overQuotaUpdate(600)
    const r = await s.measure(
      async () => {
        await pushRegistryUpdate(h, s.idA, 'update', deep)
        await until(async () => (await s.metrics(s.a))['memory.sync.rejectedUpdates'] > (before['memory.sync.rejectedUpdates'] ?? 0), {
          message: 'A refuses the deep record'
        })
        await pushRegistryUpdate(h2, s.idA, 'update', flood.update)
      },
      {
        until: () => until(async () => ((await s.metrics(s.a))['memory.registry.overQuotaRefused'] ?? 0) >= 1, { message: 'A refuses the over-quota update' })
      }
    )
    await until(async () => ((await s.metrics(s.a))['mesh.peers.blocked'] ?? 0) - (before['mesh.peers.blocked'] ?? 0) >= 2, { message: 'both senders blocked' })
    const m = await s.metrics(s.a)
    assert.ok(m['memory.sync.rejectedUpdates'] - (before['memory.sync.rejectedUpdates'] ?? 0) >= 2, 'both updates refused')
    assert.ok(sum(m, /^mesh\.strikes\.sync\./) - sum(before, /^mesh\.strikes\.sync\./) >= 2, 'the senders struck')
    assert.equal((m['mesh.strikes.sync.HostileUpdate'] ?? 0) - (before['mesh.strikes.sync.HostileUpdate'] ?? 0), 2, 'each blocked as a hostile update')
    assert.equal((m['memory.sync.refused.forbidden-content'] ?? 0) - (before['memory.sync.refused.forbidden-content'] ?? 0), 1)
    assert.equal((m['memory.sync.refused.over-quota-alone'] ?? 0) - (before['memory.sync.refused.over-quota-alone'] ?? 0), 1)
    for (const x of [h, h2]) assert.equal(await x.canConnect(s.idA, { timeout: 4000 }), false, 'a blocked sender reconnected')
    assert.equal(m['memory.registry.entries'] ?? 0, before['memory.registry.entries'] ?? 0, 'nothing of it entered the registry')
    // A stayed responsive: pings to B all answered, no long task from the attack.
    assert.equal(r.pings.failed, 0)
    assert.ok(r.maxLongTaskMs < 1000, `longest task ${r.maxLongTaskMs} ms`)
    const task = await s.honestTask()
    assert.equal(task.status, 'succeeded', task.error)
  })

  it('paid entries from 2 fresh keys claiming word-count at price 0 do not take honest tasks (balanced, cost, speed)', async () => {
    const h = await s.hostile()
    await h.announce({ capabilities: ['word-count'] })
    await h.dialDirect(s.idA)
    await s.a.waitForFunction((id) => window.zerostate.peers().some((p) => p.id === id), h.peerId, { timeout: 15_000, polling: 100 })
    const takeover = await takeoverUpdate({ keys: 2, perKey: 4, capability: 'word-count', holder: h.peerId })
    await pushRegistryUpdate(h, s.idA, 'update', takeover.update)
    // They are valid: signed packages with the tabs' proof of work, so A lists them…
    await s.a.waitForFunction(
      (authors) => window.zerostate.agents.list({ capability: 'word-count' }).filter((e) => authors.includes(e.author)).length === 8,
      takeover.authors,
      { timeout: 20_000, polling: 100 }
    )
    // …and routes every strategy's honest task to the bundled agent on B.
    for (const strategy of ['balanced', 'cost', 'speed']) {
      const r = await s.a.evaluate(
        async ([text, strategy]) => {
          const h = window.zerostate.submit({ description: 'count the words', input: text, preferences: { strategy } })
          return await h.done.then(
            (r) => ({ status: r.status, agent: r.steps[0].agent, peer: r.steps[0].peer, hostile: window.zerostate.agents.get(r.steps[0].agent)?.author }),
            (err) => ({ status: 'failed', error: `${err?.name}: ${err?.message}` })
          )
        },
        [TEXT, strategy]
      )
      assert.equal(r.status, 'succeeded', `${strategy}: ${r.error}`)
      assert.equal(r.peer, s.idB, strategy)
      assert.ok(!takeover.authors.includes(r.hostile), `${strategy} chose a throwaway key's agent`)
    }
  })

  it('after a reload of A and on a new tab, the registry lists the bundled agents, holds nothing refused, and tasks succeed', async () => {
    const r = await s.intactAfterReload()
    assert.ok(r.ok, JSON.stringify(r))
    const m = await s.metrics(s.a)
    // What A keeps after the reload: the stage's own entry and the 8 valid takeover entries, none of the 600 nor the deep record.
    assert.ok((m['memory.registry.entries'] ?? 0) <= 9, `A holds ${m['memory.registry.entries']} entries`)
    const c = await s.mesh.newPeer()
    await waitForFullMesh([s.a, s.b, c], 20_000)
    const bundled = await s.a.evaluate(() => window.zerostate.agents.list().filter((e) => e.bundled).length)
    await c.waitForFunction((n) => window.zerostate.agents.list().filter((e) => e.bundled).length >= n, bundled, { timeout: 15_000, polling: 100 })
    await c.waitForFunction(() => window.zerostate.peers().some((p) => p.donating), null, { timeout: 15_000, polling: 100 })
    const cm = await c.evaluate(() => window.zerostate.metrics())
    assert.ok((cm['memory.registry.entries'] ?? 0) <= 9, `C holds ${cm['memory.registry.entries']} entries`)
    const task = await c.evaluate(async (text) => {
      const h = window.zerostate.submit({ description: 'count the words', input: text })
      return await h.done.then(
        (r) => ({ status: r.status }),
        (err) => ({ status: 'failed', error: `${err?.name}: ${err?.message}` })
      )
    }, TEXT)
    assert.equal(task.status, 'succeeded', task.error)
  })
})
