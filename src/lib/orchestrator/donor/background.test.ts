/**
 * Donors in background tabs (issue 16): lease renewals come from the donor's ticker (a worker's clock
 * in a tab, which a hidden tab does not throttle), a page about to be frozen hands its steps back and
 * the submitter re-routes at once without spending an attempt, `whileHidden: 'release'` declines
 * offers while hidden, and a donor frozen without warning is left within one lease.
 * The real hidden and frozen tab is test/hidden-tabs.test.mjs.
 */
import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork, parseTaskMessage } from '../dispatch/index.ts'
import { createOrchestrator } from '../index.ts'
import { agent, catalogOf, delay, fnExecutor, peer } from '../test-fixtures.ts'
import { donorService, type WhileHidden } from './donor-service.ts'
import { intervalTicker, type DonorPage, type PageState, type Ticker } from './page-lifecycle.ts'

const upper = agent('upper', ['text-summarization'], 0.1)
const catalog = catalogOf([upper])

/** A page the test hides, shows, freezes and resumes. */
function fakePage(hidden = false): DonorPage & { set(state: PageState): void } {
  const listeners = new Set<(s: PageState) => void>()
  let h = hidden
  return {
    hidden: () => h,
    on(l) {
      listeners.add(l)
      return () => listeners.delete(l)
    },
    set(state) {
      if (state === 'hidden') h = true
      if (state === 'visible') h = false
      for (const l of listeners) l(state)
    }
  }
}

/** A ticker that ticks like intervals until `freeze()` (a page frozen without warning: nothing runs). */
function freezableTicker(): Ticker & { freeze(): void; started: number } {
  let frozen = false
  const t = {
    started: 0,
    freeze() {
      frozen = true
    },
    every(ms: number, fn: () => void) {
      t.started++
      return intervalTicker.every(ms, () => {
        if (!frozen) fn()
      })
    }
  }
  return t
}

/** Donor A (slow, first choice by round trip) with its page and ticker, donor B (fast); a submitter. */
async function mesh(opts: { leaseMs: number; slowMs: number; whileHidden?: WhileHidden; hidden?: boolean }) {
  const net = new MemoryTaskNetwork()
  const page = fakePage(opts.hidden)
  const ticker = freezableTicker()
  const aborted: string[] = []
  const slow = fnExecutor({
    [upper.id]: async (i, signal) => {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, opts.slowMs)
        signal.addEventListener('abort', () => {
          clearTimeout(t)
          aborted.push(String(i))
          reject(signal.reason)
        })
      })
      return { summary: `A:${String(i).toUpperCase()}` }
    }
  })
  const fast = fnExecutor({ [upper.id]: (i) => ({ summary: `B:${String(i).toUpperCase()}` }) })
  const ta = net.transport('donor-a')
  const tb = net.transport('donor-b')
  await ta.start()
  await tb.start()
  // The hidden lease as short as the visible one: these tests are about renewals and hand-backs, not the longer hidden lease.
  const a = donorService({ leaseMs: opts.leaseMs, hiddenLeaseMs: opts.leaseMs, whileHidden: opts.whileHidden })({ transport: ta, executor: slow, page, ticker })
  const b = donorService({ leaseMs: opts.leaseMs })({ transport: tb, executor: fast, page: null })
  await a.start()
  await b.start()
  const peers = [peer('donor-a', { rttMs: 5 }), peer('donor-b', { rttMs: 50 })]
  const orch = createOrchestrator({ catalog, peers: { peers: () => peers }, transport: net.transport('submitter') }, { dispatcher: { offerTimeoutMs: 2000 } })
  await orch.start()
  return { orch, a, b, page, ticker, slow, fast, aborted }
}

type Orch = Awaited<ReturnType<typeof mesh>>['orch']
/** Where each step succeeded and on which attempt (an attempt spent shows as 2). */
function where(h: ReturnType<Orch['submit']>): Promise<Array<[string, number]>> {
  const ok: Array<[string, number]> = []
  h.on('step', (e) => {
    if (e.status === 'succeeded') ok.push([e.peer, e.attempt])
  })
  return h.done.then(() => ok)
}

const prefs = { strategy: 'speed' as const, retry_policy: { max_attempts: 2, backoff_ms: 5_000, backoff_multiplier: 1 } }

describe('donors in background tabs', () => {
  it('lease renewals come from the donor’s ticker: a hidden donor (default: keep donating) runs a step longer than many leases', async () => {
    const m = await mesh({ leaseMs: 150, slowMs: 1200, hidden: true })
    const h = m.orch.submit({ description: 'Summarize this', input: 'quiet tab', preferences: prefs })
    expect(await where(h)).toEqual([['donor-a', 1]])
    expect((await h.done).output).toEqual({ summary: 'A:QUIET TAB' })
    expect(m.ticker.started).toBe(1)
    expect(m.orch.stats()).toMatchObject({ leasesLost: 0, released: 0 })
    expect(m.a.stats()).toMatchObject({ completed: 1, released: 0, hiddenDeclines: 0 })
  })

  it('a donor frozen without warning stops renewing: the submitter leaves it within one lease and the step completes elsewhere', async () => {
    const leaseMs = 300
    const m = await mesh({ leaseMs, slowMs: 30_000 })
    const h = m.orch.submit({
      description: 'Summarize this',
      input: 'frozen tab',
      preferences: { ...prefs, retry_policy: { ...prefs.retry_policy, backoff_ms: 0 } }
    })
    const seen: Array<{ status: string; peer: string; at: number }> = []
    const accepted = Promise.withResolvers<void>()
    h.on('step', (e) => {
      seen.push({ status: e.status, peer: e.peer, at: performance.now() })
      if (e.status === 'accepted' && e.peer === 'donor-a') accepted.resolve()
    })
    await accepted.promise
    m.ticker.freeze()
    const frozenAt = performance.now()
    const r = await h.done
    expect(r.steps.map((s) => s.peer)).toEqual(['donor-b'])
    const failed = seen.find((e) => e.status === 'failed' && e.peer === 'donor-a')!
    expect(failed).toBeDefined()
    // The last renewal came at most renewEvery (leaseMs / 3) before the freeze; the lease runs leaseMs from it.
    expect(failed.at - frozenAt).toBeLessThanOrEqual(leaseMs + 250)
    expect(m.orch.stats().leasesLost).toBe(1)
  })

  it('a page about to be frozen hands its running step back: the submitter re-routes at once, without spending an attempt or waiting for the lease', async () => {
    // A lease of 20 s: only the hand-back explains a re-route within a second.
    const m = await mesh({ leaseMs: 20_000, slowMs: 30_000 })
    const h = m.orch.submit({ description: 'Summarize this', input: 'closing lid', preferences: prefs })
    const placed = where(h)
    const events: string[] = []
    const accepted = Promise.withResolvers<void>()
    h.on('step', (e) => {
      events.push(`${e.status}@${e.peer}${e.error != null ? `: ${e.error}` : ''}`)
      if (e.status === 'accepted' && e.peer === 'donor-a') accepted.resolve()
    })
    await accepted.promise
    const t0 = performance.now()
    m.page.set('frozen')
    const r = await placed
    expect(performance.now() - t0).toBeLessThan(1000)
    expect(r).toEqual([['donor-b', 1]])
    expect(events).toContainEqual(expect.stringMatching(/^failed@donor-a: donor-a handed the step back: this donor’s page is being frozen/))
    expect(m.orch.stats()).toMatchObject({ released: 1, leasesLost: 0 })
    expect(m.a.stats()).toMatchObject({ released: 1, cancelled: 0, completed: 0 })
    // The donor stopped running it (no compute spent on a result nobody waits for).
    expect(m.aborted).toEqual(['closing lid'])
    // Until it resumes, it declines offers; afterwards it takes them again.
    expect(await where(m.orch.submit({ description: 'Summarize this', input: 'still frozen', preferences: prefs }))).toEqual([['donor-b', 1]])
    expect(m.a.stats().hiddenDeclines).toBe(1)
    m.page.set('resumed')
    m.slow.runs = 0
    const h2 = m.orch.submit({ description: 'Summarize this', input: 'awake', preferences: prefs })
    await expect.poll(() => m.slow.runs).toBe(1)
    h2.cancel()
  })

  it("whileHidden 'release': a hidden donor hands back what it runs and declines offers until shown; setWhileHidden switches at run time", async () => {
    const m = await mesh({ leaseMs: 20_000, slowMs: 30_000, whileHidden: 'release' })
    const h = m.orch.submit({ description: 'Summarize this', input: 'tab switch', preferences: prefs })
    const placed = where(h)
    const accepted = Promise.withResolvers<void>()
    h.on('step', (e) => {
      if (e.status === 'accepted' && e.peer === 'donor-a') accepted.resolve()
    })
    await accepted.promise
    m.page.set('hidden')
    expect(await placed).toEqual([['donor-b', 1]])
    expect(m.a.stats().released).toBe(1)
    // Hidden: new offers are declined ('stopped'), no attempt spent.
    expect(await where(m.orch.submit({ description: 'Summarize this', input: 'still hidden', preferences: prefs }))).toEqual([['donor-b', 1]])
    expect(m.a.stats()).toMatchObject({ hiddenDeclines: 1, declined: 0 })
    // The user turns "donate while hidden" on: the hidden donor takes the next step.
    m.a.setWhileHidden('donate')
    m.slow.runs = 0
    const h3 = m.orch.submit({ description: 'Summarize this', input: 'donating hidden', preferences: prefs })
    await expect.poll(() => m.slow.runs).toBe(1)
    h3.cancel()
    await delay(20)
  })

  it('a hidden page grants the longer hidden lease: in its accept, and at once to running steps when the page is hidden', async () => {
    const net = new MemoryTaskNetwork()
    const page = fakePage()
    const donorT = net.transport('donor')
    const sub = net.transport('sub')
    await donorT.start()
    await sub.start()
    const got: Array<{ type: string; leaseMs?: number }> = []
    sub.onMessage((_from, m) => {
      if (m.type === 'accept' || m.type === 'lease-renew') got.push({ type: m.type, leaseMs: m.leaseMs })
    })
    const slow = fnExecutor({ [upper.id]: (_i, signal) => new Promise((_r, reject) => signal.addEventListener('abort', () => reject(signal.reason))) })
    // A ticker that never ticks: every renewal below comes from the page's change.
    const donor = donorService({ leaseMs: 3000, hiddenLeaseMs: 10_000 })({ transport: donorT, executor: slow, page, ticker: { every: () => () => {} } })
    await donor.start()
    const offer = (rid: string, key: string) =>
      sub.send('donor', {
        type: 'offer',
        rid,
        taskId: 't-1',
        stepId: 's1',
        attempt: 1,
        idempotencyKey: key,
        agentId: upper.id,
        input: 'x',
        deadline: Date.now() + 60_000
      })
    await offer('r1', 'k1')
    await expect.poll(() => got).toEqual([{ type: 'accept', leaseMs: 3000 }])
    page.set('hidden')
    await expect.poll(() => got.at(-1)).toEqual({ type: 'lease-renew', leaseMs: 10_000 })
    await offer('r2', 'k2')
    await expect.poll(() => got.at(-1)).toEqual({ type: 'accept', leaseMs: 10_000 })
    await donor.stop()
  })

  it("the protocol: 'released' is an optional field of 'decline' (older peers read a plain decline)", () => {
    expect(parseTaskMessage({ type: 'decline', rid: 'r1', reason: 'stopped', released: true, message: 'hidden' })).toMatchObject({ released: true })
    expect(parseTaskMessage({ type: 'decline', rid: 'r1', reason: 'full' })).toEqual({ type: 'decline', rid: 'r1', reason: 'full' })
    expect(parseTaskMessage({ type: 'decline', rid: 'r1', reason: 'stopped', released: false })).toBeUndefined()
  })
})
