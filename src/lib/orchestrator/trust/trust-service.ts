/**
 * The trust service: one per profile and tab. The dispatcher asks it how many
 * replicas a result needs (its `VerificationPolicy`), checks outputs against the
 * agent's schema, compares replicas, and tells it how each verified step ended; it
 * keeps the reputation book, publishes and reads signed statements, signs receipts
 * for accepted results and keeps the ledger, and persists all of it.
 */
import { ChangeNotifier, logger, type Identity } from '../../core/index.ts'
import { toError } from '../errors.ts'
import type { RoutingTrust } from '../components.ts'
import { agree, parseComparison, type Comparison, type Judge } from './agreement.ts'
import { OutputSchemas } from './output-schema.ts'
import { AdaptivePolicy, type AdaptivePolicyInit, type ReplicationDecision, type VerificationMode, type VerificationPolicy } from './policy.ts'
import { Ledger, signReceipt, verifyReceipt, type Credits, type Receipt } from './receipts.ts'
import { betaScore, ReputationBook, type Observation, type Reputation, type ReputationInit } from './reputation.ts'
import { StatementReader, parseSubject, statementSubject, type SharedDecision, type StatementStore } from './statements.ts'
import type { TrustState, TrustStore } from './trust-store.ts'
import type { DirectKeyClaim } from './peer-key.ts'

const log = logger('orchestrator:trust')

/** Who is behind a peer: its user's profile key, when known (presence carries it). */
export interface PeerUsers {
  userOf(peerId: string): string | undefined
  /** Check a claim the peer sent itself (a task offer's `user`); afterwards `userOf` knows it when it holds. */
  prove?(peerId: string, claim: DirectKeyClaim): Promise<boolean>
  /** This peer's own claim (its profile key and the proof over its peer id), once signed. */
  claim?(): DirectKeyClaim | undefined
}

/** What verification needs to know of an agent: its manifest's output schema and comparison. */
export interface AgentContracts {
  contract(agentId: string): { output?: Record<string, unknown>; comparison?: unknown } | undefined
}

/** One result of a verified step, as the dispatcher reports it. */
export interface SettledResult {
  peer: string
  user: string
  /** Run time the donor reported. */
  ms: number
  /** The route's price (what the task pays for this result). */
  price: number
  /** In the agreeing majority (true), outvoted or schema-invalid (false). */
  agreed: boolean
}

/** How a step's verification ended. */
export interface SettledStep {
  taskId: string
  stepId: string
  agentId: string
  /**
   * 'verified': replicas agreed; 'trusted': accepted unchecked from a trusted user; 'accepted': taken
   * unchecked because the submitter asked for no verification ('none'), paid but not judged;
   * 'unverified': no other user could check it; 'failed': no majority.
   */
  outcome: 'verified' | 'trusted' | 'accepted' | 'unverified' | 'failed'
  results: readonly SettledResult[]
}

/** What the dispatcher needs of trust (a narrow component, so tests can stub it). */
export interface StepVerifier {
  /** This profile's key. */
  readonly self: string
  /** The user behind a peer; a peer whose user is not known counts as its own user (`peer:<id>`). */
  userOf(peerId: string): string
  /**
   * This peer's claim of its profile key, sent with its offers so a donor knows the user behind a peer
   * it has no checked presence of yet (a tab just reloaded under a new peer id). Optional.
   */
  ownClaim?(): DirectKeyClaim | undefined
  /** Check the claim an offer from `peerId` carried (a donor, before it keys the step by user). Optional. */
  proveUser?(peerId: string, claim: DirectKeyClaim): Promise<boolean>
  decide(user: string, agentId: string, mode: VerificationMode): ReplicationDecision
  /** Results (the first included) a step may gather before it fails verification. */
  readonly maxReplicas: number
  /** Why a donor's output does not match the agent's output schema, or undefined. */
  checkOutput(agentId: string, output: unknown): string | undefined
  /** Whether two outputs of `agentId` agree (the manifest's comparison). */
  agree(agentId: string, a: unknown, b: unknown, opts?: { judge?: Judge; signal?: AbortSignal }): Promise<boolean>
  /** A result refused before comparison (schema mismatch): a wrong result of `user`. */
  refused(user: string, agentId: string): void
  /** Record how a step ended; resolves with the receipts to send to donors (peer → receipt). */
  settle(step: SettledStep): Promise<Array<{ peer: string; receipt: Receipt }>>
  /** A receipt arrived from `from` (a submitter paying this profile). Never throws. */
  receive(from: string, receipt: unknown): Promise<boolean>
}

/** Options of {@link trustService}, with defaults. */
export interface TrustInit {
  policy?: AdaptivePolicyInit
  reputation?: ReputationInit
  /** What a profile may spend beyond what it earned. Default {@link DEFAULT_ALLOWANCE} (10 credits). */
  allowance?: number
  /** Publish changed statements at most this often (ms). Default 5000. */
  publishEveryMs?: number
  /** Save the state at most this often (ms). Default 500. */
  saveEveryMs?: number
  /** Most subjects this profile publishes statements about (the registry caps records per publisher). Default 200. */
  maxSubjects?: number
}

/** What the trust service needs. */
export interface TrustComponents {
  identity: Identity
  users: PeerUsers
  contracts?: AgentContracts
  store?: TrustStore
  statements?: StatementStore
}

/** Signals the router reads (defined beside the router's other components): unknown is a prior, never zero. */
export type { RoutingTrust }

/** The trust service. */
export interface TrustService extends StepVerifier, Omit<RoutingTrust, 'userOf'> {
  start(): Promise<void>
  stop(): Promise<void>
  /** API.md `reputation(peerId)`: what this profile knows of the user behind a peer (undefined when nothing). */
  reputation(peerId: string): { score: number; valid: number; invalid: number } | undefined
  /** The same by user key, on one agent or overall. */
  userReputation(user: string, agentId?: string): Reputation
  /** API.md `credits()`. */
  credits(): Credits
  /** Whether `amount` more credits may be spent (balance + allowance). */
  canSpend(amount: number): boolean
  /** The streak and spot-check probability of a user on an agent. */
  readonly policy: VerificationPolicy
  /** Called on every change (reputation, statements, receipts); returns the unsubscribe function. */
  subscribe(listener: () => void): () => void
  /** A/B decisions other profiles wrote to the registry (signature checked), newest first. */
  sharedDecisions(): SharedDecision[]
  /** Save now (tests, page hide). */
  flush(): Promise<void>
  stats(): Record<string, number>
}

/** `trustService(init)(components)`. */
export function trustService(init: TrustInit = {}): (components: TrustComponents) => TrustService {
  return ({ identity, users, contracts, store, statements }) => {
    const self = identity.publicKey as string
    const policy = new AdaptivePolicy({ ...init.policy, self })
    const book = new ReputationBook(init.reputation)
    const ledger = new Ledger(self, init.allowance)
    const schemas = new OutputSchemas()
    const reader = new StatementReader()
    const changes = new ChangeNotifier()
    const stats = { verified: 0, trusted: 0, accepted: 0, unverified: 0, failed: 0, refused: 0, receiptsIssued: 0, receiptsReceived: 0, receiptsRefused: 0 }
    /** Subjects whose counts changed since they were last published. */
    const dirty = new Set<string>()
    /** Subjects published at least once (the registry caps records per publisher). */
    const published = new Set<string>()
    let publishTimer: ReturnType<typeof setTimeout> | undefined
    let saveTimer: ReturnType<typeof setTimeout> | undefined
    let saving: Promise<void> = Promise.resolve()
    let offStatements: (() => void) | undefined
    let started = false
    let loaded = false

    const contractOf = (agentId: string): { output?: Record<string, unknown>; comparison: Comparison } => {
      const c = contracts?.contract(agentId)
      return { output: c?.output, comparison: parseComparison(c?.comparison) }
    }

    /** Per-agent sums over users, rebuilt when the book changes (the router asks per candidate). */
    let agentSums: { version: number; map: Map<string, Observation> } | undefined
    const byAgent = (): Map<string, Observation> => {
      if (agentSums?.version === book.version) return agentSums.map
      const map = new Map<string, Observation>()
      for (const [k, o] of Object.entries(book.snapshot())) {
        const agentId = k.slice(k.lastIndexOf('|') + 1)
        if (agentId === '*') continue
        const s = map.get(agentId) ?? { valid: 0, invalid: 0, runs: 0, totalMs: 0, totalCost: 0 }
        s.valid += o.valid
        s.invalid += o.invalid
        s.runs += o.runs
        s.totalMs += o.totalMs
        s.totalCost += o.totalCost
        map.set(agentId, s)
      }
      agentSums = { version: book.version, map }
      return map
    }

    const userOf = (peerId: string): string => users.userOf(peerId) ?? `peer:${peerId}`

    function changed(): void {
      changes.notify()
      scheduleSave()
    }

    function scheduleSave(): void {
      if (store == null || !loaded || saveTimer != null) return
      saveTimer = setTimeout(() => {
        saveTimer = undefined
        void save()
      }, init.saveEveryMs ?? 500)
    }

    async function save(): Promise<void> {
      if (store == null || !loaded) return
      const state: TrustState = { v: 1, policy: policy.snapshot(), reputation: book.snapshot(), receipts: ledger.all() }
      saving = saving.then(() => store.save(state)).catch((err: unknown) => log.error('saving trust state failed: %s', toError(err).message))
      await saving
    }

    function schedulePublish(): void {
      if (statements == null || !started || publishTimer != null) return
      publishTimer = setTimeout(() => {
        publishTimer = undefined
        void publish()
      }, init.publishEveryMs ?? 5000)
    }

    async function publish(): Promise<void> {
      if (statements == null) return
      const max = init.maxSubjects ?? 200
      const subjects = [...dirty]
      dirty.clear()
      for (const subject of subjects) {
        const s = parseSubject(subject)
        if (s == null) continue
        const o = book.local(s.user, s.agentId)
        if (o == null) continue
        try {
          await statements.publish({ subject, score: betaScore(o.valid, o.invalid), valid: o.valid, invalid: o.invalid })
        } catch (err) {
          // Quota or a stopped registry: the next change tries again.
          log('publishing %s failed: %s', subject, toError(err).message)
          if (published.size < max) dirty.add(subject)
        }
        published.add(subject)
      }
    }
    async function readStatements(): Promise<void> {
      if (statements == null) return
      try {
        // This profile's own statements (published by this tab or another of its tabs) repeat what its book holds: counting them would count each result twice.
        book.setStatements((await reader.read(statements.records())).filter((s) => s.author !== self))
        changes.notify()
      } catch (err) {
        log.error('reading statements failed: %s', toError(err).message)
      }
    }

    function observe(user: string, agentId: string, r: { valid: boolean; ms?: number; cost?: number }): void {
      book.observe(user, agentId, r)
      if (user.startsWith('ed25519:')) {
        const max = init.maxSubjects ?? 200
        for (const subject of [statementSubject(user), statementSubject(user, agentId)]) {
          if (published.has(subject) || published.size + dirty.size < max) dirty.add(subject)
        }
        schedulePublish()
      }
    }

    const service: TrustService = {
      self,
      policy,
      userOf,
      ownClaim: () => users.claim?.(),
      // Only where the users can check a claim: a donor whose trust cannot takes offers as before (keyed by presence), never refuses them.
      ...(users.prove != null ? { proveUser: users.prove.bind(users) } : {}),
      get maxReplicas() {
        return policy.maxReplicas
      },
      decide: (user, agentId, mode) => policy.decide(user, agentId, mode),
      checkOutput: (agentId, output) => schemas.check(agentId, contractOf(agentId).output, output),
      async agree(agentId, a, b, opts = {}) {
        return await agree(contractOf(agentId).comparison, a, b, opts.judge, opts.signal)
      },
      refused(user, agentId) {
        stats.refused++
        policy.settle({ agentId, agreed: [], disagreed: [user] })
        observe(user, agentId, { valid: false })
        changed()
      },
      async settle(step) {
        stats[step.outcome]++
        const agreed = step.results.filter((r) => r.agreed).map((r) => r.user)
        const disagreed = step.results.filter((r) => !r.agreed).map((r) => r.user)
        if (step.outcome === 'verified') {
          policy.settle({ agentId: step.agentId, agreed: agreed.filter((u) => u !== self), disagreed })
          for (const r of step.results) if (r.user !== self) observe(r.user, step.agentId, { valid: r.agreed, ms: r.ms, cost: r.price })
        } else if (step.outcome === 'failed') {
          policy.settle({ agentId: step.agentId, agreed: [], disagreed: [], inconclusive: step.results.map((r) => r.user) })
        } else if (step.outcome === 'accepted') {
          // Taken at the submitter's word: no check said whether it was right, so no reputation moves.
        } else {
          // Accepted unchecked: its run time counts, its validity is not known.
          for (const r of step.results) if (r.user !== self) book.observe(r.user, step.agentId, { valid: true, ms: r.ms, cost: r.price })
        }
        const out: Array<{ peer: string; receipt: Receipt }> = []
        // Credit only after verification (a trusted user's accepted result counts as verified, as in
        // BOINC), or for a result the submitter chose to take unchecked: it used the work.
        if (step.outcome === 'verified' || step.outcome === 'trusted' || step.outcome === 'accepted') {
          for (const r of step.results) {
            if (!r.agreed || r.user === self || !r.user.startsWith('ed25519:')) continue
            try {
              const receipt = await signReceipt(identity, { task: step.taskId, step: step.stepId, agent: step.agentId, donor: r.user, price: r.price })
              if (ledger.add(receipt)) {
                stats.receiptsIssued++
                out.push({ peer: r.peer, receipt })
              }
            } catch (err) {
              log.error('signing a receipt failed: %s', toError(err).message)
            }
          }
        }
        changed()
        return out
      },
      async receive(from, value) {
        try {
          const r = await verifyReceipt(value)
          if (r.donor !== self) throw new Error(`the receipt pays ${r.donor}, not this profile`)
          const submitter = users.userOf(from)
          if (submitter != null && submitter !== r.submitter) throw new Error(`the receipt is signed by ${r.submitter} but ${from} is ${submitter}`)
          if (ledger.add(r)) {
            stats.receiptsReceived++
            changed()
          }
          return true
        } catch (err) {
          stats.receiptsRefused++
          log('refused a receipt from %s: %s', from, toError(err).message)
          return false
        }
      },
      reputation(peerId) {
        const user = peerId === '' ? undefined : users.userOf(peerId)
        if (user == null) return undefined
        const r = book.reputation(user)
        if (r.valid + r.invalid === 0) return undefined
        return { score: r.score, valid: r.valid, invalid: r.invalid }
      },
      userReputation: (user, agentId) => book.reputation(user, agentId),
      userScore: (peerId, agentId) => book.reputation(userOf(peerId), agentId).score,
      agentQuality(agentId) {
        const o = service.agentOutcomes(agentId)
        return o == null ? undefined : betaScore(o.valid, o.invalid)
      },
      agentOutcomes(agentId) {
        const o = byAgent().get(agentId)
        return o == null || o.valid + o.invalid === 0 ? undefined : { valid: o.valid, invalid: o.invalid }
      },
      agentRunMs(agentId) {
        const o = byAgent().get(agentId)
        return o == null || o.runs === 0 ? undefined : o.totalMs / o.runs
      },
      credits: () => ledger.credits(),
      canSpend: (amount) => ledger.canSpend(amount),
      subscribe: (l) => changes.subscribe(l),
      sharedDecisions: () => reader.decisions.filter((d) => d.author !== self),
      async flush() {
        clearTimeout(saveTimer)
        saveTimer = undefined
        await save()
      },
      async start() {
        if (started) return
        started = true
        if (store != null) {
          try {
            const s = await store.load()
            if (s != null) {
              policy.restore(s.policy)
              book.restore(s.reputation)
              for (const raw of s.receipts) {
                try {
                  ledger.add(await verifyReceipt(raw))
                } catch {
                  stats.receiptsRefused++
                }
              }
            }
          } catch (err) {
            log.error('loading trust state failed: %s', toError(err).message)
          }
        }
        loaded = true
        if (statements != null) {
          offStatements = statements.subscribe(() => {
            void readStatements()
          })
          await readStatements()
        }
        if (dirty.size > 0) schedulePublish()
        changes.notify()
      },
      async stop() {
        if (!started) return
        started = false
        offStatements?.()
        offStatements = undefined
        clearTimeout(publishTimer)
        publishTimer = undefined
        if (dirty.size > 0) await publish()
        await service.flush()
      },
      stats: () => ({ ...Object.fromEntries(Object.entries(stats).map(([k, n]) => [`trust.${k}`, n])), 'trust.statementsRefused': reader.rejected })
    }
    return service
  }
}
