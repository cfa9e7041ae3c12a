/**
 * What routing learns from outcomes (vision §3, issue 12 "Learning"), in one service the router
 * reads and the dispatcher's outcomes feed:
 *
 * - the `balanced` strategy's bandit ({@link ThompsonBandit}): Thompson samples of each agent's
 *   verified success per capability replace its quality estimate; learned run times its latency;
 * - A/B trials ({@link AbTrials}): a newer version of an agent takes a share of the traffic until
 *   it is promoted or demoted, and the decision is written to the registry (`decisions`);
 * - anomaly detection ({@link AnomalyDetector}): agents and users that depart from their own
 *   history are flagged and routed around; a health check (a known-answer run, `health`) clears
 *   them, retried with a growing delay while it fails.
 *
 * With a store (`components.store`, IndexedDB in the app) the learned state is saved per browser
 * profile a moment after it changes and restored by `load()`, so a reload keeps learning: the
 * bandit's counts, A/B trials and their decisions, the anomaly histories and flags (a restored
 * flag is health-checked again).
 */
import { logger } from '../../core/index.ts'
import type { AgentCandidate, OutcomeSink, StepOutcome } from '../components.ts'
import { toError } from '../errors.ts'
import { AbTrials, type AbDecision, type AbInit, type AbTrialState } from './ab.ts'
import { AnomalyDetector, type AnomalyFlag, type AnomalyInit, type AnomalyKind } from './anomaly.ts'
import { ThompsonBandit, type ArmState, type BanditInit } from './bandit.ts'
import type { LearningState, LearningStore } from './learning-store.ts'

const log = logger('orchestrator:learning')

/** A flagged target to health-check: what it ran lately, and (a user) its peers. */
export interface HealthTarget {
  kind: AnomalyKind
  /** Agent id, or the user's profile key. */
  id: string
  /** Agents to run the known answer on, newest first (the agent itself for an agent). */
  agents: string[]
  /** A user's peers seen lately, newest first (empty for an agent). */
  peers: string[]
}

/** Run a known-answer check on a target: true when it answered right. */
export type HealthCheck = (target: HealthTarget, signal: AbortSignal) => Promise<boolean>

/** Where A/B decisions are written (the registry). */
export interface DecisionLog {
  publish(decision: AbDecision): Promise<void> | void
}

/** The learned state, read-only (the Registry page shows it). */
export interface LearningSnapshot {
  /** Bandit arms per capability key (a step's capabilities joined by newlines), most pulled first. */
  bandit: Record<string, ArmState[]>
  /** A/B trials, newest first, with their decisions. */
  ab: AbTrialState[]
  /** Agents and users flagged now, oldest first. */
  anomalies: AnomalyFlag[]
  /** Health checks run, passed, failed. */
  health: { runs: number; passed: number; failed: number }
  /** A/B decisions other profiles wrote to the registry (signed; shown, not applied here), newest first. */
  shared: SharedAbDecision[]
}

/** An A/B decision read from another profile's signed registry record. */
export interface SharedAbDecision {
  author: string
  name: string
  version: string
  decision: 'promoted' | 'demoted'
  against: string
  /** The record's subject, with the figures as written. */
  subject: string
  at: number
}

/** What the router reads, and the outcome sink that teaches it. */
export interface RouteLearning extends OutcomeSink {
  /** A Thompson sample of `agentId`'s success on `capKey` (its quality `prior` as pseudo-evidence). */
  sample(capKey: string, agentId: string, prior: number): number
  /** Learned run time of `agentId` on `capKey` (ms). */
  runMs(capKey: string, agentId: string): number | undefined
  agentFlagged(agentId: string): boolean
  /** Whether the user behind `peerId` is flagged. */
  peerFlagged(peerId: string): boolean
  /** A/B between two versions of one agent: which to route to now. */
  abChoose(capKey: string, incumbent: AgentCandidate, challenger: AgentCandidate): { use: 'incumbent' | 'challenger'; why: string }
  snapshot(): LearningSnapshot
  /** Health-check a flagged target now; true when it passed (the flag is then cleared). */
  checkHealth(kind: AnomalyKind, id: string): Promise<boolean>
  /** Restore the saved state (with a store); resolves once restored, never throws. */
  load(): Promise<void>
  /** Save now (with a store). */
  flush(): Promise<void>
  /** Cancel pending health checks (and save what is pending). */
  stop(): void
}

/** Options, with defaults. */
export interface LearningInit {
  bandit?: BanditInit
  ab?: AbInit
  anomaly?: AnomalyInit
  /** First health check this long after a flag. Default 2000 ms. */
  healthDelayMs?: number
  /** A failed check is retried after twice the previous delay, up to this. Default 300000 ms. */
  maxHealthDelayMs?: number
  /** Give up a health check after this long (counted failed). Default 60000 ms. */
  healthTimeoutMs?: number
  /** Uniform source for the bandit and A/B draws (seed it in tests). Default Math.random. */
  random?: () => number
  /** Save the state at most this often (ms, with a store). Default 1000. */
  saveEveryMs?: number
}

/** What learning needs. */
export interface LearningComponents {
  /** The user behind a peer (trust/'s `userOf`); without it each peer is its own user. */
  users?: { userOf?(peerId: string): string }
  /** This profile's key: its own runs are not judged as a user's. */
  self?: string
  health?: HealthCheck
  decisions?: DecisionLog
  /** Where the learned state is kept across reloads. */
  store?: LearningStore
  /** Other profiles' A/B decisions (trust/'s signed registry records). */
  shared?: () => readonly SharedAbDecision[]
}

/** Outcomes that say nothing about the agent or the donor. */
const IGNORED = new Set(['TaskCancelledError', 'AbortError'])
/** Agents and peers remembered per user for health checks. */
const RECENT = 4

/** `routeLearning(init)(components)`. */
export function routeLearning(init: LearningInit = {}): (components?: LearningComponents) => RouteLearning {
  return (components = {}) => {
    const random = init.random ?? Math.random
    const bandit = new ThompsonBandit({ random, ...init.bandit })
    const decisions: AbDecision[] = []
    const ab = new AbTrials({ random, ...init.ab }, (d) => {
      decisions.push(d)
      log('A/B %s %s: %s', d.name, d.decision, d.reason)
      try {
        Promise.resolve(components.decisions?.publish(d)).catch((err: unknown) => {
          log.error('writing the A/B decision on %s failed: %s', d.name, toError(err).message)
        })
      } catch (err) {
        log.error('writing the A/B decision on %s failed: %s', d.name, toError(err).message)
      }
    })
    const anomaly = new AnomalyDetector(init.anomaly)
    /** user → agents and peers seen lately (newest first), for its health check. */
    const recentOf = new Map<string, { agents: string[]; peers: string[] }>()
    const pending = new Map<string, { timer?: ReturnType<typeof setTimeout>; delay: number; controller?: AbortController; running?: Promise<boolean> }>()
    const health = { runs: 0, passed: 0, failed: 0 }
    let stopped = false
    const store = components.store
    let saveTimer: ReturnType<typeof setTimeout> | undefined
    let saving: Promise<void> = Promise.resolve()
    let loaded = false

    function state(): LearningState {
      return { v: 1, bandit: bandit.dump(), ab: ab.dump(), anomaly: anomaly.dump(), health: { ...health } }
    }
    function scheduleSave(): void {
      if (store == null || !loaded || saveTimer != null || stopped) return
      saveTimer = setTimeout(() => {
        saveTimer = undefined
        void save()
      }, init.saveEveryMs ?? 1000)
    }
    async function save(): Promise<void> {
      if (store == null || !loaded) return
      const s = state()
      saving = saving.then(() => store.save(s)).catch((err: unknown) => log.error('saving the learned state failed: %s', toError(err).message))
      await saving
    }

    const userOf = (peerId: string): string => components.users?.userOf?.(peerId) ?? `peer:${peerId}`

    function remember(user: string, agentId: string, peerId: string): void {
      let r = recentOf.get(user)
      if (r == null) {
        if (recentOf.size >= 4096) recentOf.delete(recentOf.keys().next().value as string)
        r = { agents: [], peers: [] }
        recentOf.set(user, r)
      }
      for (const [list, x] of [
        [r.agents, agentId],
        [r.peers, peerId]
      ] as const) {
        const i = list.indexOf(x)
        if (i >= 0) list.splice(i, 1)
        list.unshift(x)
        if (list.length > RECENT) list.length = RECENT
      }
    }

    function schedule(kind: AnomalyKind, id: string, delay: number): void {
      if (components.health == null || stopped) return
      const key = `${kind}:${id}`
      const p = pending.get(key) ?? { delay }
      p.delay = delay
      clearTimeout(p.timer)
      p.timer = setTimeout(() => {
        p.timer = undefined
        void run(kind, id)
      }, delay)
      pending.set(key, p)
    }

    async function run(kind: AnomalyKind, id: string): Promise<boolean> {
      const key = `${kind}:${id}`
      const check = components.health
      if (check == null || !anomaly.flagged(kind, id)) {
        pending.delete(key)
        return !anomaly.flagged(kind, id)
      }
      const p = pending.get(key) ?? { delay: init.healthDelayMs ?? 2000 }
      pending.set(key, p)
      if (p.running != null) return await p.running
      clearTimeout(p.timer)
      p.timer = undefined
      const r = kind === 'user' ? recentOf.get(id) : undefined
      const target: HealthTarget = { kind, id, agents: kind === 'agent' ? [id] : [...(r?.agents ?? [])], peers: [...(r?.peers ?? [])] }
      const controller = new AbortController()
      p.controller = controller
      const timeout = setTimeout(() => controller.abort(), init.healthTimeoutMs ?? 60_000)
      p.running = (async () => {
        health.runs++
        let passed = false
        try {
          passed = (await check(target, controller.signal)) === true && !controller.signal.aborted
        } catch (err) {
          log('health check of %s failed: %s', key, toError(err).message)
        } finally {
          clearTimeout(timeout)
        }
        anomaly.checked(kind, id, passed)
        scheduleSave()
        if (passed) {
          health.passed++
          anomaly.clear(kind, id)
          pending.delete(key)
          log('%s cleared by a health check', key)
        } else {
          health.failed++
          p.running = undefined
          p.controller = undefined
          schedule(kind, id, Math.min(init.maxHealthDelayMs ?? 300_000, p.delay * 2))
        }
        return passed
      })()
      return await p.running
    }

    function flagged(flag: AnomalyFlag | undefined): void {
      if (flag == null) return
      log('%s %s flagged: %s %s against %s (z %s)', flag.kind, flag.id, flag.metric, flag.recent, flag.baseline, flag.z)
      schedule(flag.kind, flag.id, init.healthDelayMs ?? 2000)
    }

    return {
      record(o: StepOutcome): void {
        if (o.errorName !== undefined && IGNORED.has(o.errorName)) return
        const capKey = o.capabilities.join('\n')
        const ms = o.success && Number.isFinite(o.durationMs) ? o.durationMs : undefined
        bandit.record(capKey, o.agentId, o.success, ms, o.cost, o.at)
        ab.record(o.agentId, o.success, o.durationMs, o.cost, o.at)
        const sample = { failed: !o.success, ms, disagreed: o.errorName === 'InvalidOutputError' ? true : o.success ? false : undefined }
        // A result outvoted or refused by its schema says the donor lied, not that the agent changed: it counts against the user only.
        if (o.errorName !== 'InvalidOutputError') flagged(anomaly.record('agent', o.agentId, sample, o.at))
        scheduleSave()
        const user = userOf(o.peerId)
        if (user === components.self) return
        remember(user, o.agentId, o.peerId)
        flagged(anomaly.record('user', user, sample, o.at))
      },
      sample: (capKey, agentId, prior) => bandit.sample(capKey, agentId, prior),
      runMs: (capKey, agentId) => bandit.runMs(capKey, agentId),
      agentFlagged: (agentId) => anomaly.flagged('agent', agentId),
      peerFlagged: (peerId) => anomaly.flagged('user', userOf(peerId)),
      abChoose: (_capKey, incumbent, challenger) => ab.choose(incumbent, challenger),
      snapshot: () => ({
        bandit: bandit.snapshot(),
        ab: ab.trials(),
        anomalies: anomaly.flags(),
        health: { ...health },
        shared: [...(components.shared?.() ?? [])].slice(0, 50)
      }),
      checkHealth: (kind, id) => run(kind, id),
      async load() {
        if (loaded) return
        try {
          const s = await store?.load()
          if (s != null) {
            bandit.load(s.bandit)
            ab.load(s.ab)
            anomaly.load(s.anomaly)
            health.runs += s.health.runs
            health.passed += s.health.passed
            health.failed += s.health.failed
            for (const f of anomaly.flags()) schedule(f.kind, f.id, init.healthDelayMs ?? 2000)
          }
        } catch (err) {
          log.error('loading the learned state failed: %s', toError(err).message)
        }
        loaded = true
      },
      async flush() {
        clearTimeout(saveTimer)
        saveTimer = undefined
        await save()
      },
      stop() {
        if (saveTimer != null) {
          clearTimeout(saveTimer)
          saveTimer = undefined
          void save()
        }
        stopped = true
        for (const p of pending.values()) {
          clearTimeout(p.timer)
          p.controller?.abort()
        }
        pending.clear()
      }
    }
  }
}

/** One sink feeding several (each guarded: a throwing sink does not starve the others). */
export function teeOutcomes(...sinks: Array<OutcomeSink | undefined>): OutcomeSink {
  const list = sinks.filter((s): s is OutcomeSink => s != null)
  return {
    record(o) {
      for (const s of list) {
        try {
          s.record(o)
        } catch (err) {
          log.error('an outcome sink threw: %s', toError(err).message)
        }
      }
    }
  }
}
