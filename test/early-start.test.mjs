// Issue 11 (a new tab joins within 3 s): the mesh starts from a small early chunk, not after the
// whole app's code has downloaded and run. Checked on the real build: the modules the page must
// load before SvelteKit's init hook runs hold the mesh and none of memory, runtime or orchestrator
// (known by their errors' names, which the build keeps: errors carry literal names), and in a real
// tab the mesh start is called before the chunks holding those rooms are even requested.
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import { ensureBuilt, launchBrowser, startMesh, startRelay, waitForApi, waitForFullMesh } from './harness.mjs'

const ROOT = new URL('..', import.meta.url).pathname
const LIMIT = 180_000

/** Every `readonly name = '…'` of the non-test sources under `dir`: the room's error names. */
function errorNames(dir) {
  const names = new Set()
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (/\.ts$/.test(e.name) && !/\.test\.ts$|test-fixtures|conformance/.test(e.name)) {
        for (const m of readFileSync(p, 'utf8').matchAll(/readonly name(?:: string)? = '(\w+)'/g)) names.add(m[1])
      }
    }
  }
  walk(join(ROOT, dir))
  return names
}

/** Whether the chunk's text holds `name` as a string literal (minified: any quote). */
const holdsName = (text, name) => new RegExp(`["'\`]${name}["'\`]`).test(text)

/**
 * The built app as a tab meets it: the chunks the page's bootstrap script imports and their static
 * imports (all of it loads and runs before SvelteKit calls the init hook that starts the mesh), and
 * every other chunk, each with its text.
 */
function builtApp() {
  ensureBuilt()
  const manifest = JSON.parse(readFileSync(join(ROOT, '.svelte-kit/output/client/.vite/manifest.json'), 'utf8'))
  const html = readFileSync(join(ROOT, 'build/index.html'), 'utf8')
  const roots = [...html.matchAll(/import\("\/(_app\/[^"]+\.js)"\)/g)].map((m) => m[1])
  assert.ok(roots.length >= 2, `the page's bootstrap imports SvelteKit's start and app entries (found ${roots.join(', ')})`)
  const byFile = new Map(Object.values(manifest).map((e) => [e.file, e]))
  const startup = new Set()
  const todo = [...roots]
  while (todo.length > 0) {
    const file = todo.pop()
    if (startup.has(file)) continue
    startup.add(file)
    const entry = byFile.get(file)
    assert.ok(entry != null, `${file} is in the build's manifest`)
    for (const key of entry.imports ?? []) todo.push(manifest[key].file)
  }
  const text = (file) => readFileSync(join(ROOT, 'build', file), 'utf8')
  const others = [...byFile.keys()].filter((f) => f.endsWith('.js') && !startup.has(f))
  /** A route file's node (SvelteKit's generated module that exports it) and its static imports: what loads and runs when the router renders it. */
  const closure = (src) => {
    const dir = '.svelte-kit/generated/client-optimized/nodes'
    const node = readdirSync(join(ROOT, dir))
      .map((f) => `${dir}/${f}`)
      .find((f) => readFileSync(join(ROOT, f), 'utf8').includes(`/${src}"`))
    assert.ok(node != null && manifest[node] != null, `${src} has a node in the build's manifest`)
    const seen = new Set()
    const queue = [node]
    while (queue.length > 0) {
      const key = queue.pop()
      if (seen.has(key)) continue
      seen.add(key)
      queue.push(...(manifest[key].imports ?? []))
    }
    return [...seen].map((key) => ({ file: manifest[key].file, text: text(manifest[key].file) }))
  }
  return { startup: [...startup].map((file) => ({ file, text: text(file) })), others: others.map((file) => ({ file, text: text(file) })), closure }
}

/** Names of the rooms a join does not need: if one shows up in the startup chunks, the early chunk grew back. */
const LATE_ROOMS = ['src/lib/memory', 'src/lib/runtime', 'src/lib/orchestrator']

describe('early start (issue 11: join time)', () => {
  let app
  let late
  before(() => {
    app = builtApp()
    late = new Map(LATE_ROOMS.map((room) => [room, errorNames(room)]))
    for (const [room, names] of late) assert.ok(names.size >= 3, `${room} names its errors (found ${names.size})`)
    // A name a late room shares with the mesh or core (or libp2p's own errors) says nothing: leave it out.
    const early = new Set([...errorNames('src/lib/mesh'), ...errorNames('src/lib/core')])
    for (const names of late.values()) for (const n of names) if (early.has(n)) names.delete(n)
  })

  it('the chunks loaded before the init hook hold the mesh and none of memory, runtime or orchestrator', () => {
    const startupText = app.startup.map((c) => c.text).join('\n')
    // The mesh is there (so the names are a fair marker: they survive the build).
    const mesh = [...errorNames('src/lib/mesh')]
    assert.ok(
      mesh.every((n) => holdsName(startupText, n)),
      `every mesh error is in the startup chunks (missing: ${mesh.filter((n) => !holdsName(startupText, n)).join(', ')})`
    )
    for (const [room, names] of late) {
      const found = [...names].filter((n) => holdsName(startupText, n))
      assert.deepEqual(found, [], `${room} is not in the chunks loaded before the mesh starts (${app.startup.map((c) => c.file).join(', ')})`)
      // …and it is in the build, in a chunk loaded later.
      const later = [...names].filter((n) => app.others.some((c) => holdsName(c.text, n)))
      assert.ok(later.length > 0, `${room} is in a chunk of its own`)
    }
  })

  it('the home page and the layout (where a new user lands) load none of memory, runtime or orchestrator with them', () => {
    for (const src of ['src/routes/+page.svelte', 'src/routes/+layout.svelte']) {
      const chunks = app.closure(src)
      const text = chunks.map((c) => c.text).join('\n')
      for (const [room, names] of late) {
        const found = [...names].filter((n) => holdsName(text, n))
        assert.deepEqual(found, [], `${src} loads ${room} with it (${chunks.map((c) => c.file).join(', ')})`)
      }
    }
  })

  it('calls the mesh start before it requests the chunks of memory, runtime and orchestrator', { timeout: LIMIT }, async () => {
    const lateChunks = app.others.filter((c) => [...late.values()].some((names) => [...names].some((n) => holdsName(c.text, n)))).map((c) => c.file)
    assert.ok(lateChunks.length > 0)
    const relay = await startRelay()
    const browser = await launchBrowser()
    try {
      const ctx = await browser.newContext()
      const page = await ctx.newPage()
      await page.goto(new URL('/', relay.url).href)
      await waitForApi(page, 60_000)
      const seen = await page.evaluate(
        (files) => ({
          startCalled: window.zerostate.mesh.timings().milestones.startCalled,
          chunks: performance
            .getEntriesByType('resource')
            .filter((e) => files.some((f) => new URL(e.name).pathname === `/${f}`))
            .map((e) => ({ file: new URL(e.name).pathname, startTime: e.startTime }))
        }),
        lateChunks
      )
      assert.equal(typeof seen.startCalled, 'number', 'the mesh start milestone is recorded')
      // The app ran, so it loaded the late rooms' code: each such request began after the mesh start.
      assert.ok(seen.chunks.length > 0, `the tab loaded the late chunks (${lateChunks.join(', ')})`)
      for (const c of seen.chunks)
        assert.ok(c.startTime >= seen.startCalled, `${c.file} requested at ${Math.round(c.startTime)} ms, the mesh start at ${Math.round(seen.startCalled)} ms`)
    } finally {
      await browser.close().catch(() => {})
      await relay.kill()
    }
  })

  it('starts the rest of the app, then the service worker, only once the new tab is linked to the peers the relay named', {
    timeout: LIMIT
  }, async () => {
    const mesh = await startMesh()
    try {
      const members = [await mesh.newPeer(), await mesh.newPeer()]
      const ids = await waitForFullMesh(members, 60_000)
      // When the page asks for its service worker (its install precaches the whole app: chunks, agents).
      const context = await mesh.newContext()
      await context.addInitScript(() => {
        const sw = navigator.serviceWorker
        if (sw == null) return
        const register = sw.register.bind(sw)
        sw.register = (...args) => {
          window.__swRegisterAt ??= performance.now()
          return register(...args)
        }
      })
      const page = await mesh.newPeer({ context })
      await waitForFullMesh([page, ...members], 60_000)
      await page.waitForFunction(() => window.__swRegisterAt != null, null, { timeout: 30_000 })
      const seen = await page.evaluate((peers) => {
        const t = window.zerostate.mesh.timings()
        return {
          appStart: performance.getEntriesByName('zerostate:app-start')[0]?.startTime,
          appReady: performance.getEntriesByName('zerostate:app-ready')[0]?.startTime,
          startCalled: t.milestones.startCalled,
          links: peers.map((id) => t.peers.find((p) => p.peerId === id)?.directAt),
          sw: window.__swRegisterAt
        }
      }, ids)
      assert.equal(typeof seen.appStart, 'number', 'the app start is marked')
      assert.ok(
        seen.links.every((at) => typeof at === 'number'),
        `the new tab's links are timed (${seen.links.join(', ')})`
      )
      // Without the gate the app started ~0.3-0.6 s after the mesh, while the tab was still dialling.
      const lastLink = Math.max(...seen.links)
      const links = `the links opened at ${seen.links.map(Math.round).join(' and ')} ms`
      assert.ok(seen.appStart >= lastLink || seen.appStart - seen.startCalled >= 2_500, `the app started at ${Math.round(seen.appStart)} ms, ${links}`)
      // The service worker (its install precaches the whole app: chunks, agents) registers once the app is up.
      assert.ok(seen.sw >= seen.appReady, `the service worker registered at ${Math.round(seen.sw)} ms, the app was ready at ${Math.round(seen.appReady)} ms`)
    } finally {
      await mesh.stop()
    }
  })
})
