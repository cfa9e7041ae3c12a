// The terminal peer (issue 16, API.md "From a terminal") against the real relay and real
// Chromium tabs: `zerostate submit` runs on a browser donor and prints the TaskResult with
// --json, and `trace` prints its OTLP/JSON with the donor tab's span; a browser's task runs on a `zerostate donate` peer; `publish` makes an agent appear
// in a tab's registry under this machine's key; `run` completes a workflow whose approval is
// answered on stdin; a wrong --app or agent ends with the exit code that says so.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startMesh, waitForFullMesh } from './harness.mjs'

const BIN = new URL('../bin/zerostate.mjs', import.meta.url).pathname
const sha256 = (s) => createHash('sha256').update(s, 'utf8').digest('hex')

describe('the zerostate command', () => {
  let mesh, a, b, profile, bId
  /** Run the command to its end: { code, stdout, stderr }. */
  const zerostate = (args, { stdin, app = mesh.url, timeoutMs = 120_000 } = {}) =>
    new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [BIN, '--app', app, '--profile', profile, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      p.stdout.on('data', (d) => (stdout += d))
      p.stderr.on('data', (d) => (stderr += d))
      if (stdin != null) p.stdin.write(stdin)
      const timer = setTimeout(() => {
        p.kill('SIGKILL')
        reject(new Error(`zerostate ${args.join(' ')} did not end in ${timeoutMs} ms; stderr: ${stderr}`))
      }, timeoutMs)
      p.on('exit', (code) => {
        clearTimeout(timer)
        resolve({ code, stdout, stderr })
      })
    })

  before(async () => {
    profile = await mkdtemp(join(tmpdir(), 'zerostate-cli-'))
    mesh = await startMesh()
    ;[a, b] = [await mesh.newPeer(), await mesh.newPeer()]
    // Under load two tabs can take longer than the harness's 15 s default to link.
    ;[, bId] = await waitForFullMesh([a, b], 60_000)
    await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
  })
  after(async () => {
    await mesh?.stop()
    if (profile != null) await rm(profile, { recursive: true, force: true })
  })

  it('submit --json runs the task on a browser donor and prints the TaskResult; the key stays in the profile', async () => {
    // The command waits for a donor (10 s by default) and then runs the task itself, saying so:
    // on a loaded machine (load 28 in a CI run) B's presence came later, so wait as long as needed.
    const r = await zerostate(['submit', 'hash it', '--agent', 'hash', '--input', 'from a terminal', '--json', '--wait-donor', '60000'])
    assert.doesNotMatch(r.stderr, /no donor offered/)
    assert.equal(r.code, 0, r.stderr)
    const result = JSON.parse(r.stdout)
    assert.equal(result.status, 'succeeded')
    assert.equal(result.output.sha256, sha256('from a terminal'))
    assert.equal(result.steps[0].peer, bId, 'run on the donating tab B')
    assert.match(r.stderr, /succeeded/)
    // `trace` prints the task's OTLP/JSON, kept in the profile: a new process that joins no mesh (the --app is dead).
    const t = await zerostate(['trace', result.id], { app: 'http://127.0.0.1:9/' })
    assert.equal(t.code, 0, t.stderr)
    const otlp = JSON.parse(t.stdout)
    const byPeer = new Map(
      otlp.resourceSpans.map((rs) => [
        rs.resource.attributes.find((x) => x.key === 'service.instance.id').value.stringValue,
        rs.scopeSpans.flatMap((ss) => ss.spans)
      ])
    )
    const donorNames = byPeer.get(bId)?.map((sp) => sp.name) ?? []
    assert.ok(
      donorNames.includes('donor.step') && donorNames.includes('donor.run'),
      `the donor tab's spans are in the trace (peers: ${[...byPeer.keys()].join(', ')}; donor spans: ${donorNames.join(', ')})`
    )
    const spans = [...byPeer.values()].flat()
    const root = spans.filter((sp) => sp.parentSpanId == null)
    assert.deepEqual(
      root.map((sp) => sp.name),
      ['task.run'],
      'one root: the run'
    )
    assert.ok(
      spans.every((sp) => sp.traceId === root[0].traceId),
      'one trace'
    )
    const ids = new Set(spans.map((sp) => sp.spanId))
    assert.ok(
      spans.every((sp) => sp === root[0] || ids.has(sp.parentSpanId)),
      'one tree: every span hangs under the run'
    )
    const unknown = await zerostate(['trace', 't-0123456789abcdef01234567'])
    assert.equal(unknown.code, 5, unknown.stderr)
    assert.match(unknown.stderr, /no trace of task t-0123456789abcdef01234567 is kept/)
    const key = await readFile(join(profile, 'identity.key'))
    assert.ok(key.byteLength > 0)
    // The same key on the next run: `status` shows the same profile key.
    const s = await zerostate(['status', '--json', '--settle', '500'])
    assert.equal(s.code, 0, s.stderr)
    const status = JSON.parse(s.stdout)
    assert.equal(status.relay.state, 'connected')
    const again = await zerostate(['status', '--json', '--settle', '200'])
    assert.equal(JSON.parse(again.stdout).publicKey, status.publicKey)
    assert.notEqual(JSON.parse(again.stdout).peerId, status.peerId, 'a new peer id each run, one profile key')
  })

  it("a browser's task runs on a `zerostate donate` peer, which stops cleanly on SIGTERM", async () => {
    await b.evaluate(() => window.zerostate.donate({ enabled: false }))
    const p = spawn(process.execPath, [BIN, '--app', mesh.url, '--profile', profile, 'donate', '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    const exited = new Promise((resolve) => p.on('exit', resolve))
    try {
      const donating = new Promise((resolve, reject) => {
        p.stderr.on('data', (d) => {
          stderr += d
          const m = /donating \d+ worker\(s\) as (\S+)/.exec(stderr)
          if (m) resolve(m[1])
        })
        p.on('exit', (code) => reject(new Error(`donate ended (${code}): ${stderr}`)))
      })
      const cliId = await donating
      await a.waitForFunction(
        (id) => window.zerostate.peers().some((x) => x.id === id && x.donating && x.freeWorkers > 0 && x.capabilities.includes('hashing')),
        cliId,
        { timeout: 30_000 }
      )
      // Tab A answered the terminal peer's dial, but the terminal may still abandon it (its side of the
      // dial can fail after A's side is up: CI failed twice on a link the terminal no longer had, and
      // A then ran the step itself, as designed). So wait until a stream over A's link is taken up at
      // the other end: a ping answered; each failed ping waits for the next change of A's peers.
      const pinged = await a.evaluate(async (id) => {
        const deadline = Date.now() + 30_000
        const errors = []
        while (Date.now() < deadline) {
          const changed = new Promise((resolve) => {
            const off = window.zerostate.subscribe(() => {
              off()
              resolve()
            })
          })
          try {
            await window.zerostate.ping(id)
            return { ok: true, errors }
          } catch (err) {
            errors.push(String(err.message))
          }
          await Promise.race([changed, new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())))])
        }
        return { ok: false, errors }
      }, cliId)
      assert.ok(pinged.ok, `tab A never reached the terminal peer over a link: ${pinged.errors.join('; ')}`)
      if (pinged.errors.length > 0) console.log(`# tab A reached the terminal peer after ${pinged.errors.length} failed ping(s): ${pinged.errors.join('; ')}`)
      const { r, events } = await a.evaluate(async () => {
        const h = window.zerostate.submit({ description: 'hash it', agent: 'hash', input: 'on a terminal' })
        const seen = window.zerostate.peers().map((x) => ({ id: x.id, via: x.transport, donating: x.donating, free: x.freeWorkers, rtt: x.rttMs }))
        const events = []
        h.on('step', (e) => events.push({ status: e.status, peer: e.peer, attempt: e.attempt, error: e.error, why: e.reasoning }))
        return { r: await h.done, events: { seen, events } }
      })
      // On failure, say where it went and why, and what A saw of its peers when it submitted.
      const who = { a: await a.evaluate(() => window.zerostate.peerId), b: await b.evaluate(() => window.zerostate.peerId), cli: cliId }
      assert.equal(r.steps[0].peer, cliId, `the step ran on the terminal peer: ${JSON.stringify({ who, events })}`)
      assert.equal(r.output.sha256, sha256('on a terminal'))
      await new Promise((resolve) => {
        if (/served 1 step/.test(stderr)) resolve()
        else p.stderr.on('data', () => /served 1 step/.test(stderr) && resolve())
      })
      p.kill('SIGTERM')
      assert.equal(await exited, 0, stderr)
      assert.match(stderr, /stopped donating after 1 step/)
    } finally {
      p.kill('SIGKILL')
      await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
    }
  })

  it("publish signs with this machine's key and the agent appears in a tab's registry", async () => {
    const index = JSON.parse(await readFile(new URL('../build/agents/index.json', import.meta.url), 'utf8'))
    const base = index.agents.find((x) => x.manifest.name === 'word-stats')
    const { author, signature, ...unsigned } = base.manifest
    const dir = await mkdtemp(join(tmpdir(), 'zerostate-agent-'))
    try {
      await writeFile(join(dir, 'manifest.json'), JSON.stringify({ ...unsigned, name: 'cli-word-stats', version: '1.0.1' }))
      const r = await zerostate([
        'publish',
        new URL(`../build/agents/${base.file}`, import.meta.url).pathname,
        '--manifest',
        join(dir, 'manifest.json'),
        '--json'
      ])
      assert.equal(r.code, 0, r.stderr)
      const entry = JSON.parse(r.stdout)
      const s = await zerostate(['status', '--json', '--settle', '200'])
      assert.equal(entry.manifest.author, JSON.parse(s.stdout).publicKey, 'signed with the profile key')
      // The command ends once one peer took the record (the tab it linked first, A or B); that tab
      // lists it at once, and the other gets it from it at their next anti-entropy round (a change
      // received is not sent on: up to resyncIntervalMs, 15 s, later).
      const listed = (page, timeout) =>
        page
          .waitForFunction((id) => window.zerostate.agents.list().find((x) => x.id === id)?.manifest.author ?? false, entry.id, { timeout })
          .then((h) => h.jsonValue())
      assert.equal(await Promise.any([listed(a, 20_000), listed(b, 20_000)]), entry.manifest.author)
      const [atA, atB] = await Promise.all([listed(a, 45_000), listed(b, 45_000)])
      assert.equal(atA, entry.manifest.author)
      assert.equal(atB, entry.manifest.author)
      const bad = await zerostate(['publish', join(dir, 'manifest.json'), '--manifest', join(dir, 'manifest.json')])
      assert.equal(bad.code, 1, 'a module that is not WebAssembly is refused')
      assert.match(bad.stderr, /zerostate: \w+Error: /)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('run completes a workflow whose approval is answered on stdin', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zerostate-wf-'))
    try {
      const file = join(dir, 'review.yaml')
      await writeFile(
        file,
        `name: review-then-count
steps:
  - id: count
    agent: word-stats
    input: \${task}
  - id: review
    depends_on: [count]
    approval:
      prompt: Keep this count?
      show: \${count.words}
      on_reject: fail
output: \${count.words}
`
      )
      const yes = await zerostate(['run', file, '--input', 'one two three four', '--json'], { stdin: 'y\n' })
      assert.equal(yes.code, 0, yes.stderr)
      assert.equal(JSON.parse(yes.stdout).output, 4)
      assert.match(yes.stderr, /Keep this count\?/)
      assert.match(yes.stderr, /approved review/)
      const no = await zerostate(['run', file, '--input', 'one two', '--reject'])
      assert.equal(no.code, 1, no.stderr)
      assert.match(no.stderr, /rejected review/)
      const broken = await zerostate(['run', file.replace('review.yaml', 'missing.yaml')])
      assert.equal(broken.code, 2)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('agent new, build, test and publish an AssemblyScript agent from a clean directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zerostate-sdk-'))
    try {
      const made = await zerostate(['agent', 'new', 'my-counter', '--dir', dir])
      assert.equal(made.code, 0, made.stderr)
      const root = made.stdout.trim()
      assert.equal(root, join(dir, 'my-counter'))
      const again = await zerostate(['agent', 'new', 'my-counter', '--dir', dir])
      assert.equal(again.code, 2, 'an existing project is not overwritten')
      // Unoptimized: the same compiler, without binaryen's -O3 passes (minutes on a loaded 2-core machine).
      const built = await zerostate(['agent', 'build', '--dir', root, '--no-optimize'], { timeoutMs: 240_000 })
      assert.equal(built.code, 0, built.stderr)
      assert.ok((await readFile(join(root, 'build', 'agent.wasm'))).byteLength > 100)
      const tested = await zerostate(['agent', 'test', '--dir', root, '--json'])
      assert.equal(tested.code, 0, tested.stdout + tested.stderr)
      const results = JSON.parse(tested.stdout)
      assert.equal(results.length, 3)
      assert.ok(results.every((r) => r.ok))
      assert.deepEqual(results[0].output, { words: 2, characters: 10 })
      // A wrong expectation fails the test run, naming it.
      const examples = JSON.parse(await readFile(join(root, 'examples.json'), 'utf8'))
      examples[0].output.words = 3
      await writeFile(join(root, 'examples.json'), JSON.stringify(examples))
      const failing = await zerostate(['agent', 'test', '--dir', root])
      assert.equal(failing.code, 1)
      assert.match(failing.stdout, /^FAIL "hello mesh"/m)
      assert.match(failing.stderr, /2 of 3 examples pass/)
      // Published with --hold, the terminal serves the module: a task from tab A runs it on donor B, which fetches it from there.
      const p = spawn(process.execPath, [BIN, '--app', mesh.url, '--profile', profile, 'agent', 'publish', '--dir', root, '--hold', '--json'], {
        stdio: ['ignore', 'pipe', 'pipe']
      })
      const exited = new Promise((resolve) => p.on('exit', resolve))
      try {
        let stdout = ''
        let stderr = ''
        const holding = new Promise((resolve, reject) => {
          // The entry (stdout) and the "holding" line (stderr) come on two pipes, in either order.
          const check = () => {
            if (!/holding my-counter/.test(stderr)) return
            try {
              resolve(JSON.parse(stdout))
            } catch {
              /* the entry is not all there yet */
            }
          }
          p.stdout.on('data', (d) => {
            stdout += d
            check()
          })
          p.stderr.on('data', (d) => {
            stderr += d
            check()
          })
          p.on('exit', (code) => reject(new Error(`publish --hold ended (${code}): ${stderr}`)))
        })
        const entry = await holding
        assert.equal(entry.manifest.name, 'my-counter')
        await a.waitForFunction((id) => window.zerostate.agents.list().some((x) => x.id === id), entry.id, { timeout: 30_000 })
        const r = await a.evaluate((id) => window.zerostate.submit({ description: 'count', agent: id, input: 'three little words' }).done, entry.id)
        assert.deepEqual(r.output, { words: 3, characters: 18 }, 'the published agent ran for a tab')
        assert.equal(r.steps[0].peer, bId, 'on the donating tab, which fetched it from the terminal')
        p.kill('SIGTERM')
        assert.equal(await exited, 0, stderr)
      } finally {
        p.kill('SIGKILL')
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('says what went wrong, with the exit code that means it', async () => {
    const unreachable = await zerostate(['status'], { app: 'http://127.0.0.1:9/' })
    assert.equal(unreachable.code, 3, unreachable.stderr)
    assert.match(unreachable.stderr, /did not answer/)
    const noAgent = await zerostate(['submit', 'do it', '--agent', 'no-such-agent'])
    assert.equal(noAgent.code, 1)
    assert.match(noAgent.stderr, /no agent named "no-such-agent"/)
    const usage = await zerostate(['submit'])
    assert.equal(usage.code, 2)
    assert.match(usage.stderr, /missing required argument/)
  })
})
