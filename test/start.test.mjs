// `npm start` as a user runs it: it stops on SIGTERM and SIGINT with nothing left running (also when
// npm itself is killed), a busy port is one sentence, and a first start shows one line per build
// phase instead of the build log. Needs the build (the start itself is run with --no-build).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { ensureBuilt, eventually } from './harness.mjs'

/** No test may hang the suite. */
const LIMIT = 120_000
const ROOT = new URL('..', import.meta.url).pathname
const temps = []
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})
function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix))
  temps.push(d)
  return d
}

/** A process is gone when it no longer exists or is a zombie nobody reaped yet. */
function alive(pid) {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/** Every process below `pid`, from /proc (Linux). */
function descendants(pid) {
  const parentOf = new Map()
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8')
      parentOf.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const out = []
  const walk = (p) => {
    for (const [child, parent] of parentOf)
      if (parent === p) {
        out.push(child)
        walk(child)
      }
  }
  walk(pid)
  return out
}

async function portIsFree(port) {
  const server = createServer()
  return await new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** Spawn, collect output, resolve `ready` with the URL once the ready line is printed. */
function run(cmd, args, { cwd = ROOT, env = {} } = {}) {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const ready = new Promise((resolve, reject) => {
    const onData = (d) => {
      out += d
      const m = /ZeroState is running at (http:\/\/\S+)/.exec(out)
      if (m) resolve(m[1])
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    exited.then(({ code, signal }) => reject(new Error(`exited (${code ?? signal}) before it was ready:\n${out}`)))
  })
  ready.catch(() => {})
  return {
    child,
    ready,
    exited,
    get out() {
      return out
    }
  }
}

function startArgs() {
  return ['scripts/start.mjs', '--no-build', '--port', '0', '--data', tempDir('zs-start-data-')]
}

describe('stopping npm start', () => {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    it(`${signal} to scripts/start.mjs stops the relay and frees the port`, { timeout: LIMIT }, async () => {
      ensureBuilt()
      const s = run(process.execPath, startArgs())
      const url = await s.ready
      const port = Number(new URL(url).port)
      const below = descendants(s.child.pid)
      assert.ok(below.length > 0, 'the relay runs as a child')
      assert.equal(await portIsFree(port), false)
      s.child.kill(signal)
      const { code } = await s.exited
      assert.equal(code, 0, s.out)
      // start.mjs waits for its children: nothing is left the moment it exits.
      assert.deepEqual(below.filter(alive), [])
      assert.equal(await portIsFree(port), true)
    })
  }

  it('kill <pid of npm start> stops everything it started', { timeout: LIMIT }, async () => {
    ensureBuilt()
    const s = run('npm', ['start', '--silent', '--', ...startArgs().slice(1)])
    const url = await s.ready
    const below = descendants(s.child.pid)
    assert.ok(below.length >= 2, `start.mjs and the relay run below npm: ${below}`)
    s.child.kill('SIGTERM')
    await s.exited
    await eventually(() => below.filter(alive).length === 0, { timeout: 10_000, message: `no process left of ${below}` })
    assert.equal(await portIsFree(Number(new URL(url).port)), true)
  })

  it('the relay stops by itself when start.mjs is killed outright', { timeout: LIMIT }, async () => {
    ensureBuilt()
    const s = run(process.execPath, startArgs())
    await s.ready
    const below = descendants(s.child.pid)
    s.child.kill('SIGKILL')
    await s.exited
    await eventually(() => below.filter(alive).length === 0, { timeout: 10_000, message: 'the relay to stop' })
  })

  it('a busy port is one sentence naming the port and PORT, no stack, and a non-zero exit', { timeout: LIMIT }, async () => {
    ensureBuilt()
    const busy = createServer()
    await new Promise((r) => busy.listen(0, '127.0.0.1', r))
    const { port } = busy.address()
    try {
      const s = run(process.execPath, ['scripts/start.mjs', '--no-build', '--data', tempDir('zs-start-data-')], { env: { PORT: String(port) } })
      const { code } = await s.exited
      assert.notEqual(code, 0)
      assert.match(s.out, new RegExp(`port ${port} .*already in use.*PORT=`))
      assert.doesNotMatch(s.out, /\n\s+at |EADDRINUSE|Error:/, s.out)
      assert.equal(
        s.out
          .trim()
          .split('\n')
          .filter((l) => /in use/.test(l)).length,
        1
      )
    } finally {
      busy.close()
    }
  })
})

describe('first start', () => {
  /**
   * A copy of the project's start script in a scratch project whose build steps are stand-ins
   * that print a lot (like the real agents build and Vite), so the output can be checked without
   * a two-minute build.
   */
  function scratchProject({ appFails = false } = {}) {
    const dir = tempDir('zs-start-proj-')
    mkdirSync(join(dir, 'scripts'))
    cpSync(join(ROOT, 'scripts/start.mjs'), join(dir, 'scripts/start.mjs'))
    // The real compress step (Node built-ins only): it runs on the stand-in build below.
    cpSync(join(ROOT, 'scripts/precompress.mjs'), join(dir, 'scripts/precompress.mjs'))
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}')
    mkdirSync(join(dir, 'src'))
    writeFileSync(join(dir, 'src/app.html'), '')
    mkdirSync(join(dir, 'agents'))
    writeFileSync(join(dir, 'agents/build.mjs'), `for (let i = 0; i < 30; i++) console.log('agent line ' + i)\n`)
    mkdirSync(join(dir, 'node_modules/vite/bin'), { recursive: true })
    writeFileSync(join(dir, 'node_modules/vite/package.json'), '{"name":"vite","bin":{"vite":"bin/vite.js"}}')
    writeFileSync(
      join(dir, 'node_modules/vite/bin/vite.js'),
      `import { mkdirSync, writeFileSync } from 'node:fs'
for (let i = 0; i < 50; i++) console.log('vite line ' + i)
console.warn('Run npm run preview to preview your production build locally.')
${appFails ? "console.error('vite exploded'); process.exit(3)" : "mkdirSync('build', { recursive: true }); writeFileSync('build/index.html', '')"}
`
    )
    symlinkSync(join(ROOT, 'node_modules/tsx'), join(dir, 'node_modules/tsx'))
    mkdirSync(join(dir, 'relay'))
    writeFileSync(
      join(dir, 'relay/index.ts'),
      `console.log('[relay] peer id x listening on y')
console.log('ZeroState is running at http://127.0.0.1:1/')
process.on('SIGTERM', () => process.exit(0))
setInterval(() => {}, 1000)
`
    )
    return dir
  }

  it('shows one line per phase and the URL last, not the build log', { timeout: LIMIT }, async () => {
    const s = run(process.execPath, ['scripts/start.mjs'], { cwd: scratchProject() })
    await s.ready
    s.child.kill('SIGTERM')
    await s.exited
    const lines = s.out.trim().split('\n')
    assert.doesNotMatch(s.out, /agent line|vite line|npm run preview/)
    assert.equal(lines.filter((l) => /^\s+agents… done in [\d.]+ s$/.test(l)).length, 1, s.out)
    assert.equal(lines.filter((l) => /^\s+app… done in [\d.]+ s$/.test(l)).length, 1, s.out)
    assert.equal(lines.filter((l) => /^\s+compress… done in [\d.]+ s$/.test(l)).length, 1, s.out)
    assert.ok(
      lines.some((l) => /^Starting the relay/.test(l)),
      s.out
    )
    assert.equal(lines.at(-1), 'ZeroState is running at http://127.0.0.1:1/')
    assert.ok(lines.length <= 7, s.out)
  })

  it('a failing phase shows its full log and exits non-zero', { timeout: LIMIT }, async () => {
    const s = run(process.execPath, ['scripts/start.mjs'], { cwd: scratchProject({ appFails: true }) })
    const { code } = await s.exited
    assert.equal(code, 3)
    assert.match(s.out, /vite line 49/)
    assert.match(s.out, /vite exploded/)
    assert.match(s.out, /app failed/)
    assert.doesNotMatch(s.out, /ZeroState is running/)
  })

  it('--verbose shows the build log as it comes', { timeout: LIMIT }, async () => {
    const dir = scratchProject()
    const s = run(process.execPath, ['scripts/start.mjs', '--verbose'], { cwd: dir })
    await s.ready
    s.child.kill('SIGTERM')
    await s.exited
    assert.match(s.out, /agent line 29/)
    assert.match(s.out, /vite line 49/)
    assert.ok(existsSync(join(dir, 'build/index.html')))
  })
})
