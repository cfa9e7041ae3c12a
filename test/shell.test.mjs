// The app shell as a new user meets it, in real Chromium against the real relay: installable as a
// PWA (Chromium's own installability check), no sideways scrolling on a phone, and axe-core finds
// no accessibility violations on any page.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chromium } from 'playwright-core'
import { CHROMIUM, CHROMIUM_ARGS, launchBrowser, startRelay, waitForApi } from './harness.mjs'

/** No test may hang the suite (a stuck browser call fails it instead). */
const LIMIT = 180_000
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js')
const AXE_SOURCE = readFileSync(AXE, 'utf8')
const PHONE = { width: 390, height: 844 }
const PAGES = ['/', '/agents', '/registry', '/memory', '/submit', '/workflows', '/tasks', '/credits', '/dashboard', '/settings', '/audit', '/logs']

let relay
before(async () => {
  relay = await startRelay()
})
after(async () => {
  await relay?.kill()
})

/** Run the bundled approval example from the Workflows page; its task page waits for the approval (a map-reduce step selected too). */
async function openWaitingWorkflow(page) {
  await page.goto(new URL('/workflows', relay.url).href)
  await waitForApi(page)
  await page.waitForSelector('[data-testid="workflow-dag"]', { timeout: 30_000 })
  await page.click('[data-testid="workflow-example"][data-name="review-before-publish"] [data-testid="workflow-example-run"]')
  await page.waitForURL(/\/tasks\/wf-/)
  await page.waitForSelector('[data-testid="approval-approve"]', { timeout: 30_000 })
  await page.click('[data-testid="workflow-node"][data-step="draft"]')
  await page.waitForSelector('[data-testid="workflow-step-detail"]')
}

/** Submit a task through the form and wait until its page shows the result. */
async function runTaskFromForm(page) {
  await page.goto(new URL('/submit', relay.url).href)
  await waitForApi(page)
  await page.fill('[data-testid="submit-description"]', 'word statistics')
  await page.selectOption('[data-testid="submit-agent"]', { label: 'word-stats 1.0.0 (bundled)' })
  // Long enough that the result box scrolls, which is what the keyboard must be able to reach.
  await page.fill('[data-testid="submit-input"]', Array.from({ length: 400 }, (_, i) => `word${i}`).join(' '))
  await page.click('[data-testid="submit-button"]')
  await page.waitForURL(/\/tasks\//)
  await page.waitForSelector('[data-testid="task-result"]', { timeout: 30_000 })
  await page.click('[data-testid="dag-node"]')
  await page.waitForSelector('[data-testid="step-detail"]')
}

describe('installable app', () => {
  it('has no installability errors in Chromium, with the service worker controlling the page', { timeout: LIMIT }, async () => {
    // Installability is not checked for incognito (non-persistent) contexts: use a real profile.
    const dir = mkdtempSync(join(tmpdir(), 'zs-profile-'))
    const ctx = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS })
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage())
      await page.goto(relay.url)
      await waitForApi(page)
      await page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: 20_000 })
      assert.equal(await page.evaluate(() => document.querySelector('link[rel="manifest"]')?.getAttribute('href')), '/manifest.webmanifest')
      const cdp = await ctx.newCDPSession(page)
      const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors')
      assert.deepEqual(installabilityErrors, [])
      const { url, errors, data } = await cdp.send('Page.getAppManifest')
      assert.equal(new URL(url).pathname, '/manifest.webmanifest')
      assert.deepEqual(errors, [])
      const manifest = JSON.parse(data)
      assert.equal(manifest.start_url, '/')
      assert.equal(manifest.scope, '/')
      for (const size of ['192x192', '512x512']) {
        const icon = manifest.icons.find((i) => i.sizes === size && (i.purpose ?? 'any').includes('any'))
        assert.ok(icon, `an "any" icon of ${size}`)
        const res = await page.request.get(new URL(icon.src, relay.url).href)
        assert.equal(res.headers()['content-type'], 'image/png')
        const png = await res.body()
        assert.equal(`${png.readUInt32BE(16)}x${png.readUInt32BE(20)}`, size, `${icon.src} is really ${size}`)
      }
      // Chromium itself offers to install it (beforeinstallprompt) on the next visit: the header shows the button.
      await page.reload()
      await waitForApi(page)
      await page.getByRole('button', { name: 'Install app' }).waitFor({ timeout: 20_000 })
    } finally {
      await ctx.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('offers an Install button only once the browser allows installing, and prompts from it', { timeout: LIMIT }, async () => {
    const browser = await launchBrowser()
    try {
      const page = await (await browser.newContext()).newPage()
      await page.goto(relay.url)
      await waitForApi(page)
      const button = page.getByRole('button', { name: 'Install app' })
      assert.equal(await button.count(), 0, 'no Install button before the browser offers it')
      // What Chromium fires when the app is installable; prompt() records that it was called.
      await page.evaluate(() => {
        const e = new Event('beforeinstallprompt', { cancelable: true })
        e.prompt = async () => {
          window.__prompted = true
          return { outcome: 'accepted' }
        }
        e.userChoice = Promise.resolve({ outcome: 'accepted', platform: 'web' })
        window.dispatchEvent(e)
      })
      await button.click()
      assert.equal(await page.evaluate(() => window.__prompted), true)
      // Installed: the button goes away.
      await page.evaluate(() => window.dispatchEvent(new Event('appinstalled')))
      await button.waitFor({ state: 'detached' })
    } finally {
      await browser.close()
    }
  })
})

describe('phone-sized screen', () => {
  it('no page scrolls sideways at 390×844', { timeout: LIMIT }, async () => {
    const browser = await launchBrowser()
    try {
      const ctx = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 3 })
      const page = await ctx.newPage()
      const wide = []
      const measure = async (path) => {
        // Not innerWidth: on a mobile viewport Chromium zooms out to fit wide content, and innerWidth grows with it.
        const m = await page.evaluate((vw) => {
          const culprits = [...document.querySelectorAll('body *')]
            .filter((el) => el.getBoundingClientRect().right > vw + 0.5)
            .slice(0, 5)
            .map((el) => `${el.tagName.toLowerCase()}${el.className && typeof el.className === 'string' ? `.${el.className.split(' ')[0]}` : ''}`)
          return { scroll: document.documentElement.scrollWidth, vw, culprits }
        }, PHONE.width)
        if (m.scroll > m.vw) wide.push(`${path}: ${m.scroll}px > ${m.vw}px (${m.culprits.join(', ')})`)
      }
      for (const path of PAGES) {
        await page.goto(new URL(path, relay.url).href)
        await waitForApi(page)
        await page.waitForSelector('main h1')
        await measure(path)
      }
      await runTaskFromForm(page)
      await measure('/tasks/…')
      // Submit again, now with a row in Recent tasks (its screen-reader header once widened the page to 907 px).
      await page.goto(new URL('/submit', relay.url).href)
      await waitForApi(page)
      await page.waitForSelector('[data-testid="task-row"]', { timeout: 10_000 })
      await measure('/submit (with a recent task)')
      await openWaitingWorkflow(page)
      await measure('/tasks/wf-… (waiting for an approval)')
      assert.deepEqual(wide, [])
    } finally {
      await browser.close()
    }
  })
})

describe('accessibility', () => {
  it('axe-core finds no violations on any page, a finished task included', { timeout: LIMIT }, async () => {
    const browser = await launchBrowser()
    try {
      const page = await (await browser.newContext()).newPage()
      const found = []
      const audit = async (path) => {
        // Evaluated over the DevTools protocol: the page's CSP refuses an injected <script>, as it should.
        await page.evaluate(AXE_SOURCE)
        const violations = await page.evaluate(async () => {
          // label-content-name-mismatch is off by default (experimental): the issue found it, so keep it on.
          const r = await window.axe.run(document, { rules: { 'label-content-name-mismatch': { enabled: true } } })
          return r.violations.map((v) => `${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(' | ')}`)
        })
        for (const v of violations) found.push(`${path} ${v}`)
      }
      for (const path of PAGES) {
        await page.goto(new URL(path, relay.url).href)
        await waitForApi(page)
        await page.waitForSelector('main h1')
        await audit(path)
      }
      await runTaskFromForm(page)
      await audit('/tasks/…')
      await openWaitingWorkflow(page)
      await audit('/tasks/wf-… (waiting for an approval)')
      // At a phone's width too: what fits at 1280 px scrolls sideways at 390 (the Workflows page's graph did,
      // and a region that scrolls must be reachable from the keyboard).
      await page.setViewportSize(PHONE)
      for (const path of PAGES) {
        await page.goto(new URL(path, relay.url).href)
        await waitForApi(page)
        await page.waitForSelector('main h1')
        if (path === '/workflows') await page.waitForSelector('[data-testid="workflow-dag"]', { timeout: 30_000 })
        await audit(`${path} at 390 px`)
      }
      assert.deepEqual(found, [])
      // The skip link is the first thing Tab reaches, and it moves focus to the main content.
      await page.goto(new URL('/registry', relay.url).href)
      await waitForApi(page)
      await page.keyboard.press('Tab')
      assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), 'Skip to content')
      await page.keyboard.press('Enter')
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'content')
    } finally {
      await browser.close()
    }
  })
})
