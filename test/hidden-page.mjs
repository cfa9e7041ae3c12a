// A peer whose tab can really be hidden and frozen, for test/hidden-tabs.test.mjs and
// bench/hidden-tabs.mjs (issue 16).
//
// What works with Debian's Chromium 150 headless and playwright-core (checked by hand, then by
// the tests): Playwright turns focus emulation on for every page it creates, and Chromium keeps a
// page with focus emulation visible whatever happens to its tab (a new tab in front, a minimised
// window, bringToFront: document.visibilityState stays 'visible', timers unthrottled). A Chromium
// started here with --remote-debugging-port and joined with connectOverCDP({ noDefaults: true })
// leaves its default profile's pages alone: opening a second tab in the same window then hides the
// first for real ('visibilitychange', a 100 ms interval fires every ~1,000 ms, a worker's interval
// keeps its period), and CDP Page.setWebLifecycleState { state: 'frozen' } on the hidden page
// freezes it ('freeze' fires, then no timer, worker or network task runs until 'active').
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { CHROMIUM, CHROMIUM_ARGS, waitForApi } from './harness.mjs'
import { slowEcho } from './fixtures/runtime-wat.mjs'

/**
 * Open the app at `url` in a Chromium of its own (one profile) whose tab can be hidden and frozen.
 * `allowance` as startMesh's (a large spending allowance unless null).
 */
export async function openHideablePeer(url, { allowance = 1e6 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'zs-hideable-'))
  const child = spawn(CHROMIUM, [...CHROMIUM_ARGS, '--remote-debugging-port=0', `--user-data-dir=${dir}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe']
  })
  // A script that fails before close() must not leave this Chromium behind.
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  child.once('exit', () => process.off('exit', killOnExit))
  let err = ''
  const ws = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Chromium did not open its DevTools port in 60 s:\n${err}`)), 60_000)
    child.stderr.on('data', (d) => {
      err += d
      const m = /DevTools listening on (ws:\S+)/.exec(err)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
    child.once('exit', (code) => reject(new Error(`Chromium exited with ${code}:\n${err}`)))
  })
  const browser = await chromium.connectOverCDP(ws, { noDefaults: true })
  const ctx = browser.contexts()[0]
  if (allowance != null)
    await ctx.addInitScript((a) => {
      if (localStorage.getItem('zerostate:spending') == null) localStorage.setItem('zerostate:spending', JSON.stringify({ allowance: a }))
    }, allowance)
  const page = ctx.pages()[0] ?? (await ctx.newPage())
  page.on('pageerror', (e) => {
    page.__errors = [...(page.__errors ?? []), e]
  })
  await page.goto(url)
  await waitForApi(page)
  const cdp = await ctx.newCDPSession(page)
  let cover
  return {
    page,
    /** Put another tab in front of it (a real background tab); resolves once the page says it is hidden. */
    async hide() {
      cover = await ctx.newPage()
      await page.waitForFunction(() => document.visibilityState === 'hidden', null, { timeout: 10_000, polling: 50 })
    },
    /** Bring it back to the front. */
    async show() {
      await page.bringToFront()
      await cover?.close()
      cover = undefined
      await page.waitForFunction(() => document.visibilityState === 'visible', null, { timeout: 10_000, polling: 50 })
    },
    /** Freeze it as the browser does (hide it first: Chromium freezes only hidden pages). */
    /**
     * Freeze it as the browser does (hide it first: Chromium freezes only hidden pages). Resolves with the
     * time (Date.now()) its 'freeze' event fired. Chromium sometimes lets the request pass without freezing
     * the page (seen 2 times in ~10 here, no error returned): it is asked again, up to 3 times.
     */
    async freeze() {
      await page.evaluate(() => {
        window.__zsFrozenAt = undefined
        document.addEventListener('freeze', () => (window.__zsFrozenAt = Date.now()), { once: true })
      })
      for (let i = 0; i < 3; i++) {
        await cdp.send('Page.setWebLifecycleState', { state: 'frozen' })
        // DevTools' evaluate still runs in a frozen page: it can read what the 'freeze' listener wrote.
        for (let j = 0; j < 20; j++) {
          const at = await page.evaluate(() => window.__zsFrozenAt)
          if (at != null) return at
          await new Promise((r) => setTimeout(r, 100))
        }
      }
      throw new Error('Chromium did not freeze the hidden page (3 requests)')
    },
    resume: () => cdp.send('Page.setWebLifecycleState', { state: 'active' }),
    /**
     * Stop the page's script without warning (the debugger pauses it at its next statement): a donor that
     * hangs, or is frozen with no 'freeze' event, as the submitter sees it. `unpause()` lets it go on.
     */
    async pause() {
      await cdp.send('Debugger.enable')
      await cdp.send('Debugger.pause')
    },
    async unpause() {
      await cdp.send('Debugger.resume').catch(() => {})
      await cdp.send('Debugger.disable')
    },
    /** The longest gap between the ticks of a 100 ms interval on the page, and in a worker, over `ms`. */
    async timerGaps(ms = 2500) {
      return await page.evaluate(async (ms) => {
        let last = performance.now()
        let pageMax = 0
        const t = setInterval(() => {
          const now = performance.now()
          pageMax = Math.max(pageMax, now - last)
          last = now
        }, 100)
        const src = 'let l=performance.now(),m=0;setInterval(()=>{const n=performance.now();m=Math.max(m,n-l);l=n;postMessage(m)},100)'
        const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })))
        // The page's own clock is throttled: the worker's ticks say when the time is up.
        const start = performance.now()
        const workerMax = await new Promise((resolve) => {
          w.onmessage = (e) => {
            if (performance.now() - start >= ms) resolve(e.data)
          }
        })
        clearInterval(t)
        w.terminate()
        return { page: Math.round(pageMax), worker: Math.round(workerMax) }
      }, ms)
    },
    async close() {
      await browser.close().catch(() => {})
      if (child.exitCode == null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGKILL')
        await exited
      }
      // Chromium's helper processes may still be writing the profile for a moment after it exits: best effort.
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 })
      } catch {}
    }
  }
}

/** Publish the slow agent (named `name`) from `page`; resolves with its id. */
export async function publishSlow(page, outer, name = 'slow-echo') {
  return await page.evaluate(
    async ([bytes, name]) =>
      (
        await window.zerostate.agents.publish({
          manifest: { name, version: '1.0.0', description: 'loops a while, then echoes', capabilities: ['slow-echo'], abi: 'json-v1', price: 0 },
          wasm: new Uint8Array(bytes)
        })
      ).id,
    [[...slowEcho(outer)], name]
  )
}

/** Submit the slow agent from `page`; its step events (with Date.now()) collect in window.__hidden[input]. */
export async function submitSlow(page, agentId, input) {
  await page.evaluate(
    ({ agentId, input }) => {
      window.__hidden ??= {}
      const rec = { events: [], result: undefined, error: undefined }
      window.__hidden[input] = rec
      const h = window.zerostate.submit({
        description: 'echo slowly',
        input,
        agent: agentId,
        preferences: { retry_policy: { max_attempts: 3, backoff_ms: 50 } }
      })
      h.on('step', (e) => rec.events.push({ status: e.status, peer: e.peer, attempt: e.attempt, error: e.error, at: Date.now() }))
      h.done.then(
        (r) => {
          rec.result = { output: r.output, peers: r.steps.map((s) => s.peer), at: Date.now() }
        },
        (err) => {
          rec.error = String(err?.message ?? err)
        }
      )
    },
    { agentId, input }
  )
}

/** Wait until `input`'s task on `page` has a step event with `match`'s fields (e.g. { status: 'accepted', peer }); resolves with it. */
export async function eventOf(page, input, match, timeout = 60_000) {
  const h = await page
    .waitForFunction(
      ({ input, match }) => {
        const rec = window.__hidden?.[input]
        if (rec?.error != null) throw new Error(rec.error)
        return rec?.events.find((e) => Object.entries(match).every(([k, v]) => e[k] === v)) ?? false
      },
      { input, match },
      { timeout, polling: 50 }
    )
    .catch(async (err) => {
      // Say what did happen: the task's events so far.
      const seen = await page.evaluate((input) => window.__hidden?.[input]?.events ?? [], input).catch(() => [])
      throw new Error(`${err.message}\nno ${JSON.stringify(match)} event for ${JSON.stringify(input)}; its events: ${JSON.stringify(seen)}`)
    })
  return await h.jsonValue()
}

/** Wait for `input`'s task on `page` to finish; resolves with its result. */
export async function resultOf(page, input, timeout = 120_000) {
  const h = await page.waitForFunction(
    (input) => {
      const rec = window.__hidden?.[input]
      if (rec?.error != null) throw new Error(rec.error)
      return rec?.result ?? false
    },
    input,
    { timeout, polling: 100 }
  )
  return await h.jsonValue()
}
