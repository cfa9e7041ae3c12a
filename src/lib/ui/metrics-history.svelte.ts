/**
 * The Dashboard's live state (issue 15): a sample of the peer's metrics every second,
 * the last hour kept (and saved in IndexedDB, so a reload shows it again), alert rules
 * (saved per profile) evaluated on every sample, and notifications of rules that started
 * firing. One per API object: the root layout starts it with the app, so the history and
 * the alerts run on every page (the layout shows notifications), whether or not the
 * Dashboard was ever opened, and keep running while the tab lives.
 */
import type { ZeroStateApi } from '$lib/index'
import { IdbValue } from '../core/index.ts'
import { DEFAULT_RULES, evaluate, parseRules, type AlertRule, type AlertState } from './alerts.ts'
import { KEEP_MS, sampleOf, type Sample } from './metrics-samples.ts'
import { SampleStore } from './sample-store.ts'

/** How often a sample is taken. */
export const SAMPLE_MS = 1000
/** How often new samples are written to IndexedDB. */
export const SAVE_MS = 5000
/** Notifications kept on screen at most. */
const MAX_NOTIFICATIONS = 20

/** A rule that started firing, with the figure that fired it. */
export interface AlertNotification {
  id: number
  ruleId: string
  message: string
  at: number
}

/** Sampling, history, alerts. */
export class MetricsHistory {
  readonly #api: Pick<ZeroStateApi, 'metricsSnapshot' | 'relayStatus'>
  readonly #store: SampleStore | undefined
  readonly #rulesStore: IdbValue | undefined
  readonly #boot = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
  #samples = $state.raw<Sample[]>([])
  #rules = $state.raw<AlertRule[]>(DEFAULT_RULES.map((r) => ({ ...r })))
  #alerts = $state.raw<AlertState[]>([])
  #notifications = $state.raw<AlertNotification[]>([])
  #unsaved: Sample[] = []
  #timer: ReturnType<typeof setInterval> | undefined
  #saveTimer: ReturnType<typeof setInterval> | undefined
  #nextId = 1
  /** Resolves once the saved history and rules are loaded. */
  readonly loaded: Promise<void>
  #error = $state<string | undefined>()

  constructor(api: Pick<ZeroStateApi, 'metricsSnapshot' | 'relayStatus'>, opts: { persist?: boolean } = {}) {
    this.#api = api
    const persist = opts.persist ?? typeof indexedDB !== 'undefined'
    this.#store = persist ? new SampleStore() : undefined
    this.#rulesStore = persist ? new IdbValue('zerostate-alerts', 'rules') : undefined
    this.loaded = this.#load()
  }

  async #load(): Promise<void> {
    try {
      const [saved, rules] = await Promise.all([this.#store?.load(Date.now() - KEEP_MS), this.#rulesStore?.read()])
      if (saved != null && saved.length > 0) {
        const first = this.#samples[0]
        this.#samples = [...saved.filter((s) => first == null || s.t < first.t), ...this.#samples]
      }
      if (rules !== undefined) this.#rules = parseRules(rules)
    } catch (err) {
      this.#error = `The saved history could not be read (${(err as Error).message}); new samples are kept.`
    }
  }

  /** Start sampling (idempotent). */
  start(): void {
    if (this.#timer != null) return
    this.tick()
    this.#timer = setInterval(() => this.tick(), SAMPLE_MS)
    if (this.#store != null)
      this.#saveTimer = setInterval(() => {
        void this.save()
      }, SAVE_MS)
  }

  stop(): void {
    clearInterval(this.#timer)
    clearInterval(this.#saveTimer)
    this.#timer = undefined
    this.#saveTimer = undefined
  }

  /** Take one sample now and evaluate the rules on it. */
  tick(): void {
    let sample: Sample
    try {
      sample = sampleOf(this.#api.metricsSnapshot(), this.#boot, this.#api.relayStatus().state === 'connected')
    } catch (err) {
      this.#error = `Metrics could not be read: ${(err as Error).message}`
      return
    }
    const cut = sample.t - KEEP_MS
    const kept = this.#samples[0] != null && this.#samples[0].t < cut ? this.#samples.filter((s) => s.t >= cut) : this.#samples
    this.#samples = [...kept, sample]
    this.#unsaved.push(sample)
    this.#evaluate(sample.t)
  }

  #evaluate(now: number): void {
    const before = new Set(this.#alerts.filter((a) => a.firing).map((a) => a.rule.id))
    this.#alerts = evaluate(this.#rules, this.#samples, now)
    const started = this.#alerts.filter((a) => a.firing && !before.has(a.rule.id))
    if (started.length > 0)
      this.#notifications = [...started.map((a) => ({ id: this.#nextId++, ruleId: a.rule.id, message: a.message, at: now })), ...this.#notifications].slice(
        0,
        MAX_NOTIFICATIONS
      )
  }

  /** Write the samples taken since the last save. */
  async save(): Promise<void> {
    if (this.#store == null || this.#unsaved.length === 0) return
    const batch = this.#unsaved
    this.#unsaved = []
    try {
      await this.#store.append(batch, Date.now() - KEEP_MS)
    } catch (err) {
      this.#error = `The history could not be saved (${(err as Error).message}); it is kept in this tab.`
    }
  }

  get samples(): Sample[] {
    return this.#samples
  }
  get rules(): AlertRule[] {
    return this.#rules
  }
  get alerts(): AlertState[] {
    return this.#alerts
  }
  get notifications(): AlertNotification[] {
    return this.#notifications
  }
  get error(): string | undefined {
    return this.#error
  }

  /** Replace the rules (validated), save them for this profile and evaluate at once. */
  async setRules(rules: AlertRule[]): Promise<void> {
    this.#rules = parseRules(rules)
    const last = this.#samples.at(-1)
    // Firing states start over: a changed rule notifies again when it fires.
    this.#alerts = []
    if (last != null) this.#evaluate(last.t)
    await this.#rulesStore?.write(this.#rules)
  }

  dismiss(id: number): void {
    this.#notifications = this.#notifications.filter((n) => n.id !== id)
  }
}

const histories = new WeakMap<object, MetricsHistory>()

/** The tab's history for this API object, started on first use. */
export function metricsHistory(api: ZeroStateApi): MetricsHistory {
  let h = histories.get(api)
  if (h == null) {
    h = new MetricsHistory(api)
    histories.set(api, h)
    h.start()
    // As the page goes away (a reload, a link opened in its place, the tab hidden): one sample of
    // now, then the unsaved ones. Without that sample, a task that finished less than a sample ago
    // was in none, and a reload right after it showed 0 tasks in every window. Best effort: a write
    // started as the page goes away may not finish; at most SAVE_MS of samples is lost.
    const leaving = (): void => {
      h?.tick()
      void h?.save()
    }
    if (typeof addEventListener === 'function') {
      addEventListener('pagehide', leaving)
      addEventListener('visibilitychange', () => {
        if (document.visibilityState === 'hidden') leaving()
      })
    }
  }
  return h
}
