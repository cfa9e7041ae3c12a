// `npm start`: build the app if it is missing or older than its sources, then run the relay + app server.
//
//   --build      build even if the build looks current
//   --no-build   never build (fails if there is no build)
//   --verbose    show the full output of the build steps (otherwise shown only when a step fails)
// Every other argument goes to relay/index.ts (--host, --port, --ws-port, …; see there). A local
// two-relay setup: `npm run relay -- --port 8081 --ws-port 9091 --data .data/relay2`, then
// `npm start -- --relay /ip4/127.0.0.1/tcp/9091/ws/p2p/<its peer id>` (listed for the tabs and peered with).
//
// SIGINT (Ctrl-C) and SIGTERM (`kill <pid>`) stop everything this started. The relay also stops by
// itself when this process dies (its IPC channel closes), and under `npm start` this process stops
// when npm does (npm does not pass SIGTERM on to its script).
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const OWN_FLAGS = new Set(['--build', '--no-build', '--verbose'])
const argv = process.argv.slice(2)
const verbose = argv.includes('--verbose')
const relayArgs = argv.filter((a) => !OWN_FLAGS.has(a))

/** Children that must not outlive this process. */
const children = new Set()
let stopping = false

function newest(dir) {
  let t = 0
  if (!existsSync(dir)) return t
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}

function needsBuild() {
  if (argv.includes('--build')) return true
  if (argv.includes('--no-build')) return false
  const built = existsSync('build/index.html') ? statSync('build/index.html').mtimeMs : 0
  const sources = Math.max(newest('src'), newest('agents'), newest('static'), statSync('package.json').mtimeMs)
  return built < sources
}

/** Vite's command-line entry (its package exports do not include the bin file). */
function viteBin() {
  const pkg = createRequire(import.meta.url).resolve('vite/package.json')
  return join(dirname(pkg), createRequire(import.meta.url)('vite/package.json').bin.vite)
}

function seconds(t0) {
  const s = (performance.now() - t0) / 1000
  return s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`
}

/**
 * Run one build phase: print one line for it; its own output is kept and shown only if it fails
 * (or as it comes with --verbose). Resolves on success, exits the process on failure.
 */
function phase(title, args) {
  const t0 = performance.now()
  process.stdout.write(`${title}…${verbose ? '\n' : ''}`)
  const child = spawn(process.execPath, args, { stdio: verbose ? 'inherit' : ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  const log = []
  child.stdout?.on('data', (d) => log.push(d))
  child.stderr?.on('data', (d) => log.push(d))
  return /** @type {Promise<void>} */ (
    new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        children.delete(child)
        if (stopping) return
        if (code === 0) {
          process.stdout.write(verbose ? `${title}: done in ${seconds(t0)}\n` : ` done in ${seconds(t0)}\n`)
          resolve()
          return
        }
        if (!verbose) process.stdout.write(' failed\n')
        process.stderr.write(Buffer.concat(log))
        console.error(`\n${title} failed (${signal ?? `exit code ${code}`}); its output is above.`)
        process.exit(code || 1)
      })
    })
  )
}

function stop(signal) {
  if (stopping) return
  stopping = true
  if (children.size === 0) process.exit(0)
  for (const c of children) c.kill(signal)
  // A child that ignores the signal gets killed; nothing may be left running.
  setTimeout(() => {
    for (const c of children) c.kill('SIGKILL')
  }, 5000).unref()
  let left = children.size
  for (const c of children)
    c.once('exit', () => {
      if (--left === 0) process.exit(0)
    })
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
  process.on(sig, () => {
    stop(sig === 'SIGHUP' ? 'SIGTERM' : sig)
  })

// Under `npm start`, `kill <npm's pid>` ends npm and the shell it started this from, but does not
// signal this process: stop when that parent is gone.
if (process.env.npm_lifecycle_event != null) {
  const parent = process.ppid
  setInterval(() => {
    try {
      process.kill(parent, 0)
    } catch {
      stop('SIGTERM')
    }
  }, 500).unref()
}

if (needsBuild()) {
  console.log('Building ZeroState (first start, or its sources changed); --verbose shows the full build log.')
  // The steps of `npm run build`, run directly so that a signal reaches them.
  await phase('  agents', ['agents/build.mjs'])
  await phase('  app', [viteBin(), 'build'])
  await phase('  compress', ['scripts/precompress.mjs'])
}
if (!stopping) {
  console.log('Starting the relay and the app server…')
  const relay = spawn(process.execPath, ['--import', 'tsx', 'relay/index.ts', ...relayArgs], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] })
  children.add(relay)
  relay.on('exit', (code, signal) => {
    children.delete(relay)
    if (!stopping) process.exit(code ?? (signal != null ? 1 : 0))
  })
}
