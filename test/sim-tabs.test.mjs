// The simulator with real browser tabs in its mesh (issue 16: "N Node peers … plus a few real
// browser tabs"): `npm run sim -- --tabs N` opens N Chromium tabs of the built app, which join
// the simulated mesh through its relay's WebSocket like any tab. Run here small and quick, through
// the same command line a user runs, its JSON read back: every probe reaches every tab and every
// simulated peer, and every tab holds the presence of every simulated peer.
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureBuilt } from './harness.mjs'

const ROOT = new URL('..', import.meta.url).pathname
const PEERS = 8
const TABS = 2
const PROBES = 10

describe('the simulator with real tabs', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'zs-sim-tabs-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it(`${TABS} Chromium tabs in a mesh of ${PEERS} simulated peers receive every probe and hold every presence`, async () => {
    ensureBuilt()
    const out = join(dir, 'sim.json')
    const args = ['--max-semi-space-size=64', '--import', 'tsx', 'bench/sim.mjs', '--sizes', String(PEERS), '--tabs', String(TABS), '--quick']
    args.push('--max-lag', '0', '--idle-seconds', '0', '--settle-max', '0', '--probes', String(PROBES), '--workers', '2', '--out', out)
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let log = ''
    child.stdout.on('data', (c) => (log += c))
    child.stderr.on('data', (c) => (log += c))
    const code = await new Promise((resolve) => child.on('close', resolve))
    assert.equal(code, 0, `npm run sim failed:\n${log.slice(-4000)}`)
    const size = JSON.parse(readFileSync(out, 'utf8')).sizes[0]
    assert.equal(size.peers, PEERS)
    const tabs = size.tabs
    assert.ok(tabs != null, 'sim.json has the tabs figures')
    assert.equal(tabs.n, TABS)
    // Each probe is sent by a simulated peer and expected at every tab.
    assert.equal(tabs.expected, PROBES * TABS)
    assert.equal(tabs.delivered, tabs.expected, `probes to the tabs: ${tabs.delivered}/${tabs.expected}`)
    assert.equal(size.gossip.delivered, size.gossip.expected, 'every probe reached every simulated peer and tab')
    assert.equal(tabs.lackingPresence, 0, 'every tab holds the presence of every simulated peer')
  })
})
