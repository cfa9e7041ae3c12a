/**
 * Real browser tabs in the simulated mesh (`npm run sim -- --tabs N`): the built app, served
 * by the relay's own app server (relay/server.ts) with the simulator's relay as its only
 * relay (the relay's WebSocket address), opened in N Chromium contexts (each its own
 * profile). The tabs join like any tab: WebSocket to the relay, then WebRTC links to each
 * other. A tab cannot open a direct link to a simulated peer (their links live in this
 * process), so gossip between tabs and simulated peers crosses the relay, and a tab's task
 * cannot run on a simulated donor (that needs a direct link; left for later). What the tabs
 * measure: probes delivered to them (they subscribe to the probe topic) and presence.
 */
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { startAppServer } from '../../relay/server.ts'
import { PROBE_TOPIC } from './mesh.ts'

/** The tabs of a run. */
export interface SimTabs {
  /** Their peer ids. */
  readonly ids: string[]
  /** [tab peer id, seq, arrival time (performance.timeOrigin + now(), the page's clock)] of every probe of `seqs` a tab holds. */
  arrivals(seqs: number[]): Promise<Array<[string, number, number]>>
  /** Tabs (of all) that do not hold the presence of every id of `ids`. */
  lacking(ids: string[]): Promise<string[]>
  stop(): Promise<void>
}

declare global {
  interface Window {
    /** Probe seq → arrival time, kept by the page (openTabs). */
    __simProbes?: Map<number, number>
  }
}

/** Open `n` tabs of the built app (`root`/build) that join through `relayWs`; `launch` starts Chromium (test/harness.mjs's launchBrowser). */
export async function openTabs(n: number, relayWs: string, launch: () => Promise<Browser>, root = process.cwd()): Promise<SimTabs> {
  const app = await startAppServer({ host: '127.0.0.1', port: 0, root: join(root, 'build'), relays: () => [relayWs] })
  const browser = await launch()
  const contexts: BrowserContext[] = []
  const pages: Page[] = []
  const ids: string[] = []
  try {
    for (let i = 0; i < n; i++) {
      const ctx = await browser.newContext()
      contexts.push(ctx)
      // A large allowance, as test/harness.mjs gives tabs that submit without donating.
      await ctx.addInitScript(() => localStorage.setItem('zerostate:spending', JSON.stringify({ allowance: 1e6 })))
      const page = await ctx.newPage()
      await page.goto(`http://127.0.0.1:${app.port}/`)
      await page.waitForFunction(() => window.zerostate != null, null, { timeout: 120_000 })
      const id = await page.evaluate(async (topic) => {
        const zs = window.zerostate
        if (zs == null) throw new Error('no window.zerostate')
        await zs.ready
        const probes = new Map<number, number>()
        window.__simProbes = probes
        const pubsub = zs.mesh.libp2p.services.pubsub
        pubsub.subscribe(topic)
        pubsub.addEventListener('message', (evt) => {
          if (evt.detail.topic !== topic) return
          const d = evt.detail.data
          const seq = new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0)
          if (!probes.has(seq)) probes.set(seq, performance.timeOrigin + performance.now())
        })
        return zs.peerId
      }, PROBE_TOPIC)
      pages.push(page)
      ids.push(id)
    }
  } catch (err) {
    await browser.close().catch(() => {})
    await app.close().catch(() => {})
    throw err
  }
  return {
    ids,
    async arrivals(seqs) {
      const out: Array<[string, number, number]> = []
      for (const [i, page] of pages.entries()) {
        const got = await page.evaluate((s) => s.flatMap((seq) => (window.__simProbes?.has(seq) ? [[seq, window.__simProbes.get(seq) as number]] : [])), seqs)
        for (const [seq, at] of got) out.push([ids[i] as string, seq as number, at as number])
      }
      return out
    },
    async lacking(want) {
      const out: string[] = []
      for (const [i, page] of pages.entries()) {
        const known = new Set(await page.evaluate(() => window.zerostate?.mesh.diagnostics().presence.map((p) => p.peerId) ?? []))
        if (want.some((id) => id !== ids[i] && !known.has(id))) out.push(ids[i] as string)
      }
      return out
    },
    async stop() {
      await Promise.allSettled(contexts.map((c) => c.close()))
      await browser.close().catch(() => {})
      await app.close().catch(() => {})
    }
  }
}
