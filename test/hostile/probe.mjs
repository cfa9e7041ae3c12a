/**
 * What an attack does to a tab, measured from the outside (tests and bench/hostile.mjs):
 *
 *   const probe = await tabProbe(page)       // installs the probes in the page
 *   await probe.reset()                      // start a measuring window
 *   const r = await probe.read()             // { longTasks, maxLongTaskMs, maxLagMs, pings: { ok, failed, maxMs } }
 *   await probe.heapMB({ gc: true })         // used JS heap (CDP Runtime.getHeapUsage), after a GC
 *   probe.startPings([peerIds], 250)         // ping honest peers from this tab every 250 ms until read()
 *   await joinTimeMs(mesh, [peerIds])        // a new tab: page load → direct link to each of those peers
 *   await joinTiming(mesh, [peerIds], { members })  // the same, with where the time went
 *
 * Main-thread stalls are seen two ways: a PerformanceObserver for 'longtask' (tasks
 * over 50 ms) and a 20 ms setInterval whose lateness is the lag a user would feel.
 */

/** Install the stall, lag and ping probes in `page`. */
export async function tabProbe(page) {
  const cdp = await page.context().newCDPSession(page)
  await page.evaluate(() => {
    if (window.__probe != null) return
    const p = { longTasks: [], maxLagMs: 0, pings: { ok: 0, failed: 0, maxMs: 0, errors: [] }, pingTimer: undefined }
    window.__probe = p
    try {
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) p.longTasks.push(e.duration)
      }).observe({ type: 'longtask', buffered: false })
    } catch {
      /* no longtask support: the lag probe still runs */
    }
    let last = performance.now()
    setInterval(() => {
      const now = performance.now()
      p.maxLagMs = Math.max(p.maxLagMs, now - last - 20)
      last = now
    }, 20)
  })
  return {
    async reset() {
      await page.evaluate(() => {
        const p = window.__probe
        p.longTasks = []
        p.maxLagMs = 0
        p.pings = { ok: 0, failed: 0, maxMs: 0, errors: [] }
      })
    },
    async startPings(peerIds, everyMs = 250) {
      await page.evaluate(
        ([ids, every]) => {
          const p = window.__probe
          clearInterval(p.pingTimer)
          p.pingTimer = setInterval(() => {
            for (const id of ids) {
              const t0 = performance.now()
              window.zerostate.ping(id).then(
                () => {
                  p.pings.ok++
                  p.pings.maxMs = Math.max(p.pings.maxMs, performance.now() - t0)
                },
                (err) => {
                  p.pings.failed++
                  if (p.pings.errors.length < 5) p.pings.errors.push(String(err?.message ?? err))
                }
              )
            }
          }, every)
        },
        [peerIds, everyMs]
      )
    },
    async read() {
      return await page.evaluate(() => {
        const p = window.__probe
        clearInterval(p.pingTimer)
        const lt = p.longTasks
        return {
          longTasks: lt.length,
          maxLongTaskMs: Math.round(lt.reduce((m, d) => Math.max(m, d), 0)),
          maxLagMs: Math.round(p.maxLagMs),
          pings: { ...p.pings, maxMs: Math.round(p.pings.maxMs) }
        }
      })
    },
    async heapMB({ gc = true } = {}) {
      if (gc) await cdp.send('HeapProfiler.collectGarbage')
      const { usedSize } = await cdp.send('Runtime.getHeapUsage')
      return Math.round((usedSize / (1024 * 1024)) * 10) / 10
    },
    async close() {
      await cdp.detach().catch(() => {})
    }
  }
}

/** Open a new tab and time it from before its page opens to a direct WebRTC link to each of `peerIds`. Closes it after. */
export async function joinTimeMs(mesh, peerIds, { timeout = 15_000 } = {}) {
  return (await joinTiming(mesh, peerIds, { timeout })).wallMs
}

/**
 * A new tab joins: page load → direct WebRTC link to each of `peerIds`, with where the time
 * went (ms after the new page's navigation start): its milestones (libp2p started, relay
 * connected, own WebRTC address), and per member when it was discovered, when a dial
 * started, when the link opened, and who dialled (`members`: the pages of `peerIds`, asked
 * for their side of the dial). `after(page)` runs on the new tab before it closes.
 * Resolves with { ms (the new tab's clock: navigation start → last direct link, as bench:mesh),
 * wallMs (from before its context opened), milestones, peers: [{ peerId, discoveredAt,
 * dialStartedAt, directAt, dialledBy }], newTabLongTasks, after }; ms and wallMs are null when
 * the join timed out.
 */
export async function joinTiming(mesh, peerIds, { timeout = 15_000, members = [], after } = {}) {
  const t0 = Date.now()
  const page = await mesh.newPeer()
  const loadMs = Date.now() - t0
  try {
    let wallMs = null
    try {
      await page.waitForFunction((ids) => ids.every((id) => window.zerostate.peers().some((p) => p.id === id && p.transport === 'webrtc')), peerIds, {
        timeout,
        polling: 50
      })
      wallMs = Date.now() - t0
    } catch {
      /* reported as ms: null, with the timings so far */
    }
    const t = await page.evaluate(async () => {
      const t = window.zerostate.mesh.timings()
      // The new tab's own main-thread tasks over 50 ms since navigation (buffered entries).
      const longTasks = await new Promise((resolve) => {
        try {
          const obs = new PerformanceObserver((list) => {
            obs.disconnect()
            resolve(list.getEntries().map((e) => [Math.round(e.startTime), Math.round(e.duration)]))
          })
          obs.observe({ type: 'longtask', buffered: true })
          setTimeout(() => resolve([]), 200)
        } catch {
          resolve([])
        }
      })
      return { ...t, id: window.zerostate.peerId, origin: performance.timeOrigin, longTasks }
    })
    const round = (x) => (x == null ? undefined : Math.round(x))
    const peers = []
    for (const [i, id] of peerIds.entries()) {
      const mine = t.peers.find((p) => p.peerId === id) ?? {}
      // The member's side, moved onto the new page's clock (both are ms since their own time origin).
      const theirs =
        members[i] == null
          ? undefined
          : await members[i]
              .evaluate((peer) => ({ p: window.zerostate.mesh.timings().peers.find((x) => x.peerId === peer), origin: performance.timeOrigin }), t.id)
              .catch(() => undefined)
      const shift = theirs == null ? 0 : theirs.origin - t.origin
      const onMine = (x) => (x == null ? undefined : round(x + shift))
      peers.push({
        peerId: id,
        dialledBy: t.id < id ? 'newcomer' : 'member',
        discoveredAt: round(mine.discoveredAt),
        dialStartedAt: round(mine.dialStartedAt),
        memberDiscoveredAt: onMine(theirs?.p?.discoveredAt),
        memberDialStartedAt: onMine(theirs?.p?.dialStartedAt),
        directAt: round(mine.directAt),
        phases: mine.phases ?? theirs?.p?.phases
      })
    }
    const milestones = Object.fromEntries(Object.entries(t.milestones).map(([k, v]) => [k, round(v)]))
    const lastDirect = Math.max(...peers.map((p) => p.directAt ?? 0))
    // The tab's own clock (0 = its navigation start), as bench:mesh reports a join.
    const ms = wallMs == null || peers.some((p) => p.directAt == null) ? null : lastDirect
    const before = t.longTasks.filter(([at]) => at < lastDirect)
    const newTabLongTasks = {
      count: before.length,
      totalMs: before.reduce((n, [, d]) => n + d, 0),
      longest: before.reduce((m, [, d]) => Math.max(m, d), 0),
      list: before
    }
    return {
      ms,
      wallMs,
      loadMs,
      milestones,
      firstDirectAt: round(t.firstDirectAt),
      peers,
      newTabLongTasks,
      after: after == null ? undefined : await after(page).catch((e) => String(e))
    }
  } finally {
    await page.context().close()
  }
}
