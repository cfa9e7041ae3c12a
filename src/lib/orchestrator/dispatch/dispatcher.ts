/**
 * Runs a plan's DAG across the mesh. Independent steps run at once; outputs
 * flow into dependants through the input mapping. Delivery is at-least-once
 * with idempotency keys: a decline, a lost lease, a closed peer or an error
 * moves the step to the next choice after the retry policy's backoff; the first
 * result for a step is committed and every later one is ignored.
 */
import type { AgentCandidate, LocalExecutor, OutcomeSink, PeerSnapshot } from '../components.ts'
import { NULL_OUTCOME_SINK } from '../components.ts'
import {
  NoEligibleAgentError,
  OrchestratorError,
  PeerUnavailableError,
  RemoteError,
  RequestTimeoutError,
  StepFailedError,
  TaskCancelledError,
  toError
} from '../errors.ts'
import { resolveInput } from '../plan/index.ts'
import { PeerWindows } from '../route/index.ts'
import { abortableSleep, isBytes, logger, shuffle, type TraceContext, type Tracer } from '../../core/index.ts'
import { preparePayload, TaskPayloads, type PayloadProgress, type PreparedPayload } from './payload-transfer.ts'
import type { Plan, Subtask } from '../plan/index.ts'
import type { ResolvedPreferences } from '../route/index.ts'
import { NoEligiblePeerError, type Router } from '../route/index.ts'
import type { RouteDecision, ScoredRoute } from '../route/index.ts'
import type { TaskMessage } from './task-protocol.ts'
import type { RunOptions, ToolScope } from '../../runtime/index.ts'
import type { TaskTransport } from './task-transport.ts'
import { Budget, BudgetExceededError } from './budget.ts'
import { InvalidOutputError, VerificationFailedError, type Judge, type StepVerifier, type VerificationMode } from '../trust/index.ts'

const log = logger('orchestrator:dispatch')

/** Options of the dispatcher, with defaults. */
export interface DispatcherInit {
  /** Wait this long for accept/decline after an offer. Default 2000 ms. */
  offerTimeoutMs?: number
  /** Deadline of one step attempt. Default 60 000 ms. */
  stepTimeoutMs?: number
  /** Streamed text shown per attempt, in characters; a donor's pieces past it are dropped and counted. Default 1 Mi. */
  maxStreamChars?: number
  /** Run on this peer when no remote peer can. Default true (needs an executor). */
  runLocallyWhenNoPeer?: boolean
  /** Offers kept in flight per donor before steps wait here (learned per donor). Default 8 to start, 64 at most. */
  window?: { initial?: number; max?: number }
  /** Largest output accepted from a donor, in bytes. Default core's MAX_PAYLOAD_BYTES (16 MiB). */
  maxPayloadBytes?: number
}

/** What the dispatcher needs. */
export interface DispatcherComponents {
  transport: TaskTransport
  router: Router
  /** This peer's runtime, for local steps. */
  executor?: LocalExecutor
  outcomes?: OutcomeSink
  /** Verification (trust/): without it every result is accepted as it comes (verification 'none'). */
  trust?: StepVerifier
  /** Spans of runs, steps, routing, attempts and verification (core/trace); donors' signed spans are verified into it. Off without it. */
  tracer?: Tracer
  /** Where the speed of donors' streamed tokens goes (route/'s `LlmSpeedBook`): the router prefers faster models by what it measured, not by their claim. */
  llmSpeed?: { observe(peer: string, tokens: number, ms: number): void }
  /** This peer's own presence (`PeerDirectory.self`): its capabilities, e.g. a loaded model, when a step falls back to running here. */
  self?: () => PeerSnapshot | undefined
}

/** How a step's result was verified (`TaskResult.steps[].verification`). */
export interface StepVerification {
  /** Results gathered (the first included). */
  replicas: number
  /** Results in the agreeing majority (1 when accepted unchecked). */
  agreed: number
  /** Peers whose results were gathered, the accepted one first. */
  peers: string[]
  /** 'verified': replicas of distinct users agreed; 'trusted': a trusted user's result, not spot-checked this time; 'unverified': no donor of another user could check it. */
  status: 'verified' | 'trusted' | 'unverified'
}

/** A step's progress, as `TaskHandle.on('step')` reports it. */
export interface StepEvent {
  taskId: string
  stepId: string
  /** 'cancelled': the task was cancelled before this step finished (sent once per unfinished step). */
  status: 'dispatched' | 'accepted' | 'retrying' | 'succeeded' | 'failed' | 'cancelled'
  attempt: number
  agent: string
  peer: string
  /** Why this event's (agent, peer) was chosen: the reasoning of the route this attempt runs on. */
  reasoning?: string
  /** The scored route this attempt runs on (its per-criterion breakdown) and what the router counted. */
  route?: StepRoute
  error?: string
  /** On 'succeeded' when verification ran. */
  verification?: StepVerification
  /** On 'succeeded': the step's output (the accepted result), so a journal can keep it as the step commits. */
  output?: unknown
}

/** The route of a step event: its score, per-criterion values and the decision's counts. */
export interface StepRoute {
  strategy: string
  score: number
  criteria: ScoredRoute['criteria']
  /** Agents offering the capabilities, and how many of them passed the hard constraints. */
  considered: number
  eligibleAgents: number
  /** Ranked (agent, peer) pairs the decision offered (winner and alternatives). */
  pairs: number
  /** 1 = the decision's winner. */
  rank: number
}

/** Progress of a step's input going to its donor (`upload`) or its output coming back (`download`). */
export interface TransferEvent {
  taskId: string
  stepId: string
  peer: string
  direction: 'upload' | 'download'
  bytes: number
  totalBytes: number
}

/** A piece of text an llm-prompt step generated, as it streams (from its donor, or from this peer). */
export interface TokenEvent {
  taskId: string
  stepId: string
  peer: string
  /** 0, 1, … in generation order. */
  seq: number
  text: string
}

/** A committed step. */
export interface StepRecord {
  id: string
  agent: string
  peer: string
  ms: number
  status: 'succeeded'
  output: unknown
  cost: number
  attempts: number
  verification?: StepVerification
}

/** A plan run. */
export interface RunPlanOptions {
  taskId: string
  input: unknown
  prefs: ResolvedPreferences
  signal: AbortSignal
  onStep?: (e: StepEvent) => void
  /** Progress of large inputs and outputs crossing the mesh (one event per chunk). */
  onTransfer?: (e: TransferEvent) => void
  /** Text of llm-prompt steps as it is generated (issue 14). */
  onTokens?: (e: TokenEvent) => void
  /** Steps pinned to one agent id (TaskRequest.agent). */
  pinned?: ReadonlyMap<string, string>
  /** `preferences.verification`; default 'adaptive' when the dispatcher has a verifier. */
  verification?: VerificationMode
  /** Route over these peers only (a health check's known-answer run on one user's peers). */
  peers?: readonly PeerSnapshot[]
  /** What the steps' agents may touch through tools (TaskRequest.tools), sent with each offer. */
  tools?: ToolScope
  /**
   * Resolves once the steps may be offered (the submitter's journal holds the task's plan, issue 13):
   * routing and the stream to the chosen donor go ahead meanwhile, but no offer is sent and nothing
   * runs here before it. A rejection fails the run.
   */
  ready?: Promise<void>
}

/** Runs plans. */
export interface Dispatcher {
  run(plan: Plan, opts: RunPlanOptions): Promise<{ steps: StepRecord[]; outputs: Map<string, unknown>; cost: number }>
  start(): Promise<void>
  stop(): Promise<void>
  /** Counters: offers, declines, leasesLost, peersLost, released, duplicatesIgnored, localRuns, committed, payload* (chunks, bytes, integrity errors). */
  stats(): Record<string, number>
}

interface Attempt {
  rid: string
  peer: string
  commit: (output: unknown, ms: number) => void
  fail: (err: Error) => void
  accepted: (leaseMs: number) => void
  renew: (leaseMs: number) => void
  /** A chunk of the output arrived: the donor is alive, re-arm the lease. */
  touch: () => void
  /** Aborted once the attempt settles (stops its transfers). */
  signal: AbortSignal
  /** Report transfer progress. */
  transfer: (direction: TransferEvent['direction'], p: PayloadProgress) => void
  /** Report streamed text. */
  tokens: (seq: number, text: string) => void
  /** true once the step is committed: later results for it are duplicates. */
  stepDone: () => boolean
}

/** One attempt chain of a step (the first result, or a replica). */
interface StepContext {
  /** Budget holder: the step id for the first result, `<step>.v<k>` for replicas. */
  holder: string
  /** Suffix of the step's idempotency key (replicas are distinct requests). */
  keySuffix: string
  /** Users whose results this step already has (a replica goes to another user). */
  excludeUsers: ReadonlySet<string>
  /** Replicas run this very agent. */
  onlyAgent?: string
  /** No step or transfer events (replicas are not what the task page draws). */
  quiet: boolean
}

/** What one attempt chain obtained (its price still held in the budget). */
interface Obtained {
  output: unknown
  ms: number
  route: ScoredRoute
  attempt: number
  ranked?: { reasoning: string; route: StepRoute }
  holder: string
}

class DeclinedError extends OrchestratorError {
  override readonly name: string = 'DeclinedError'
  static override readonly defaultMessage: string = 'The peer declined the offer'
  constructor(
    message: string,
    readonly reason: string
  ) {
    super(message)
  }
}

/** Waits for capacity (every donor full) do not use up retry attempts, up to this many. */
const MAX_CAPACITY_WAITS = 40
/** Default cap on one attempt's streamed text (about 250k tokens: past any model's context). */
const MAX_STREAM_CHARS = 1024 * 1024

/**
 * A donor that disappears mid-step (closed tab, dropped connection) is not the agent's
 * fault: re-dispatching elsewhere does not use up an attempt, up to this many times.
 * Once every peer is excluded the step runs here (if this peer has a runtime).
 */
const MAX_PEER_LOSSES = 8
/**
 * The donor declined with 'stopped' (issue 16): it is going away (its tab went to the background with
 * "donate while hidden" off, or the browser is freezing it), or it hands back a step it had accepted
 * (`released`). Like a closed peer, not the agent's fault: the step re-routes at once to another peer,
 * without spending an attempt (MAX_PEER_LOSSES bounds it).
 */
class DonorStoppedError extends PeerUnavailableError {
  override readonly name: string = 'DonorStoppedError'
  static override readonly defaultMessage: string = 'The donor stopped taking this step'
}
/** An attempt's request id on the wire. */
function ridOf(key: string, attempt: number): string {
  return `${key}#${attempt}`.replace(/[^A-Za-z0-9:#._-]/g, '_').slice(0, 128)
}

/** A lease timer that fired at least this late found this tab's event loop lagging: its verdict waits (see armLease). */
const LEASE_LAG_MS = 50
/** Superseded attempts remembered to count their late results. */
const SUPERSEDED_KEPT = 1024

class LeaseLostError extends OrchestratorError {
  override readonly name: string = 'LeaseLostError'
  static override readonly defaultMessage: string = 'The peer stopped renewing its lease'
}

/** `dispatcher(init)(components)`. */
export function dispatcher(init: DispatcherInit = {}): (components: DispatcherComponents) => Dispatcher {
  return ({ transport, router, executor, outcomes = NULL_OUTCOME_SINK, trust, tracer, llmSpeed, self: ownPresence }) => {
    const offerTimeout = init.offerTimeoutMs ?? 2000
    const stepTimeout = init.stepTimeoutMs ?? 60_000
    const attempts = new Map<string, Attempt>()
    const windows = new PeerWindows(init.window)
    /**
     * What a route costs this task: its agent's price, except on this peer or another peer of this
     * profile's user, which pays no one (no receipt is issued to oneself, so no credits move).
     */
    const priceOf = (r: ScoredRoute): number => (r.peer.id === transport.self || (trust != null && trust.userOf(r.peer.id) === trust.self) ? 0 : r.agent.price)
    const stats = {
      offers: 0,
      declines: 0,
      leasesLost: 0,
      peersLost: 0,
      /** Steps a donor handed back after accepting them (its tab went to the background or is being frozen). */
      released: 0,
      duplicatesIgnored: 0,
      localRuns: 0,
      committed: 0,
      replicas: 0,
      invalidOutputs: 0,
      verificationFailed: 0,
      receiptsSent: 0,
      /** Streamed pieces dropped: out of order, repeated, or past `maxStreamChars`. */
      tokensDropped: 0,
      /** Offers unanswered within `offerTimeoutMs`, withdrawn with a 'cancel' so a donor that accepts late does not run them. */
      offersWithdrawn: 0,
      /** Offer timers that fired late (this tab's event loop lagged) and waited as long again for an answer already sent. */
      offersGraced: 0,
      /** Lease timers that fired late (this tab's event loop lagged) and waited as long again for renewals already sent. */
      leasesGraced: 0,
      /** Attempts whose lease lapsed, withdrawn with a 'cancel' when the step went to another peer (fencing: never two donors). */
      leasesSuperseded: 0,
      /** Results of superseded attempts that arrived anyway: dropped, never committed. */
      supersededResults: 0
    }
    /** Attempts superseded after their lease lapsed (the newest SUPERSEDED_KEPT): a result of one is dropped and counted. */
    const superseded = new Set<string>()
    const maxStreamChars = init.maxStreamChars ?? MAX_STREAM_CHARS
    const payloads = new TaskPayloads(transport, { maxBytes: init.maxPayloadBytes })
    let offs: Array<() => void> = []

    const record = (o: Parameters<OutcomeSink['record']>[0]): void => {
      try {
        outcomes.record(o)
      } catch (err) {
        log.error('outcome sink threw: %s', toError(err).message)
      }
    }

    function onMessage(from: string, m: TaskMessage): void {
      if (m.type === 'receipt') {
        // A submitter paying this profile for a verified result (checked by trust).
        if (trust != null) void trust.receive(from, m.receipt)
        return
      }
      if (m.type === 'spans-seal') {
        tracer?.receiveSeal(from, m.seal)
        return
      }
      const a = attempts.get(m.rid)
      if (a == null || a.peer !== from) {
        if (m.type === 'result') {
          if (superseded.has(`${from}\n${m.rid}`)) stats.supersededResults++
          else stats.duplicatesIgnored++
        }
        return
      }
      if (tracer != null && (m.type === 'result' || m.type === 'error') && m.spans != null) {
        // The donor's spans: verified later against its seal (signed by the user behind that peer, when trust knows it).
        const user = trust?.userOf(from)
        tracer.receive(from, m.spans, user?.startsWith('ed25519:') ? user : undefined)
      }
      switch (m.type) {
        case 'accept':
          a.accepted(m.leaseMs)
          break
        case 'lease-renew':
          a.renew(m.leaseMs)
          break
        case 'tokens':
          a.touch()
          a.tokens(m.seq, m.text)
          break
        case 'decline':
          stats.declines++
          if (m.reason === 'stopped') {
            if (m.released === true) stats.released++
            a.fail(new DonorStoppedError(`${from} ${m.released === true ? 'handed the step back' : 'declined'}: ${m.message ?? 'it stopped taking steps'}`))
          } else a.fail(new DeclinedError(`${from} declined: ${m.reason}`, m.reason))
          break
        case 'error':
          a.fail(new RemoteError(m.name, `${from}: ${m.name}: ${m.message}`))
          break
        case 'result':
          if (a.stepDone()) stats.duplicatesIgnored++
          else if (m.payload == null) a.commit(m.output, m.ms)
          else {
            // A large or binary output: chunks follow on the same rid; each one keeps the lease alive.
            a.touch()
            payloads
              .receive(from, m.rid, m.payload, {
                signal: a.signal,
                onProgress: (p) => {
                  a.touch()
                  a.transfer('download', p)
                }
              })
              .then(
                (output) => {
                  if (a.stepDone()) stats.duplicatesIgnored++
                  else a.commit(output, m.ms)
                },
                (err: unknown) => {
                  a.fail(toError(err))
                }
              )
          }
          break
      }
    }

    function onPeerClosed(peer: string): void {
      for (const a of attempts.values()) {
        if (a.peer === peer) {
          stats.peersLost++
          a.fail(new PeerUnavailableError(`${peer} closed while running a step`))
        }
      }
    }

    async function attemptStep(step: Subtask, input: unknown, opts: RunPlanOptions, budget: Budget, ctx: StepContext): Promise<Obtained> {
      const { prefs, signal, taskId } = opts
      const policy = prefs.retry_policy
      const key = `${taskId}/${step.id}${ctx.keySuffix}`
      const holder = ctx.holder
      const pin = ctx.onlyAgent ?? opts.pinned?.get(step.id)
      const onlyAgents = pin != null ? new Set([pin]) : undefined
      const onStep = ctx.quiet ? undefined : opts.onStep
      const traceParent = tracer?.scope(`${taskId}/${step.id}`) ?? tracer?.scope(taskId)
      /** Peers of users this step already has a result from (excluded when routing a replica). */
      const sameUser = new Set<string>()
      const otherUser = (r: ScoredRoute): boolean => ctx.excludeUsers.size === 0 || trust == null || !ctx.excludeUsers.has(trust.userOf(r.peer.id))
      const failedPairs = new Set<string>()
      const failedPeers = new Set<string>()
      /** Routes priced above what this step could reserve when they came up. */
      const tooDear = new Set<string>()
      let queue: ScoredRoute[] = []
      // The decision that ranked each (agent, peer) pair: an attempt reports its own route's reasoning.
      const ranked = new Map<string, { reasoning: string; route: StepRoute }>()
      const rank = (d: RouteDecision, suffix = ''): void => {
        const all = [d.winner, ...d.alternatives]
        all.forEach((r, i) => {
          const k = `${r.agent.id}@${r.peer.id}`
          if (ranked.has(k)) return
          const reasoning =
            i === 0
              ? `${d.reasoning}${suffix}`
              : `Chose ${r.agent.name}@${r.agent.version} on peer ${r.peer.id.slice(0, 4)}…${r.peer.id.slice(-2)} as choice ${i + 1} of ${all.length} ranked (agent, peer) pairs (score ${Number(r.score.toFixed(3))}), after an earlier choice failed${suffix}`
          ranked.set(k, {
            reasoning,
            route: {
              strategy: d.strategy,
              score: r.score,
              criteria: r.criteria,
              considered: d.considered,
              eligibleAgents: d.eligible,
              pairs: all.length,
              rank: i + 1
            }
          })
        })
      }
      let done = false
      let committedValue: { output: unknown; ms: number; route: ScoredRoute; attempt: number; rid?: string } | undefined
      let lastError: Error | undefined
      const live = new Set<string>()
      /** Attempts of this step whose lease lapsed (rid → peer): superseded once the step goes to another peer. */
      const lapsed = new Map<string, string>()
      /**
       * Fencing (issue 16): a step whose lease lapsed at one donor and that now goes to another
       * withdraws the lapsed claim first ('cancel': the donor aborts the run, and does not
       * answer or count it), and a result of it that arrives anyway is dropped, never committed.
       * A re-offer to the same donor keeps the claim: its idempotency cache joins the run.
       */
      const supersede = (peer: string): void => {
        for (const [rid, at] of lapsed) {
          if (at === peer) continue
          lapsed.delete(rid)
          live.delete(rid)
          attempts.delete(rid)
          superseded.add(`${at}\n${rid}`)
          if (superseded.size > SUPERSEDED_KEPT) superseded.delete(superseded.values().next().value!)
          stats.leasesSuperseded++
          transport.send(at, { type: 'cancel', rid }).catch(() => {})
        }
      }
      // Late results of earlier attempts still count until the step commits; one
      // arriving ends the attempt in flight.
      const wakeCommit = (): void => {
        for (const rid of live) attempts.get(rid)?.fail(new OrchestratorError('superseded by a late result of an earlier attempt'))
      }

      // Pairs whose lease or offer timed out: messages may have been lost, so the
      // same donor is worth a re-offer (its idempotency cache answers), after the others.
      const later: ScoredRoute[] = []
      const pairKey = (r: ScoredRoute): string => `${r.agent.id}@${r.peer.id}`
      const usable = (r: ScoredRoute): boolean =>
        !failedPairs.has(pairKey(r)) && !failedPeers.has(r.peer.id) && !tooDear.has(pairKey(r)) && !later.some((l) => pairKey(l) === pairKey(r)) && otherUser(r)
      const nextRoute = (): ScoredRoute | undefined => {
        const r = pickRoute()
        return r ?? later.shift()
      }
      /** The step's budget sentence: what it needs, what is left of max_cost and what other steps hold. */
      const overBudget = (price: number): BudgetExceededError => {
        const held = budget.reserved - (budget.availableTo(holder) - budget.available())
        return new BudgetExceededError(
          step.id,
          `Step "${step.id}" (${step.capabilities.join(', ')}) needs ${round(price)} credits but only ${round(budget.availableTo(holder))} of max_cost ${budget.limit} are left (${round(budget.spent)} spent${held > 0 ? `, ${round(held)} held by steps running now` : ''})`
        )
      }
      /** Route price the router would pick without the budget: proof the budget is what rules every route out. */
      const cheapestBeyondBudget = (): number | undefined => {
        if (budget.limit === Infinity) return undefined
        try {
          const d = router.route(step.capabilities, prefs, { budget: Infinity, excludePeers: failedPeers, onlyAgents })
          return Math.min(...[d.winner, ...d.alternatives].map(priceOf))
        } catch {
          return undefined
        }
      }
      /**
       * The next route whose price this step can reserve (the reservation is taken here, before any await,
       * so steps launched together see each other's holds). Routes it cannot afford are passed over.
       */
      const reserveNext = (): ScoredRoute | undefined => {
        let cheapestSkipped: number | undefined
        for (;;) {
          let r: ScoredRoute | undefined
          try {
            r = nextRoute()
          } catch (err) {
            if (err instanceof NoEligibleAgentError) {
              const need = cheapestSkipped ?? cheapestBeyondBudget()
              if (need != null && !budget.fits(holder, need)) throw overBudget(need)
            }
            throw err
          }
          if (r == null) {
            if (cheapestSkipped != null && lastError == null) throw overBudget(cheapestSkipped)
            return undefined
          }
          if (budget.reserve(holder, priceOf(r))) return r
          tooDear.add(pairKey(r))
          cheapestSkipped = Math.min(cheapestSkipped ?? Infinity, priceOf(r))
        }
      }
      const pickRoute = (): ScoredRoute | undefined => {
        for (;;) {
          const r = queue.shift()
          if (r == null) break
          if (usable(r)) return r
        }
        try {
          for (;;) {
            const excludePeers = sameUser.size === 0 ? failedPeers : new Set([...failedPeers, ...sameUser])
            const d = router.route(step.capabilities, prefs, { budget: budget.availableTo(holder), excludePeers, onlyAgents, peers: opts.peers })
            rank(d)
            // A replica needs a donor of another user: peers of users this step already has are routed around.
            const others = [d.winner, ...d.alternatives].filter((r) => !otherUser(r) && !sameUser.has(r.peer.id))
            const all = [d.winner, ...d.alternatives].filter(usable)
            if (all.length === 0 && others.length > 0) {
              for (const r of others) sameUser.add(r.peer.id)
              continue
            }
            // A replica goes to a donor drawn at random among the other users' (BOINC: colluders cannot
            // count on checking each other); otherwise the router's order.
            if (ctx.excludeUsers.size > 0) shuffle(all)
            // Donors with room in their window first (stable otherwise).
            queue = [...all.filter((r) => windows.available(r.peer.id)), ...all.filter((r) => !windows.available(r.peer.id))]
            break
          }
        } catch (err) {
          // A replica never falls back to this peer: the submitter's own runtime is not a donor (and 'nothing ran on the submitter' holds).
          if (!(err instanceof NoEligiblePeerError) || executor == null || init.runLocallyWhenNoPeer === false || ctx.excludeUsers.size > 0) {
            if (later.length > 0 || (err instanceof NoEligibleAgentError && lastError != null)) return undefined
            throw err
          }
          // This peer with what it advertises (a loaded model lets an llm-prompt step run here too).
          const self: PeerSnapshot = {
            id: transport.self,
            rttMs: 0,
            freeWorkers: Math.max(1, executor.freeWorkers()),
            donating: true,
            capabilities: ownPresence?.()?.capabilities ?? []
          }
          // Running here pays no one, so max_cost does not rule this peer's agents out.
          const d = router.route(step.capabilities, prefs, { budget: Infinity, peers: [self], onlyAgents })
          rank(d, ' (no remote peer could run it, so it runs here)')
          queue = [d.winner, ...d.alternatives].filter(usable)
        }
        return queue.shift()
      }

      // The input is encoded and hashed once per step, on its first remote attempt.
      let prepared: PreparedPayload | undefined
      const prepare = (): PreparedPayload => {
        prepared ??= preparePayload(input)
        return prepared
      }
      const inputSize = (): number => prepared?.size ?? size(input)
      /** The outcome record of a failed attempt (learning and the journal read it). */
      const recordFailure = (route: ScoredRoute, attemptNo: number, e: Error, started: number): void => {
        record({
          taskId,
          stepId: step.id,
          agentId: route.agent.id,
          peerId: route.peer.id,
          capabilities: step.capabilities,
          attempt: attemptNo,
          success: false,
          durationMs: Date.now() - started,
          cost: 0,
          errorName: e.name,
          errorMessage: e.message,
          inputSize: inputSize(),
          outputSize: 0,
          at: Date.now()
        })
      }

      let capacityWaits = 0
      let peerLosses = 0
      let waitingForCapacity = false
      for (let attempt = 1; attempt <= policy.max_attempts; attempt++) {
        if (signal.aborted) throw new TaskCancelledError()
        // Any hold of the previous attempt was released when it failed: reserve this route's price anew.
        const routing = traceParent != null ? tracer!.start('route', traceParent, { 'step.id': step.id, attempt }) : undefined
        const route = reserveNext()
        routing?.end(route == null ? 'error' : 'ok', route == null ? { error: 'no route left' } : { 'agent.id': route.agent.id, 'peer.id': route.peer.id })
        if (route == null) break
        if (waitingForCapacity) {
          // Every choice so far was busy: wait for a worker to free up, without spending an attempt.
          onStep?.({ taskId, stepId: step.id, status: 'retrying', attempt, agent: route.agent.id, peer: route.peer.id, error: lastError?.message })
          await sleep(Math.min(1000, policy.backoff_ms * 1.5 ** Math.min(capacityWaits, 10)), signal)
          if (committedValue != null) break
        } else if (attempt > 1) {
          onStep?.({ taskId, stepId: step.id, status: 'retrying', attempt, agent: route.agent.id, peer: route.peer.id, error: lastError?.message })
          await sleep(policy.backoff_ms * policy.backoff_multiplier ** (attempt - 2), signal)
          if (committedValue != null) break
        }
        waitingForCapacity = false
        const started = Date.now()
        const event = (status: StepEvent['status'], error?: string): void =>
          onStep?.({
            taskId,
            stepId: step.id,
            status,
            attempt,
            agent: route.agent.id,
            peer: route.peer.id,
            ...ranked.get(pairKey(route)),
            ...(error != null ? { error } : {})
          })
        const remote = !(route.peer.id === transport.self && executor != null)
        // Wait here, not at the donor, while our window there is full (it does not spend an attempt).
        const place = remote ? await windows.acquire(route.peer.id, signal, offerTimeout) : { accepted: () => {}, release: () => {} }
        if (opts.ready != null) {
          // The stream to the donor opens while the plan is being saved; the offer waits for the save.
          if (remote) transport.connect?.(route.peer.id, { signal }).catch(() => {})
          try {
            await untilReady(opts.ready, signal)
          } catch (err) {
            place.release()
            throw err
          }
        }
        if (committedValue != null) {
          place.release()
          break
        }
        supersede(route.peer.id)
        event('dispatched')
        const span =
          traceParent != null
            ? tracer!.start(
                remote ? 'dispatch.attempt' : 'dispatch.local',
                traceParent,
                { 'step.id': step.id, attempt, 'agent.id': route.agent.id, 'peer.id': route.peer.id },
                remote ? 'client' : 'internal'
              )
            : undefined
        // A step run here records its time to first token on its span, as a donor's donor.run does.
        let localFirstTokenMs: number | undefined
        try {
          const r = !remote
            ? await runLocal(
                route.agent,
                input,
                signal,
                firstTokenTimed(ctx.quiet ? undefined : localTokens(opts, step.id), (ms) => (localFirstTokenMs = ms)),
                {
                  taskId: opts.taskId,
                  stepId: step.id,
                  ...(transport != null ? { from: transport.self } : {}),
                  ...(opts.tools != null ? { scope: opts.tools } : {})
                }
              )
            : await runRemote(
                route,
                attempt,
                key,
                prepare(),
                ctx.quiet ? { ...opts, onTransfer: undefined, onTokens: undefined } : opts,
                signal,
                () => done,
                (v) => {
                  if (done) {
                    stats.duplicatesIgnored++
                    return
                  }
                  if (refuse(v.route, v.output) != null) return
                  done = true
                  committedValue = { output: v.output, ms: v.ms, route: v.route, attempt: v.attempt, rid: v.rid }
                  wakeCommit()
                },
                () => {
                  place.accepted()
                  event('accepted')
                },
                live,
                span?.traceparent
              )
          if (!done) {
            // A donor's output must match the agent's output schema before anything else (a wrong result otherwise).
            const bad = remote ? refuse(route, r.output) : undefined
            if (bad != null) throw new InvalidOutputError(`${route.peer.id} returned an output that does not match ${route.agent.name}'s output schema: ${bad}`)
            done = true
            committedValue = { ...r, route, attempt, rid: r.rid }
          }
          if (remote) windows.ok(route.peer.id)
          else if (localFirstTokenMs != null) span?.end('ok', { 'llm.firstTokenMs': Math.round(localFirstTokenMs * 100) / 100 })
          break
        } catch (err) {
          span?.end('error', { error: toError(err).message.slice(0, 200) })
          if (remote && err instanceof DeclinedError && err.reason === 'full') windows.full(route.peer.id)
          if (committedValue != null) break
          budget.release(holder)
          const e = toError(err)
          if (signal.aborted) throw new TaskCancelledError(undefined, { cause: e })
          lastError = e
          if (e instanceof DeclinedError && e.reason === 'full' && capacityWaits < MAX_CAPACITY_WAITS) {
            capacityWaits++
            later.push(route)
            waitingForCapacity = queue.length === 0
            // The event names the attempt that failed; the loop then runs it again (the wait is free).
            event('failed', e.message)
            attempt--
            continue
          }
          if (e instanceof PeerUnavailableError && route.peer.id !== transport.self && peerLosses < MAX_PEER_LOSSES) {
            peerLosses++
            failedPeers.add(route.peer.id)
            event('failed', e.message)
            recordFailure(route, attempt, e, started)
            attempt--
            continue
          }
          if (e instanceof LeaseLostError || e instanceof RequestTimeoutError) later.push(route)
          else if (e instanceof PeerUnavailableError) failedPeers.add(route.peer.id)
          else failedPairs.add(pairKey(route))
          if (e instanceof LeaseLostError) {
            stats.leasesLost++
            lapsed.set(ridOf(key, attempt), route.peer.id)
          }
          event('failed', e.message)
          recordFailure(route, attempt, e, started)
        } finally {
          span?.end()
          place.release()
        }
      }
      for (const rid of live) {
        const a = attempts.get(rid)
        attempts.delete(rid)
        // Tell donors of attempts we gave up on to stop (harmless if they already finished).
        if (a != null && committedValue?.rid !== rid) transport.send(a.peer, { type: 'cancel', rid }).catch(() => {})
      }
      const c = committedValue as { output: unknown; ms: number; route: ScoredRoute; attempt: number } | undefined
      if (signal.aborted) {
        // Cancelled while a result was on its way: nothing is committed after a cancel.
        budget.release(holder)
        throw new TaskCancelledError()
      }
      if (c == null) {
        budget.release(holder)
        throw new StepFailedError(
          step.id,
          `Step "${step.id}" (${step.capabilities.join(', ')}) failed on every choice tried${lastError != null ? `; last error: ${lastError.message}` : ''}`,
          { cause: lastError }
        )
      }
      return { output: c.output, ms: c.ms, route: c.route, attempt: c.attempt, ranked: ranked.get(pairKey(c.route)), holder }
    }

    /** Why a remote output is refused (schema), after telling trust; undefined when it is fine. */
    function refuse(route: ScoredRoute, output: unknown): string | undefined {
      if (trust == null) return undefined
      const bad = trust.checkOutput(route.agent.id, output)
      if (bad != null) {
        stats.invalidOutputs++
        trust.refused(trust.userOf(route.peer.id), route.agent.id)
      }
      return bad
    }

    /**
     * A step: its first result, then as many replicas on donors of other users as
     * verification asks (trust/'s policy), until a strict majority of distinct users
     * agrees; every result gathered holds max_cost while it runs, and those a receipt pays spend it.
     */
    async function runStep(step: Subtask, input: unknown, opts: RunPlanOptions, budget: Budget): Promise<StepRecord> {
      const mode: VerificationMode = trust == null ? 'none' : (opts.verification ?? 'adaptive')
      const first = await attemptStep(step, input, opts, budget, { holder: step.id, keySuffix: '', excludeUsers: new Set(), quiet: false })
      // With no verifier there is no ledger: the price is what the step costs.
      if (trust == null) return commitStep(step, input, opts, budget, first, [first], undefined, new Set([first]))
      const agentId = first.route.agent.id
      const results = [{ r: first, user: trust.userOf(first.route.peer.id) }]
      if (mode === 'none') {
        // Taken unchecked at the submitter's word: paid (a receipt), not judged.
        const paid = await settle(opts, step, agentId, 'accepted', [{ ...results[0], agreed: true }])
        return commitStep(step, input, opts, budget, first, [first], undefined, paid)
      }
      const decision = trust.decide(results[0].user, agentId, mode)
      if (!decision.replicate) {
        // This profile's own result is trusted by definition; 'none' never reaches here.
        const status = decision.reason === 'trusted' || decision.reason === 'self' ? 'trusted' : 'unverified'
        const paid = decision.reason === 'trusted' ? await settle(opts, step, agentId, 'trusted', [{ ...results[0], agreed: true }]) : new Set<Obtained>()
        return commitStep(step, input, opts, budget, first, [first], { replicas: 1, agreed: 1, peers: [first.route.peer.id], status }, paid)
      }
      // Results grouped by agreement (each group's first result is its representative).
      const groups: Array<typeof results> = [[results[0]]]
      const judge = judgeRunner(opts.signal)
      let majority: typeof results | undefined
      let lastError: Error | undefined
      const verifyParent = tracer?.scope(`${opts.taskId}/${step.id}`)
      const verifying = verifyParent != null ? tracer!.start('verify', verifyParent, { 'step.id': step.id, mode }) : undefined
      try {
        while (majority == null && results.length < trust.maxReplicas) {
          let replica: Obtained
          try {
            replica = await attemptStep(step, input, opts, budget, {
              holder: `${step.id}.v${results.length + 1}`,
              keySuffix: `.v${results.length + 1}`,
              excludeUsers: new Set(results.map((x) => x.user)),
              onlyAgent: agentId,
              quiet: true
            })
          } catch (err) {
            if (opts.signal.aborted) throw err
            lastError = toError(err)
            break // no donor of another user could give one more result
          }
          stats.replicas++
          const entry = { r: replica, user: trust.userOf(replica.route.peer.id) }
          results.push(entry)
          let placed = false
          for (const g of groups) {
            if (await trust.agree(agentId, g[0].r.output, replica.output, { judge, signal: opts.signal })) {
              g.push(entry)
              placed = true
              break
            }
          }
          if (!placed) groups.push([entry])
          const best = groups.reduce((a, b) => (b.length > a.length ? b : a))
          if (best.length >= 2 && best.length * 2 > results.length) majority = best
        }
      } catch (err) {
        verifying?.end('error', { error: toError(err).message.slice(0, 200) })
        for (const x of results) budget.release(x.r.holder)
        throw err
      }
      verifying?.end(majority != null ? 'ok' : 'error', { replicas: results.length, agreed: majority?.length ?? 0 })
      if (majority == null) {
        // One result and nobody else to check it: adaptive accepts it unverified (no credit, no trust); anything else fails.
        if (results.length === 1 && mode === 'adaptive' && !(lastError instanceof BudgetExceededError)) {
          return commitStep(
            step,
            input,
            opts,
            budget,
            first,
            [first],
            { replicas: 1, agreed: 1, peers: [first.route.peer.id], status: 'unverified' },
            new Set()
          )
        }
        stats.verificationFailed++
        for (const x of results) budget.release(x.r.holder)
        await settle(
          opts,
          step,
          agentId,
          'failed',
          results.map((x) => ({ ...x, agreed: false }))
        )
        throw new VerificationFailedError(
          step.id,
          results.length === 1
            ? `Step "${step.id}" could not be verified: no donor of another user could run it${lastError != null ? ` (${lastError.message})` : ''}. Try again when more donors are online, or set preferences.verification to 'adaptive' or 'none'`
            : `Step "${step.id}" could not be verified: ${results.length} results from ${results.length} different users and no strict majority agrees${lastError != null ? ` (no further donor: ${lastError.message})` : ''}`,
          { cause: lastError }
        )
      }
      const winners = new Set(majority)
      const accepted = majority.includes(results[0]) ? results[0] : majority[0]
      const paid = await settle(
        opts,
        step,
        agentId,
        'verified',
        results.map((x) => ({ ...x, agreed: winners.has(x) }))
      )
      return commitStep(
        step,
        input,
        opts,
        budget,
        accepted.r,
        results.map((x) => x.r),
        {
          replicas: results.length,
          agreed: majority.length,
          peers: [accepted.r.route.peer.id, ...results.filter((x) => x !== accepted).map((x) => x.r.route.peer.id)],
          status: 'verified'
        },
        paid,
        new Set(results.filter((x) => !winners.has(x)).map((x) => x.r))
      )
    }

    /**
     * Tell trust how a step ended and send the receipts it signs to their donors. Resolves with
     * the results a receipt pays: only those cost the task anything (commitStep).
     */
    async function settle(
      opts: RunPlanOptions,
      step: Subtask,
      agentId: string,
      outcome: 'verified' | 'trusted' | 'accepted' | 'failed',
      results: Array<{ r: Obtained; user: string; agreed: boolean }>
    ): Promise<Set<Obtained>> {
      const paid = new Set<Obtained>()
      if (trust == null) return paid
      try {
        const receipts = await trust.settle({
          taskId: opts.taskId,
          stepId: step.id,
          agentId,
          outcome,
          results: results.map((x) => ({ peer: x.r.route.peer.id, user: x.user, ms: x.r.ms, price: x.r.route.agent.price, agreed: x.agreed }))
        })
        for (const { peer, receipt } of receipts) {
          const result = results.find((x) => x.r.route.peer.id === peer)
          if (result != null) paid.add(result.r)
          transport
            .send(peer, { type: 'receipt', rid: `${opts.taskId}/${step.id}`.replace(/[^A-Za-z0-9:#._-]/g, '_').slice(0, 128), receipt })
            .then(() => {
              stats.receiptsSent++
            })
            .catch((err: unknown) => {
              log('sending a receipt to %s failed: %s', peer, toError(err).message)
            })
        }
      } catch (err) {
        log.error('trust settle failed: %s', toError(err).message)
      }
      return paid
    }

    /** Runs a judge agent (a manifest's `judge: <agent id>`) on this peer's runtime. */
    function judgeRunner(signal: AbortSignal): Judge {
      return async (agent, a, b) => {
        if (executor == null || !executor.has(agent)) throw new VerificationFailedError(undefined, `the judge agent ${agent} is not installed on this peer`)
        const { output } = await executor.run(agent, { a, b }, { signal, timeoutMs: stepTimeout })
        if (typeof output === 'boolean') return output
        const o = output as { agree?: unknown; equal?: unknown } | null
        return o?.agree === true || o?.equal === true
      }
    }

    /**
     * Commit a step: the accepted result is the step's output; the results a receipt pays (`paid`)
     * cost the task their price, and the others (unverified, outvoted, this profile's own) nothing:
     * a task's cost is the credits it moved, as the ledger shows them.
     */
    function commitStep(
      step: Subtask,
      input: unknown,
      opts: RunPlanOptions,
      budget: Budget,
      c: Obtained,
      all: Obtained[],
      verification: StepVerification | undefined,
      paid: ReadonlySet<Obtained>,
      outvoted: ReadonlySet<Obtained> = new Set()
    ): StepRecord {
      stats.committed++
      // A paid hold becomes spent, at the price of the route that answered (a late result of an
      // earlier attempt may differ); an unpaid one is given back to max_cost.
      let cost = 0
      for (const x of all) {
        if (paid.has(x)) cost += budget.commit(x.holder, priceOf(x.route))
        else budget.release(x.holder)
      }
      opts.onStep?.({
        taskId: opts.taskId,
        stepId: step.id,
        status: 'succeeded',
        attempt: c.attempt,
        agent: c.route.agent.id,
        peer: c.route.peer.id,
        ...c.ranked,
        ...(verification != null ? { verification } : {}),
        output: c.output
      })
      const inputSize = size(input)
      for (const x of all) {
        const lost = outvoted.has(x)
        record({
          taskId: opts.taskId,
          stepId: step.id,
          agentId: x.route.agent.id,
          peerId: x.route.peer.id,
          capabilities: step.capabilities,
          attempt: x.attempt,
          success: !lost,
          durationMs: x.ms,
          cost: x.route.agent.price,
          ...(lost ? { errorName: 'InvalidOutputError', errorMessage: 'outvoted by the replicas of other users' } : {}),
          inputSize,
          outputSize: size(x.output),
          at: Date.now()
        })
      }
      return {
        id: step.id,
        agent: c.route.agent.id,
        peer: c.route.peer.id,
        ms: c.ms,
        status: 'succeeded',
        output: c.output,
        cost: round(cost),
        attempts: c.attempt,
        ...(verification != null ? { verification } : {})
      }
    }

    async function runLocal(
      agent: AgentCandidate,
      input: unknown,
      signal: AbortSignal,
      onToken?: (text: string) => void,
      task?: RunOptions['task']
    ): Promise<{ output: unknown; ms: number; rid?: string }> {
      stats.localRuns++
      if (!executor!.has(agent.id)) throw new PeerUnavailableError(`agent ${agent.name} is not installed on this peer`)
      return await executor!.run(agent.id, input, {
        signal,
        timeoutMs: stepTimeout,
        ...(onToken != null ? { onToken } : {}),
        ...(task != null ? { task } : {})
      })
    }

    /** Wraps a token listener to report the time from now to its first token (undefined stays undefined). */
    function firstTokenTimed(onToken: ((text: string) => void) | undefined, first: (ms: number) => void): ((text: string) => void) | undefined {
      if (onToken == null) return undefined
      const start = performance.now()
      let seen = false
      return (text) => {
        if (!seen) {
          seen = true
          first(performance.now() - start)
        }
        onToken(text)
      }
    }

    /** A step run here streams its text to the same listener as a donor's. */
    function localTokens(opts: RunPlanOptions, stepId: string): ((text: string) => void) | undefined {
      const listener = opts.onTokens
      if (listener == null || transport == null) return undefined
      let seq = 0
      return (text) => {
        try {
          listener({ taskId: opts.taskId, stepId, peer: transport.self, seq: seq++, text })
        } catch (err) {
          log.error('a token listener threw: %s', toError(err).message)
        }
      }
    }

    function runRemote(
      route: ScoredRoute,
      attempt: number,
      key: string,
      input: PreparedPayload,
      opts: RunPlanOptions,
      signal: AbortSignal,
      stepDone: () => boolean,
      lateCommit: (v: { output: unknown; ms: number; route: ScoredRoute; attempt: number; rid: string }) => void,
      onAccepted: () => void,
      live: Set<string>,
      traceparent?: string
    ): Promise<{ output: unknown; ms: number; rid?: string }> {
      const rid = ridOf(key, attempt)
      const peer = route.peer.id
      const stepId = key.split('/').slice(1).join('/')
      return new Promise((resolve, reject) => {
        let settled = false
        let timer: ReturnType<typeof setTimeout> | undefined
        let lease = offerTimeout
        let uploading = false
        let nextSeq = 0
        let streamed = 0
        /** When the first and the last streamed piece arrived (the donor's generation speed, measured here). */
        let firstPieceAt = 0
        let lastPieceAt = 0
        const transfers = new AbortController()
        const deadline = Date.now() + stepTimeout
        const arm = (ms: number, err: () => Error): void => {
          clearTimeout(timer)
          timer = setTimeout(() => {
            a.fail(err())
          }, ms)
        }
        /**
         * The lease's timer: a lease runs out only once this tab had the time to read what
         * arrived. Under event-loop lag (a busy tab, the simulator's 100 peers a thread) the
         * timer fires late, while the donor's renewals sent meanwhile wait behind it: judged at
         * once, a donor still running the step lost its lease and the step ran on a second one
         * (issue 16). A timer that fired late waits as long again (at most a lease) and one on
         * time waits one task, and a renewal read meanwhile re-arms it.
         */
        const armLease = (ms: number): void => {
          armJudged(
            ms,
            () => lease,
            () => stats.leasesGraced++,
            () => leaseLost()
          )
        }
        /**
         * Arm the attempt's timer for `ms`, judged once this tab had the time to read what
         * arrived: one that fired at least LEASE_LAG_MS late waits as long again (at most
         * `maxGrace()`, counted by `graced`), one on time waits one task; then `err()` fails
         * the attempt. The lease's timer and the offer's are judged alike.
         */
        const armJudged = (ms: number, maxGrace: () => number, graced: () => void, err: () => Error): void => {
          clearTimeout(timer)
          const due = Date.now() + ms
          timer = setTimeout(() => {
            const late = Date.now() - due
            const grace = late >= LEASE_LAG_MS ? Math.min(maxGrace(), late) : 0
            if (grace > 0) graced()
            arm(grace, err)
          }, ms)
        }
        const onAbort = (): void => {
          transport.send(peer, { type: 'cancel', rid }).catch(() => {})
          a.fail(new TaskCancelledError())
        }
        const settle = (): void => {
          settled = true
          clearTimeout(timer)
          signal.removeEventListener('abort', onAbort)
          transfers.abort()
        }
        const leaseLost = (): Error => new LeaseLostError(`${peer} stopped renewing its lease`)
        const a: Attempt = {
          rid,
          peer,
          stepDone,
          signal: transfers.signal,
          accepted: (leaseMs) => {
            if (settled) return
            onAccepted()
            lease = leaseMs
            armLease(Math.min(leaseMs, deadline - Date.now()))
            if (!input.inline && input.bytes != null && !uploading) {
              // The donor took the step: now send it the input's chunks.
              uploading = true
              const bytes = input.bytes
              payloads
                .send(peer, rid, bytes, {
                  signal: transfers.signal,
                  onProgress: (p) => {
                    a.transfer('upload', p)
                  }
                })
                .catch((err: unknown) => {
                  a.fail(
                    err instanceof OrchestratorError
                      ? err
                      : new PeerUnavailableError(`sending the input to ${peer} failed: ${toError(err).message}`, { cause: err })
                  )
                })
            }
          },
          renew: (leaseMs) => {
            if (settled) return
            lease = leaseMs
            armLease(Math.min(leaseMs, deadline - Date.now()))
          },
          touch: () => {
            if (!settled) armLease(Math.min(lease, deadline - Date.now()))
          },
          transfer: (direction, p) => {
            if (settled) return
            try {
              opts.onTransfer?.({ taskId: opts.taskId, stepId, peer, direction, bytes: p.bytes, totalBytes: p.totalBytes })
            } catch (err) {
              log.error('a transfer listener threw: %s', toError(err).message)
            }
          },
          tokens: (seq, text) => {
            if (settled) return
            // Pieces come in order on one stream: a repeated or skipped piece, or text past the
            // per-attempt cap (a donor that never stops), is dropped and counted, never shown.
            streamed += text.length
            if (seq !== nextSeq || streamed > maxStreamChars) {
              stats.tokensDropped++
              return
            }
            nextSeq++
            lastPieceAt = performance.now()
            if (nextSeq === 1) firstPieceAt = lastPieceAt
            try {
              opts.onTokens?.({ taskId: opts.taskId, stepId, peer, seq, text })
            } catch (err) {
              log.error('a token listener threw: %s', toError(err).message)
            }
          },
          fail: (err) => {
            if (!settled) {
              settle()
              reject(err)
            }
          },
          commit: (output, ms) => {
            // A result is welcome even after this attempt was given up on: commit it once.
            if (settled) {
              lateCommit({ output, ms, route, attempt, rid })
              return
            }
            settle()
            if (nextSeq >= 2) llmSpeed?.observe(peer, nextSeq, lastPieceAt - firstPieceAt)
            resolve({ output, ms, rid })
          }
        }
        attempts.set(rid, a)
        live.add(rid)
        signal.addEventListener('abort', onAbort, { once: true })
        // The offer's timer, judged as the lease's is (armLease): one that fired while this tab
        // lagged waits as long again (at most the offer timeout), since the donor's answer may be
        // queued behind it. Judged at once, a donor that had accepted in time was withdrawn and the
        // step offered to another (issue 16: at 200 simulated peers, one in 92 tasks ran twice).
        armJudged(
          offerTimeout,
          () => offerTimeout,
          () => stats.offersGraced++,
          () => {
            // Given up on (the step moves on to another choice): a donor that accepts late must not run it (issue 14).
            stats.offersWithdrawn++
            transport.send(peer, { type: 'cancel', rid }).catch(() => {})
            return new RequestTimeoutError(`${peer} did not answer the offer in ${offerTimeout} ms`)
          }
        )
        stats.offers++
        const userClaim = trust?.ownClaim?.()
        transport
          .send(peer, {
            type: 'offer',
            rid,
            taskId: key.split('/')[0],
            stepId,
            attempt,
            idempotencyKey: key,
            agentId: route.agent.id,
            ...(input.inline ? { input: input.value } : { payload: input.payload }),
            deadline,
            ...(route.agent.moduleSha256 != null ? { moduleSha256: route.agent.moduleSha256 } : {}),
            ...(route.agent.holders != null ? { holders: route.agent.holders.slice(0, 8) } : {}),
            ...(traceparent != null ? { traceparent } : {}),
            ...(opts.tools != null ? { tools: opts.tools } : {}),
            ...(userClaim != null ? { user: userClaim } : {})
          })
          .catch((err) => {
            a.fail(err instanceof OrchestratorError ? err : new PeerUnavailableError(toError(err).message, { cause: err }))
          })
      })
    }

    async function run(plan: Plan, opts: RunPlanOptions): Promise<{ steps: StepRecord[]; outputs: Map<string, unknown>; cost: number }> {
      // A Blob or File input travels as its bytes (API.md TaskRequest.input).
      const taskInput = typeof Blob !== 'undefined' && opts.input instanceof Blob ? new Uint8Array(await opts.input.arrayBuffer()) : opts.input
      const outputs = new Map<string, unknown>()
      const records = new Map<string, StepRecord>()
      const started = new Set<string>()
      const inner = new AbortController()
      const signal = AbortSignal.any([opts.signal, inner.signal])
      const sequential = plan.execution_mode === 'sequential'
      // max_cost is shared: each step holds its route's price while it runs (see budget.ts).
      const budget = new Budget(opts.prefs.max_cost ?? Infinity)
      // Where each step was last seen, so its 'cancelled' event names the agent and peer it was at.
      const lastSeen = new Map<string, StepEvent>()
      const onStep = (e: StepEvent): void => {
        lastSeen.set(e.stepId, e)
        opts.onStep?.(e)
      }
      // The run's trace: the one the caller bound to this task id, else one of its own (ended with the run).
      const bound = tracer?.scope(opts.taskId)
      const own =
        tracer?.enabled === true && bound == null ? tracer.start('run', undefined, { 'task.id': opts.taskId, steps: plan.subtasks.length }) : undefined
      if (own != null) tracer!.bind(opts.taskId, own)
      const root = bound ?? own
      const running = new Promise<{ steps: StepRecord[]; outputs: Map<string, unknown>; cost: number }>((resolve, reject) => {
        let failed = false
        const launch = (): void => {
          if (failed) return
          if (records.size === plan.subtasks.length) {
            resolve({ steps: plan.subtasks.map((s) => records.get(s.id)!), outputs, cost: budget.spent })
            return
          }
          for (const s of plan.subtasks) {
            if (started.has(s.id) || !s.dependencies.every((d) => records.has(d))) continue
            if (sequential && started.size > records.size) return
            started.add(s.id)
            let input: unknown
            try {
              input = resolveInput(s.input, taskInput, outputs)
            } catch (err) {
              fail(toError(err))
              return
            }
            tracedStep(s, input, { ...opts, signal, onStep }, budget, root).then(
              (r) => {
                if (failed) return // cancelled or failed meanwhile: nothing more is committed
                records.set(s.id, r)
                outputs.set(s.id, r.output)
                launch()
              },
              (err) => {
                budget.release(s.id)
                fail(toError(err))
              }
            )
            if (sequential) return
          }
        }
        const fail = (err: Error): void => {
          if (failed) return
          failed = true
          inner.abort(err)
          if (opts.signal.aborted) {
            // Every step that has not finished is cancelled, including those that never started.
            for (const s of plan.subtasks) {
              if (records.has(s.id)) continue
              const seen = lastSeen.get(s.id)
              try {
                opts.onStep?.({
                  taskId: opts.taskId,
                  stepId: s.id,
                  status: 'cancelled',
                  attempt: seen?.attempt ?? 0,
                  agent: seen?.agent ?? '',
                  peer: seen?.peer ?? ''
                })
              } catch (e) {
                log.error('a step listener threw: %s', toError(e).message)
              }
            }
            reject(new TaskCancelledError(undefined, { cause: err }))
          } else reject(err)
        }
        launch()
      })
      if (own == null) return await running
      try {
        return await running
      } catch (err) {
        own.end('error', { error: toError(err).message.slice(0, 200) })
        throw err
      } finally {
        own.end()
      }
    }

    /** A step under its own span, bound as `taskId/stepId` so its routing, attempts and verification hang under it. */
    async function tracedStep(s: Subtask, input: unknown, opts: RunPlanOptions, budget: Budget, root: TraceContext | undefined): Promise<StepRecord> {
      if (root == null) return await runStep(s, input, opts, budget)
      const span = tracer!.start('step', root, { 'step.id': s.id, capabilities: s.capabilities.join(',') })
      const scope = `${opts.taskId}/${s.id}`
      tracer!.bind(scope, span)
      try {
        const r = await runStep(s, input, opts, budget)
        span.end('ok', { 'agent.id': r.agent, 'peer.id': r.peer, attempts: r.attempts })
        return r
      } catch (err) {
        span.end('error', { error: toError(err).message.slice(0, 200) })
        throw err
      } finally {
        tracer!.unbind(scope)
      }
    }

    return {
      run,
      async start() {
        if (offs.length > 0) return
        offs = [transport.onMessage(onMessage), transport.onPeerClosed(onPeerClosed)]
        payloads.start()
      },
      async stop() {
        for (const off of offs) off()
        offs = []
        payloads.stop()
      },
      stats: () => ({ ...stats, ...payloads.metrics() })
    }
  }
}

/** Credits for a sentence (no float noise like 0.30000000000000004). */
function round(n: number): number {
  return Math.round(n * 1e6) / 1e6
}

function size(value: unknown): number {
  if (isBytes(value)) return value.byteLength
  try {
    return JSON.stringify(value)?.length ?? 0
  } catch {
    return 0
  }
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> => abortableSleep(ms, signal, () => new TaskCancelledError())

/** `ready`, or a TaskCancelledError as soon as `signal` aborts (a cancel does not wait for the save). */
async function untilReady(ready: Promise<void>, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted()
  const { promise, reject } = Promise.withResolvers<never>()
  const onAbort = (): void => reject(new TaskCancelledError())
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    await Promise.race([ready, promise])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
