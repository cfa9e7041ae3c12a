/**
 * The donor side of `/zerostate/task/1.0.0`: accept offers while workers are
 * free, run them on the local runtime, renew the lease while working, answer
 * with the result. Idempotency keys make re-offers safe: a step already running
 * or finished here is not run again, its result is sent to the new request.
 * Large or binary inputs arrive as a core payload after the accept; large or
 * binary outputs leave as one after the result (`dispatch/payload-transfer.ts`).
 *
 * Background tabs (issue 16): leases are renewed from a clock a hidden tab does not throttle (a
 * dedicated worker, page-lifecycle.ts), so a step keeps running when its donor's tab goes to the
 * background. A page about to be frozen (Page Lifecycle `freeze`: no script runs until it resumes)
 * hands its running steps back, a 'decline' with reason 'stopped' and `released: true` for each,
 * so their submitters re-route at once instead of waiting for the lease to run out, and declines
 * new offers until it resumes. With `whileHidden: 'release'` a hidden page does the same as soon
 * as it is hidden. A donor frozen without warning stops renewing: its submitters notice within one
 * lease: `leaseMs` (3 s) while visible, `hiddenLeaseMs` (10 s) while hidden. A hidden tab gets the
 * longer lease because its sends can wait: Chrome runs a background tab's renderer at a lower
 * priority and aligns the timers on its send path to 1 s, and on a loaded 2-core machine a hidden
 * donor renewing every second still lost 3 s leases (test/hidden-tabs.test.mjs, load ~20).
 */
import type { AgentBlobStore, LocalExecutor } from '../components.ts'
import { fetchAgent, serveAgentFetch } from './agent-fetch.ts'
import { toError } from '../errors.ts'
import { logger, MAX_PAYLOAD_BYTES, parseTraceparent, type ActiveSpan, type SpanBundle, type Tracer } from '../../core/index.ts'
import { preparePayload, TaskPayloads, type PreparedPayload, type TaskMessage, type TaskMessageOf } from '../dispatch/index.ts'
import type { TaskTransport } from '../dispatch/index.ts'
import { PeerBudget, type PeerBudgetInit } from '../../mesh/index.ts'
import { browserPage, type DonorPage, type PageState, type Ticker, workerTicker } from './page-lifecycle.ts'

const log = logger('orchestrator:donor')

/** Options of the donor service, with defaults. */
export interface DonorServiceInit {
  /** Lease granted per accept and per renewal. Default 3000 ms. */
  leaseMs?: number
  /** Lease granted per renewal while the page is hidden (see the module's comment). Default 10 000 ms. */
  hiddenLeaseMs?: number
  /** Renew this often (must be below leaseMs). Default leaseMs / 3. */
  renewEveryMs?: number
  /** Finished results kept for re-offers. Default 256. */
  resultCacheSize?: number
  /** Serve agent-fetch requests from `blobs`. Default true; the orchestrator serves them itself, donating or not. */
  serveAgentFetch?: boolean
  /** Largest input accepted, in bytes. Default core's MAX_PAYLOAD_BYTES (16 MiB). */
  maxInputBytes?: number
  /** Bytes of finished outputs kept for re-offers. Default 32 MiB. */
  resultCacheBytes?: number
  /** Per-peer budget of task offers (issue 11 item 3). Default TASK_OFFER_BUDGET. */
  offerBudget?: PeerBudgetInit
  /** Per-peer budget of offers this donor must decline (full, no agent, expired, invalid). Default DECLINED_OFFER_BUDGET. */
  declineBudget?: PeerBudgetInit
  /**
   * What a hidden page does: 'donate' (default) keeps running its steps and taking offers, its leases
   * renewed from a worker; 'release' hands its running steps back and declines offers while hidden.
   * A page about to be frozen hands its steps back either way.
   */
  whileHidden?: WhileHidden
}

/** What a donor in a hidden page does (DonorServiceInit.whileHidden). */
export type WhileHidden = 'donate' | 'release'

/**
 * Task offers per peer (issue 11 item 3): far above what one submitter sends (bench:tasks
 * reaches ~300 tasks/s per donor), far below a flood on one stream.
 */
export const TASK_OFFER_BUDGET: PeerBudgetInit = { requests: 20_000, windowS: 10 }
/**
 * Offers a donor had to decline, per peer: an honest dispatcher learns a donor's capacity
 * from its first 'full' and queues instead of offering again, so hundreds of declines in
 * seconds come only from a peer offering for its own sake (each decline is an answer).
 */
export const DECLINED_OFFER_BUDGET: PeerBudgetInit = { requests: 200, windowS: 10 }

/** What the donor needs. */
export interface DonorServiceComponents {
  transport: TaskTransport
  executor: LocalExecutor
  /** Module bytes here, to fetch missing agents into and serve them to others. */
  blobs?: AgentBlobStore
  /**
   * The user (profile key) behind a peer. Results are cached per user and idempotency key, so
   * a step re-offered after its submitter reloaded (a new peer id, the same profile) or from
   * another tab of that profile is answered from the cache or joins the run, not run again.
   * Without it, per peer. `proveUser` checks the claim an offer carries (its `user`), so a reloaded
   * tab is known as its profile at its first re-offer, before its presence got here and was checked.
   */
  users?: { userOf(peerId: string): string | undefined; proveUser?(peerId: string, claim: { publicKey: string; keyProof: string }): Promise<boolean> }
  /**
   * Records this donor's spans of a step whose offer carried a trace context (accepting, fetching the
   * agent, queueing, running, answering) and sends them, signed, with the answer (core/trace). Off without it.
   */
  tracer?: Tracer
  /** Told of every step this donor ran to an answer (not cancelled): for the profile's audit log. */
  served?: (step: ServedStep) => void
  /** The page this donor runs in; default the browser's `document` when there is one (`null`: none). */
  page?: DonorPage | null
  /** The clock of lease renewals; default a worker's where there are workers (a hidden tab throttles the page's own timers). */
  ticker?: Ticker
}

/** A step a donor ran and answered. */
export interface ServedStep {
  /** The submitter's peer (the first offer's). */
  peer: string
  agentId: string
  taskId: string
  stepId: string
  /** Its result, or the error's name. */
  outcome: 'result' | string
}

/** Serves task offers from other peers. */
export interface DonorService {
  start(): Promise<void>
  stop(): Promise<void>
  /** Counters: accepted, declined, completed, failed, cachedReplies, fetched, released, payload* (chunks, bytes, integrity errors). */
  stats(): Record<string, number>
  /** Change what a hidden page does (Settings → "Keep donating while this tab is in the background"). */
  setWhileHidden(mode: WhileHidden): void
}

type Outcome = { type: 'result'; output: PreparedPayload; ms: number } | { type: 'error'; name: string; message: string }

interface Job {
  waiters: Array<{ peer: string; rid: string }>
  controller: AbortController
  /** The input, when it travels as a payload (registered before the accept is sent). */
  input?: Promise<unknown>
  done?: Outcome
  /** The step's spans when its offer carried a trace context: [0] is the step's span. */
  spans?: ActiveSpan[]
  /** Handed back to its submitters (the page went to the background or is being frozen). */
  released?: boolean
}

/** Run `fn` in a task of its own, after the current one and its microtasks. */
function afterThisTask(fn: () => void): void {
  if (typeof MessageChannel === 'undefined') {
    setTimeout(fn, 0)
    return
  }
  const { port1, port2 } = new MessageChannel()
  port1.onmessage = () => {
    port1.close()
    fn()
  }
  port2.postMessage(null)
}

/** Withdrawn requests remembered per donor (a cancel that overtook its offer). */
const WITHDRAWN_KEPT = 1024

/** `donorService(init)(components)`. */
export function donorService(init: DonorServiceInit = {}): (components: DonorServiceComponents) => DonorService {
  return (components) => {
    const { transport, executor, blobs, tracer } = components
    const leaseMs = init.leaseMs ?? 3000
    const renewEvery = init.renewEveryMs ?? Math.max(10, Math.floor(leaseMs / 3))
    const hiddenLeaseMs = Math.max(leaseMs, init.hiddenLeaseMs ?? 10_000)
    const cacheSize = init.resultCacheSize ?? 256
    const cacheBytes = init.resultCacheBytes ?? 32 * 1024 * 1024
    const jobs = new Map<string, Job>()
    const byRid = new Map<string, string>()
    /** Requests their submitters withdrew before the offer arrived, by peer and rid (the newest WITHDRAWN_KEPT). */
    const withdrawnRids = new Set<string>()
    /** Offers not run because their submitter had withdrawn them already. */
    let withdrawn = 0
    const finished = new Map<string, Outcome>()
    let finishedBytes = 0
    /**
     * The key each (peer, idempotency key) ran under. A step's key names the submitting user
     * when that peer's profile key is proven, else the peer; the proof is checked in the
     * background, so a peer's offer and its re-offer can come under different forms (pending at
     * one, proven at the other) and the re-offer missed its own run. Only the same peer id finds
     * its own earlier key. (A reloaded tab has a new peer id: the claim its offers carry covers it.)
     */
    const keyOfPeer = new Map<string, string>()
    const stats = {
      accepted: 0,
      declined: 0,
      completed: 0,
      failed: 0,
      cancelled: 0,
      cachedReplies: 0,
      fetched: 0,
      overBudget: 0,
      released: 0,
      hiddenDeclines: 0,
      /** Offers whose `user` claim was checked before they were taken (a peer whose user was not known yet). */
      claimsChecked: 0,
      /** Offers declined because their `user` claim did not hold for the peer that sent them. */
      claimsRefused: 0
    }
    const page = components.page === undefined ? browserPage() : (components.page ?? undefined)
    const ticker = components.ticker ?? workerTicker()
    let whileHidden: WhileHidden = init.whileHidden ?? 'donate'
    /** Set between a page's `freeze` and `resume` (a frozen page runs nothing; the flag is for the moments around). */
    let frozen = false
    /** One renewal clock for every running step, running while there is one. */
    let stopTicker: (() => void) | undefined
    /** The lease to grant now: longer while the page is hidden. */
    const currentLease = (): number => (page?.hidden() === true ? hiddenLeaseMs : leaseMs)
    const renewAll = (): void => {
      const lease = currentLease()
      for (const job of jobs.values()) for (const w of job.waiters) send(w.peer, { type: 'lease-renew', rid: w.rid, leaseMs: lease })
    }
    /**
     * Starting the clock costs the page a few ms (in a tab it spawns a worker: 1-6 ms measured at load
     * 15-20), so it starts in a task of its own once the step's run is under way, not on its path to a
     * first streamed token (issue 14). A macrotask from a MessageChannel: a hidden tab does not throttle it.
     */
    let ticking = false
    const tick = (): void => {
      if (jobs.size > 0 && stopTicker == null) {
        if (ticking) return
        ticking = true
        afterThisTask(() => {
          ticking = false
          if (jobs.size > 0 && stopTicker == null) stopTicker = ticker.every(renewEvery, renewAll)
        })
      } else if (jobs.size === 0 && stopTicker != null) {
        stopTicker()
        stopTicker = undefined
      }
    }
    /** Why this donor takes no new offers now, if it does not. */
    const away = (): string | undefined =>
      frozen
        ? 'this donor’s page is being frozen by the browser'
        : whileHidden === 'release' && page?.hidden() === true
          ? 'this donor’s tab is in the background'
          : undefined
    const payloads = new TaskPayloads(transport, { maxBytes: init.maxInputBytes })
    const offerBudget = new PeerBudget('task-offer', { strikes: transport.strikes }, init.offerBudget ?? TASK_OFFER_BUDGET)
    const declineBudget = new PeerBudget('task-offer-declined', { strikes: transport.strikes }, init.declineBudget ?? DECLINED_OFFER_BUDGET)
    /** Outputs being sent, by peer and rid: a cancel stops them. */
    const sending = new Map<string, AbortController>()
    let offs: Array<() => void> = []
    let running = false

    const send = (peer: string, m: TaskMessage): void => {
      transport.send(peer, m).catch((err) => {
        log('send %s to %s failed: %s', m.type, peer, toError(err).message)
      })
    }
    const reply = (peer: string, rid: string, o: Outcome, spans?: SpanBundle): void => {
      const traced = spans != null ? { spans } : {}
      if (o.type === 'error') {
        send(peer, { type: 'error', rid, name: o.name, message: o.message, ...traced })
        return
      }
      const out = o.output
      if (out.inline) {
        send(peer, { type: 'result', rid, output: out.value, ms: o.ms, ...traced })
        return
      }
      const bytes = out.bytes
      const key = `${peer}\n${rid}`
      const controller = new AbortController()
      sending.get(key)?.abort()
      sending.set(key, controller)
      void (async () => {
        await transport.send(peer, { type: 'result', rid, payload: out.payload, ms: o.ms, ...traced })
        if (bytes != null) await payloads.send(peer, rid, bytes, { signal: controller.signal })
      })()
        .catch((err: unknown) => {
          log('sending the output of %s to %s failed: %s', rid, peer, toError(err).message)
        })
        .finally(() => {
          if (sending.get(key) === controller) sending.delete(key)
        })
    }
    const cache = (key: string, o: Outcome & { type: 'result' }): void => {
      finished.set(key, o)
      finishedBytes += o.output.size
      while (finished.size > cacheSize || (finishedBytes > cacheBytes && finished.size > 1)) {
        const [oldest, value] = finished.entries().next().value!
        finished.delete(oldest)
        if (value.type === 'result') finishedBytes -= value.output.size
      }
    }

    async function ensureAgent(offer: TaskMessageOf<'offer'>, from: string, signal: AbortSignal, spans?: ActiveSpan[]): Promise<boolean> {
      if (executor.has(offer.agentId)) return true
      if (blobs == null) return false
      const step = spans?.[0]
      const span = step != null ? tracer!.start('donor.fetch-agent', step, { 'agent.id': offer.agentId }) : undefined
      const got = await fetchFromHolders(offer, from, signal)
      span?.end(got ? 'ok' : 'error', got ? undefined : { error: 'no holder could send the agent' })
      if (span != null) spans!.push(span)
      return got
    }

    async function fetchFromHolders(offer: TaskMessageOf<'offer'>, from: string, signal: AbortSignal): Promise<boolean> {
      if (blobs == null) return false
      for (const holder of [...(offer.holders ?? []), from]) {
        if (holder === transport.self) continue
        try {
          const bytes = await fetchAgent(transport, holder, offer.agentId, {
            expectedSha256: offer.moduleSha256,
            signal,
            timeoutMs: Math.max(1000, offer.deadline - Date.now())
          })
          await blobs.put(offer.agentId, bytes)
          stats.fetched++
          if (executor.has(offer.agentId)) return true
        } catch (err) {
          log('fetching %s from %s failed: %s', offer.agentId, holder, toError(err).message)
        }
      }
      return false
    }

    async function run(key: string, job: Job, offer: TaskMessageOf<'offer'>, from: string): Promise<void> {
      tick()
      let outcome: Outcome
      try {
        if (!(await ensureAgent(offer, from, job.controller.signal, job.spans))) {
          outcome = { type: 'error', name: 'NoAgentError', message: `this donor cannot get agent ${offer.agentId.slice(0, 12)}…` }
        } else {
          const step = job.spans?.[0]
          // Waiting for the input's chunks and for a worker: the step is queued here until the runtime starts it.
          const queued = step != null ? tracer!.start('donor.queue', step) : undefined
          const input = job.input != null ? await job.input : offer.input
          queued?.end()
          const running = step != null ? tracer!.start('donor.run', step) : undefined
          if (queued != null) job.spans!.push(queued)
          if (running != null) job.spans!.push(running)
          // An llm-prompt agent's text streams to every submitter waiting on it as it is generated (issue 14).
          let seq = 0
          // The donor's own time to its first token, from the run's start, goes on the run's span: the
          // submitter's trace then holds its added delay for this very step (bench:agents reads it).
          let runStart = 0
          let firstTokenMs: number | undefined
          const onToken = (text: string): void => {
            firstTokenMs ??= performance.now() - runStart
            const n = seq++
            for (const w of job.waiters) send(w.peer, { type: 'tokens', rid: w.rid, seq: n, text: text.slice(0, 4096) })
          }
          // Tool calls (issue 14) see the submitter's scope, and each gets a span under the run's.
          const task = {
            taskId: offer.taskId,
            stepId: offer.stepId,
            from,
            ...(offer.tools != null ? { scope: offer.tools } : {}),
            ...(running != null
              ? {
                  span: (_tool: string, attrs: Record<string, unknown>) => {
                    const span = tracer!.start('donor.tool', running, attrs)
                    job.spans!.push(span)
                    return span
                  }
                }
              : {})
          }
          runStart = performance.now()
          const r = await executor.run(offer.agentId, input, {
            signal: job.controller.signal,
            timeoutMs: Math.max(1, offer.deadline - Date.now()),
            onToken,
            task
          })
          running?.end('ok', { 'runtime.ms': r.ms, ...(firstTokenMs != null ? { 'llm.firstTokenMs': Math.round(firstTokenMs * 100) / 100 } : {}) })
          outcome = { type: 'result', output: preparePayload(r.output), ms: r.ms }
        }
      } catch (err) {
        const e = toError(err)
        outcome = { type: 'error', name: e.name, message: e.message.slice(0, 2000) }
        const last = job.spans?.at(-1)
        if (last != null && !last.ended) last.end('error', { error: outcome.message.slice(0, 200) })
      }
      job.done = outcome
      if (jobs.get(key) === job) jobs.delete(key)
      tick()
      if (job.controller.signal.aborted) {
        // Every submitter waiting on it cancelled, or it was handed back: no reply, no lease, nothing cached (a re-offer runs afresh).
        if (job.released !== true) stats.cancelled++
        for (const w of job.waiters) byRid.delete(`${w.peer}\n${w.rid}`)
        return
      }
      if (outcome.type === 'result') {
        stats.completed++
        cache(key, outcome)
      } else stats.failed++
      if (!running) return
      try {
        components.served?.({
          peer: from,
          agentId: offer.agentId,
          taskId: offer.taskId,
          stepId: offer.stepId,
          outcome: outcome.type === 'result' ? 'result' : outcome.name
        })
      } catch (err) {
        log.error('served hook failed %e', err)
      }
      const spans = job.spans != null ? sealSpans(job.spans, outcome, job.waiters[0].peer) : undefined
      for (const w of job.waiters) {
        byRid.delete(`${w.peer}\n${w.rid}`)
        // The spans go to the submitter whose offer carried the trace (the first); a joining re-offer gets the answer alone.
        reply(w.peer, w.rid, outcome, w === job.waiters[0] ? spans : undefined)
      }
    }

    /** End the step's spans and bundle them for `to`; their signature follows in a 'spans-seal' (core/trace seal.ts). */
    function sealSpans(spans: ActiveSpan[], outcome: Outcome, to: string): SpanBundle | undefined {
      const step = spans[0]
      const answer = tracer!.start('donor.answer', step)
      spans.push(answer)
      answer.end()
      step.end(outcome.type === 'result' ? 'ok' : 'error', outcome.type === 'error' ? { error: outcome.message.slice(0, 200) } : undefined)
      return tracer!.seal(step.traceId, spans, to, (seal) => send(to, { type: 'spans-seal', rid: `seal-${seal.first}`, seal }))
    }

    /** Refuse an offer over budget by name (counted and struck by the budget). True when refused. */
    const overBudget = (from: string, rid: string, budget: PeerBudget): boolean => {
      const refused = budget.request(from)
      if (refused == null) return false
      stats.overBudget++
      send(from, { type: 'error', rid, name: refused.name, message: refused.message })
      return true
    }
    const decline = (from: string, rid: string, reason: 'full' | 'no-agent' | 'expired' | 'invalid', message?: string): void => {
      if (overBudget(from, rid, declineBudget)) return
      stats.declined++
      send(from, { type: 'decline', rid, reason, ...(message == null ? {} : { message }) })
    }

    /**
     * Hand every running step back to its submitters ('decline' 'stopped' with `released`: older
     * submitters read a decline and move on too) and stop running them.
     */
    function releaseAll(why: string): void {
      for (const [key, job] of jobs) {
        job.released = true
        stats.released++
        for (const w of job.waiters) {
          byRid.delete(`${w.peer}\n${w.rid}`)
          send(w.peer, { type: 'decline', rid: w.rid, reason: 'stopped', released: true, message: why })
        }
        jobs.delete(key)
        job.controller.abort(new Error(`handed back: ${why}`))
      }
      tick()
    }

    function onPage(state: PageState): void {
      if (state === 'frozen') frozen = true
      else if (state === 'resumed') frozen = false
      const why = away()
      log('page %s: %s', state, why ?? 'taking offers')
      if (why != null) releaseAll(why)
      // Hidden: tell the submitters of the running steps the longer lease now, before the next tick.
      else if (state === 'hidden') renewAll()
    }

    /**
     * An offer: taken at once when its sender's user is known here or it claims none; else its claim
     * is checked first (once per peer and claim), so the step is keyed by the user. A cancel that
     * comes meanwhile is kept in `withdrawnRids` and the offer is dropped when it is taken.
     */
    function takeOffer(from: string, offer: TaskMessageOf<'offer'>): void {
      if (overBudget(from, offer.rid, offerBudget)) return
      const claim = offer.user
      const users = components.users
      if (claim == null || users?.proveUser == null || users.userOf(from) === claim.publicKey) {
        onOffer(from, offer)
        return
      }
      stats.claimsChecked++
      users.proveUser(from, claim).then(
        (ok) => {
          if (!running) return
          if (ok) {
            onOffer(from, offer)
            return
          }
          stats.claimsRefused++
          decline(from, offer.rid, 'invalid', `the offer's profile key claim does not hold for ${from}`)
        },
        (err: unknown) => {
          log.error('checking the offer claim of %s failed %e', from, err)
        }
      )
    }

    function onOffer(from: string, offer: TaskMessageOf<'offer'>): void {
      if (withdrawnRids.delete(`${from}\n${offer.rid}`)) {
        withdrawn++
        return
      }
      const why = away()
      if (why != null) {
        // Not a decline the budget counts against the submitter: it did nothing wrong.
        stats.hiddenDeclines++
        send(from, { type: 'decline', rid: offer.rid, reason: 'stopped', message: why })
        return
      }
      // One key per (submitting user, step): another user's key cannot collide with or read ours.
      let key = `${components.users?.userOf(from) ?? `peer:${from}`}\n${offer.idempotencyKey}`
      const earlier = keyOfPeer.get(`${from}\n${offer.idempotencyKey}`)
      if (earlier != null && earlier !== key && !finished.has(key) && !jobs.has(key) && (finished.has(earlier) || jobs.has(earlier))) key = earlier
      const cached = finished.get(key)
      if (cached != null) {
        stats.cachedReplies++
        reply(from, offer.rid, cached)
        return
      }
      const job = jobs.get(key)
      if (job != null) {
        // Re-offer of a step already running here: one run, answer both.
        job.waiters.push({ peer: from, rid: offer.rid })
        byRid.set(`${from}\n${offer.rid}`, key)
        send(from, { type: 'accept', rid: offer.rid, leaseMs: currentLease() })
        return
      }
      if (offer.deadline <= Date.now()) {
        decline(from, offer.rid, 'expired')
        return
      }
      if (executor.freeWorkers() <= 0) {
        decline(from, offer.rid, 'full')
        return
      }
      if (!executor.has(offer.agentId) && blobs == null) {
        decline(from, offer.rid, 'no-agent')
        return
      }
      if (offer.payload != null && offer.payload.size > (init.maxInputBytes ?? MAX_PAYLOAD_BYTES)) {
        decline(from, offer.rid, 'invalid', `the input of ${offer.payload.size} bytes is larger than this donor accepts`)
        return
      }
      const fresh: Job = { waiters: [{ peer: from, rid: offer.rid }], controller: new AbortController() }
      const parent = tracer?.enabled === true && tracer.signs ? parseTraceparent(offer.traceparent) : undefined
      if (parent != null) {
        // The agent and attempt are the parent dispatch.attempt's attributes: not sent (and hashed) again.
        const step = tracer!.start('donor.step', parent, { 'step.id': offer.stepId }, 'server')
        fresh.spans = [step, tracer!.start('donor.accept', step)]
      }
      if (offer.payload != null) {
        // Listen for the input's chunks before the accept lets the submitter send them.
        const signal = AbortSignal.any([fresh.controller.signal, AbortSignal.timeout(Math.max(1, offer.deadline - Date.now()))])
        fresh.input = payloads.receive(from, offer.rid, offer.payload, { signal })
        fresh.input.catch(() => {})
      }
      jobs.set(key, fresh)
      keyOfPeer.set(`${from}\n${offer.idempotencyKey}`, key)
      // Bounded as the result cache is: the oldest entries go first.
      while (keyOfPeer.size > cacheSize * 2) keyOfPeer.delete(keyOfPeer.keys().next().value!)
      byRid.set(`${from}\n${offer.rid}`, key)
      stats.accepted++
      send(from, { type: 'accept', rid: offer.rid, leaseMs: currentLease() })
      fresh.spans?.[1].end()
      void run(key, fresh, offer, from)
    }

    function onCancel(from: string, rid: string): void {
      sending.get(`${from}\n${rid}`)?.abort()
      const key = byRid.get(`${from}\n${rid}`)
      if (key == null) {
        // Withdrawn before its offer got here (a submitter gives up on an offer after offerTimeoutMs): not run when it comes.
        withdrawnRids.add(`${from}\n${rid}`)
        if (withdrawnRids.size > WITHDRAWN_KEPT) withdrawnRids.delete(withdrawnRids.values().next().value!)
        return
      }
      byRid.delete(`${from}\n${rid}`)
      const job = jobs.get(key)
      if (job == null) return
      job.waiters = job.waiters.filter((w) => !(w.peer === from && w.rid === rid))
      if (job.waiters.length === 0) job.controller.abort(new Error('cancelled by the submitter'))
    }

    return {
      async start() {
        if (running) return
        running = true
        offs.push(
          transport.onMessage((from, m) => {
            if (m.type === 'offer') takeOffer(from, m)
            else if (m.type === 'cancel') onCancel(from, m.rid)
          })
        )
        if (blobs != null && init.serveAgentFetch !== false) offs.push(serveAgentFetch(transport, blobs))
        if (page != null) offs.push(page.on(onPage))
        payloads.start()
      },
      async stop() {
        if (!running) return
        running = false
        for (const off of offs) off()
        offs = []
        payloads.stop()
        for (const c of sending.values()) c.abort()
        sending.clear()
        for (const job of jobs.values()) job.controller.abort(new Error('the donor stopped'))
        jobs.clear()
        byRid.clear()
        tick()
      },
      stats: () => ({ ...stats, withdrawn, ...payloads.metrics() }),
      setWhileHidden(mode) {
        whileHidden = mode
        const why = away()
        if (why != null) releaseAll(why)
      }
    }
  }
}
