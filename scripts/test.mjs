// `npm test`: make sure Chromium is there, build, run the unit tests (Vitest) and
// the multi-peer browser tests (node:test + playwright-core + real relay).
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureCToolchain } from '../agents/c-toolchain.mjs'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: 'inherit', ...opts })

if (!existsSync(CHROMIUM)) {
  if (process.getuid?.() === 0) {
    console.log("Chromium is missing: installing Debian's chromium package…")
    const q = { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }
    if (run('apt-get', ['update', '-qq'], q).status !== 0 || run('apt-get', ['install', '-y', '-qq', 'chromium'], q).status !== 0) {
      console.error('Installing chromium with apt-get failed; install it by hand: apt-get install -y chromium')
      process.exit(1)
    }
  } else {
    console.error(`The browser tests need Debian's Chromium at ${CHROMIUM}. Run as root (npm test installs it) or: sudo apt-get install -y chromium`)
    process.exit(1)
  }
}

// The media agents are C compiled to WASI: clang, lld, wasi-libc and stb from apt, installed here
// as root like Chromium (the build would also install them; failing here says so before the gate).
if (!ensureCToolchain()) process.exit(1)

// docs/agents.md's worked example is built in Rust too (src/cli/docs-examples.test.ts): Debian's rustc
// with its wasm32 standard library (rustup here has no wasm32 target and no network to fetch one).
const RUST_WASI = ['rustc', 'cargo', 'libstd-rust-dev-wasm32']
if (process.getuid?.() === 0 && run('dpkg', ['-s', 'libstd-rust-dev-wasm32'], { stdio: 'ignore' }).status !== 0) {
  console.log(`Installing the Rust WASI toolchain for the agent docs' example: ${RUST_WASI.join(' ')}…`)
  const q = { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }
  if (run('apt-get', ['install', '-y', '-qq', ...RUST_WASI], q).status !== 0) {
    run('apt-get', ['update', '-qq'], q)
    if (run('apt-get', ['install', '-y', '-qq', ...RUST_WASI], q).status !== 0) console.log('…it did not install: the Rust example is skipped, saying why')
  }
}

// The gate, before the build: layers and cycles, lint and format, types everywhere, Svelte.
for (const [script, what] of [
  ['check:deps', 'dependency check'],
  ['lint', 'lint (Biome; `npm run format` fixes formatting)'],
  ['check:types', 'type check (tsc)'],
  ['check', 'svelte-check']
]) {
  if (run('npm', ['run', script, '--silent']).status !== 0) {
    console.error(`${what} failed`)
    process.exit(1)
  }
}
if (run('npm', ['run', 'build', '--silent']).status !== 0) {
  console.error('build failed')
  process.exit(1)
}

const out = mkdtempSync(join(tmpdir(), 'zs-test-'))
const unitJson = join(out, 'vitest.json')
const unit = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile=${unitJson}`])

// Every browser suite under test/ (test/hostile/ included), in a stable order.
const files = readdirSync('test', { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.mjs'))
  .sort()
  .map((f) => join('test', f))
// The spec reporter to the terminal, read as it goes for the summary (a TAP file written
// beside it lost its summary when --test-force-exit ended the run before the file was flushed).
const e2e = await new Promise((resolve) => {
  const child = spawn(
    process.execPath,
    [
      '--test',
      '--test-concurrency=1',
      // A file whose tests are done exits even if a handle lingers (a hostile peer's socket, a
      // timer), and no single test may hang the suite: CI has 90 minutes.
      '--test-force-exit',
      '--test-timeout=600000',
      '--test-reporter=spec',
      ...files
    ],
    { stdio: ['inherit', 'pipe', 'inherit'] }
  )
  let text = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk)
    text += chunk
  })
  child.on('close', (code) => resolve({ status: code, text }))
})

let passed = 0
let failed = 0
try {
  const r = JSON.parse(readFileSync(unitJson, 'utf8'))
  passed += r.numPassedTests
  failed += r.numFailedTests
} catch {
  failed += 1
}
const count = (what) => Number(new RegExp(`^ℹ ${what} (\\d+)`, 'm').exec(e2e.text)?.[1] ?? Number.NaN)
if (Number.isNaN(count('pass'))) failed += 1
else {
  passed += count('pass')
  failed += count('fail') + count('cancelled')
}
if (unit.status !== 0 && failed === 0) failed = 1
if (e2e.status !== 0 && failed === 0) failed = 1
console.log(`\nunit: vitest exit ${unit.status}, browser: node --test exit ${e2e.status}`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
