// Multi-peer test harness: a real relay (child process) serving the built app,
// Debian Chromium through playwright-core, one browser context per peer.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-features=WebRtcHideLocalIpsWithMdns'
]

const ROOT = new URL('..', import.meta.url).pathname

/** Build the app once if build/ is missing (npm test builds first; this is for running one file). */
export function ensureBuilt() {
  if (existsSync(join(ROOT, 'build/index.html'))) return
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' })
  if (r.status !== 0) throw new Error('npm run build failed')
}

/**
 * Start the relay + app server on free ports. Resolves with its URL once it prints
 * the ready line. `dataDir` keeps the relay key (same peer id across restarts); `args`
 * are more relay arguments (e.g. `['--peer', multiaddr]` for a second relay).
 */
export async function startRelay({ dataDir, port = 0, wsPort = 0, args = [] } = {}) {
  ensureBuilt()
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'zs-relay-'))
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'relay/index.ts', '--port', String(port), '--ws-port', String(wsPort), '--data', dir, '--quiet', ...args],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOST: '127.0.0.1' }
    }
  )
  let out = ''
  const url = await new Promise((resolve, reject) => {
    // tsx compiles the relay and the mesh on first start: 3-5 s on an idle machine, 26 s measured with 2 cores at load 16.
    const timer = setTimeout(() => reject(new Error(`relay did not start in 60 s:\n${out}`)), 60_000)
    const onData = (d) => {
      out += d
      const m = /ZeroState is running at (http:\/\/\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', (d) => {
      out += d
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`relay exited with ${code}:\n${out}`))
    })
  })
  const peerId = /peer id (\S+)/.exec(out)?.[1]
  const multiaddrs = /listening on (.+)/.exec(out)?.[1]?.trim().split(' ') ?? []
  return {
    url,
    peerId,
    /** Its libp2p multiaddrs (with /p2p/<peer id>). */
    multiaddrs,
    dataDir: dir,
    process: child,
    /** Kill it hard, like Ctrl-C on a crashed machine would not be. */
    async kill(signal = 'SIGKILL') {
      if (child.exitCode != null || child.signalCode != null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill(signal)
      await exited
    }
  }
}

/** Launch Chromium. */
export async function launchBrowser(extraArgs = []) {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: run npm test as root (it installs it) or apt-get install -y chromium`)
  return await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs] })
}

/**
 * Start a relay and a browser; `newPeer()` opens the app in a new context (its own
 * IndexedDB) and resolves once `window.zerostate.ready`. Pass `{ persistent: true }`
 * for a context whose profile survives reloads/reopen (a user data dir).
 */
export async function startMesh(opts = {}) {
  const relay = await startRelay(opts)
  const browser = await launchBrowser(opts.browserArgs)
  const contexts = new Set()
  const persistentDirs = []
  /**
   * Issue 12: a fresh profile may spend only a small allowance (10 credits) before it has
   * earned any. Tests of other features submit far more from tabs that never donate, so
   * their profiles start with a large allowance unless a test says otherwise
   * (`startMesh({ allowance: null })` keeps the app's default; `zerostate.setSpending()` in the page).
   */
  const allowance = opts.allowance === undefined ? 1e6 : opts.allowance
  async function prepare(ctx) {
    if (allowance == null) return
    await ctx.addInitScript((a) => {
      if (localStorage.getItem('zerostate:spending') == null) localStorage.setItem('zerostate:spending', JSON.stringify({ allowance: a }))
    }, allowance)
  }
  async function newPeer({ path = '/', waitReady = true, context } = {}) {
    const ctx = context ?? (await browser.newContext())
    if (context == null) await prepare(ctx)
    contexts.add(ctx)
    const page = await ctx.newPage()
    page.on('pageerror', (err) => {
      page.__errors = [...(page.__errors ?? []), err]
    })
    await page.goto(new URL(path, relay.url).href)
    if (waitReady) await waitForApi(page)
    return page
  }
  return {
    url: relay.url,
    relay,
    browser,
    newPeer,
    /** A context, for tests that open several pages of one profile. */
    async newContext() {
      const c = await browser.newContext()
      await prepare(c)
      contexts.add(c)
      return c
    },
    /** A persistent profile (own Chromium process) that survives closing and reopening. */
    async persistentProfile() {
      const dir = mkdtempSync(join(tmpdir(), 'zs-profile-'))
      persistentDirs.push(dir)
      const open = () => chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS })
      return { dir, open }
    },
    async stop() {
      await Promise.allSettled([...contexts].map((c) => c.close()))
      await browser.close().catch(() => {})
      await relay.kill()
      for (const d of persistentDirs) rmSync(d, { recursive: true, force: true })
    }
  }
}

/** Wait until the page's `window.zerostate.ready` resolved. */
export async function waitForApi(page, timeout = 30_000) {
  // Polled rather than one evaluate awaiting the promise: a CI run at load ~5 once failed that
  // evaluate with "Resulting promise was garbage collected" (not reproduced alone); polling reads
  // whichever window.zerostate the page holds and times out with a clear message instead.
  await page.waitForFunction(
    () => {
      const z = window.zerostate
      if (z == null) return false
      window.__zsReady ??= new WeakMap()
      if (!window.__zsReady.has(z)) {
        window.__zsReady.set(z, false)
        z.ready.then(() => window.__zsReady.set(z, true))
      }
      return window.__zsReady.get(z) === true
    },
    null,
    { timeout, polling: 50 }
  )
}

/** Resolve when every page has a direct WebRTC connection to every other page. */
export async function waitForFullMesh(pages, timeout = 30_000) {
  const ids = await Promise.all(pages.map((p) => p.evaluate(() => window.zerostate.peerId)))
  await Promise.all(
    pages.map((p, i) =>
      p.waitForFunction(
        (others) => {
          const peers = window.zerostate.peers()
          return others.every((id) => peers.some((x) => x.id === id && x.transport === 'webrtc'))
        },
        ids.filter((_, j) => j !== i),
        { timeout, polling: 50 }
      )
    )
  )
  return ids
}

/** Await a condition in Node, polling (for conditions spanning pages). */
export async function eventually(fn, { timeout = 10_000, interval = 50, message = 'condition' } = {}) {
  const end = Date.now() + timeout
  let last
  while (Date.now() < end) {
    try {
      if (await fn()) return
    } catch (err) {
      last = err
    }
    await new Promise((r) => setTimeout(r, interval))
  }
  throw new Error(`timed out waiting for ${message}${last ? `: ${last.message}` : ''}`)
}
