// bench:hidden-tabs (issue 16): how a submitter fares when its donor's tab goes to the background
// or is frozen by the browser, with the real relay and real Chromium tabs (test/hidden-page.mjs
// says how a tab is really hidden and frozen). Per round, alternating:
//   visible   the slow step on a donor that stays in front (baseline for 'hidden')
//   hidden    the same step, its donor's tab put in the background right after it accepted
//   closed    the step's donor tab is closed while it runs: submit -> re-route reaction
//             (baseline for 'frozen': a donor that goes away in a way the network sees)
//   frozen    the step's donor tab is hidden and frozen while it runs: freeze -> reaction
//   silentVisible / silentHidden   the step's donor stops without warning (its script paused by the
//             debugger), visible then hidden: only its lease (3 s visible, 10 s hidden) tells the submitter
// Figures: completion times (hidden vs visible), reaction times (frozen vs closed), and how the
// submitter learned of the freeze (the donor's hand-back, or the lease running out).
// Usage: npm run bench:hidden-tabs -- [--rounds N] [--outer N]
import { ensureBuilt, startMesh, waitForFullMesh } from '../test/harness.mjs'
import { eventOf, openHideablePeer, publishSlow, resultOf, submitSlow } from '../test/hidden-page.mjs'
import { summary, writeResults } from './stats.mjs'
import { loadavg } from 'node:os'

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : d
}
const ROUNDS = arg('rounds', 3)
const OUTER = arg('outer', 600)

ensureBuilt()
const load = [loadavg()[0]]
const mesh = await startMesh()
const a = await mesh.newPeer()
let v = await mesh.newPeer()
const hidden = await openHideablePeer(mesh.url)
const h = hidden.page
await waitForFullMesh([a, v, h], 60_000)
const idOf = (p) => p.evaluate(() => window.zerostate.peerId)
const hId = await idOf(h)
let vId = await idOf(v)
const agentId = await publishSlow(a, OUTER)
const hasAgent = (p) => p.waitForFunction((id) => window.zerostate.agents.list().some((e) => e.id === id), agentId, { timeout: 30_000, polling: 50 })
await Promise.all([hasAgent(h), hasAgent(v)])
const donate = async (p, id, enabled) => {
  await p.evaluate((enabled) => window.zerostate.donate({ enabled, workers: 1 }), enabled)
  await a.waitForFunction(
    ({ id, enabled }) => window.zerostate.peers().some((x) => x.id === id && x.donating === enabled && (!enabled || x.freeWorkers > 0)),
    { id, enabled },
    { timeout: 20_000, polling: 50 }
  )
}

const out = {
  visible: [],
  hidden: [],
  closed: [],
  frozen: [],
  silentVisible: [],
  silentHidden: [],
  frozenVia: { released: 0, leaseLost: 0, other: 0 },
  rerouteDone: { closed: [], frozen: [] }
}
let n = 0
for (let round = 0; round < ROUNDS; round++) {
  // visible and hidden: only H donates.
  await donate(v, vId, false)
  await donate(h, hId, true)
  for (const mode of round % 2 === 0 ? ['visible', 'hidden'] : ['hidden', 'visible']) {
    const input = `${mode} ${++n}`
    const t0 = Date.now()
    await submitSlow(a, agentId, input)
    await eventOf(a, input, { status: 'accepted', peer: hId })
    if (mode === 'hidden') await hidden.hide()
    const r = await resultOf(a, input)
    if (r.peers[0] !== hId) throw new Error(`${mode}: ran on ${r.peers[0]}, not the donor`)
    out[mode].push(r.at - t0)
    if (mode === 'hidden') await hidden.show()
    console.log(`round ${round + 1} ${mode}: ${r.at - t0} ms`)
  }
  // closed: the step runs on V, whose tab closes; H (visible, donating) takes it over.
  await donate(h, hId, false)
  await donate(v, vId, true)
  {
    const input = `closed ${++n}`
    await submitSlow(a, agentId, input)
    await eventOf(a, input, { status: 'accepted', peer: vId })
    await donate(h, hId, true)
    const closedAt = Date.now()
    await v.close()
    const failed = await eventOf(a, input, { status: 'failed', peer: vId }, 30_000)
    out.closed.push(failed.at - closedAt)
    const r = await resultOf(a, input)
    out.rerouteDone.closed.push(r.at - closedAt)
    console.log(`round ${round + 1} closed: reacted in ${failed.at - closedAt} ms (${failed.error})`)
    v = await mesh.newPeer()
    await waitForFullMesh([a, v, h], 60_000)
    vId = await idOf(v)
    await hasAgent(v)
  }
  // frozen: the step runs on H, whose tab is hidden and frozen; V takes it over.
  await donate(v, vId, false)
  {
    const input = `frozen ${++n}`
    await submitSlow(a, agentId, input)
    await eventOf(a, input, { status: 'accepted', peer: hId })
    await donate(v, vId, true)
    await hidden.hide()
    const frozenAt = await hidden.freeze()
    const failed = await eventOf(a, input, { status: 'failed', peer: hId }, 30_000)
    out.frozen.push(failed.at - frozenAt)
    if (/handed the step back/.test(failed.error)) out.frozenVia.released++
    else if (/stopped renewing its lease/.test(failed.error)) out.frozenVia.leaseLost++
    else out.frozenVia.other++
    const r = await resultOf(a, input)
    out.rerouteDone.frozen.push(r.at - frozenAt)
    console.log(`round ${round + 1} frozen: reacted in ${failed.at - frozenAt} ms (${failed.error})`)
    await hidden.resume()
    await hidden.show()
  }
  // silent: the step's donor (visible, then hidden) stops without warning (its script paused): only its lease tells.
  for (const mode of ['silentVisible', 'silentHidden']) {
    await donate(v, vId, false)
    const input = `${mode} ${++n}`
    await submitSlow(a, agentId, input)
    await eventOf(a, input, { status: 'accepted', peer: hId })
    await donate(v, vId, true)
    if (mode === 'silentHidden') await hidden.hide()
    const pausedAt = Date.now()
    await hidden.pause()
    const failed = await eventOf(a, input, { status: 'failed', peer: hId }, 60_000)
    out[mode].push(failed.at - pausedAt)
    console.log(`round ${round + 1} ${mode}: reacted in ${failed.at - pausedAt} ms (${failed.error})`)
    await resultOf(a, input)
    await hidden.unpause()
    if (mode === 'silentHidden') await hidden.show()
  }
  load.push(loadavg()[0])
}
await hidden.close()
await mesh.stop()

const s = (xs) => summary(xs)
const result = {
  when: new Date().toISOString(),
  machine: { cores: (await import('node:os')).cpus().length, load1: load.map((x) => Math.round(x * 10) / 10) },
  slowAgentOuterLoops: OUTER,
  leaseMs: { visible: 3000, hidden: 10_000 },
  completionMs: {
    visible: s(out.visible),
    hidden: s(out.hidden),
    hiddenOverVisibleP50: Math.round((summary(out.hidden).p50 / summary(out.visible).p50) * 100) / 100
  },
  reactionMs: { closed: s(out.closed), frozen: s(out.frozen), silentVisible: s(out.silentVisible), silentHidden: s(out.silentHidden) },
  frozenLearnedBy: out.frozenVia,
  rerouteDoneMs: { closed: s(out.rerouteDone.closed), frozen: s(out.rerouteDone.frozen) },
  raw: out
}
console.log(JSON.stringify({ completionMs: result.completionMs, reactionMs: result.reactionMs, frozenLearnedBy: out.frozenVia }, null, 2))
writeResults('hidden-tabs', result)
