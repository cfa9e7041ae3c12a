/**
 * What routing learned (issue 12 "Learning"), read reactively for the Registry page:
 * `api.orchestrator.router.learning()` re-read whenever the API says something changed.
 */
import { createSubscriber } from 'svelte/reactivity'
import type { ZeroStateApi } from '$lib/index'

/** The router's learned state (bandit arms per capability, A/B trials, anomaly flags, health checks). */
export type LearningSnapshot = NonNullable<ReturnType<ZeroStateApi['orchestrator']['router']['learning']>>
export type LearnedArm = LearningSnapshot['bandit'][string][number]
export type LearnedTrial = LearningSnapshot['ab'][number]
export type LearnedFlag = LearningSnapshot['anomalies'][number]

/** A reactive view of the learned state; `snapshot` is undefined when this build's router has no learning. */
export class LearningView {
  readonly #api: ZeroStateApi
  readonly #subscribe: () => void

  constructor(api: ZeroStateApi) {
    this.#api = api
    this.#subscribe = createSubscriber((update) => api.subscribe(update))
  }

  get snapshot(): LearningSnapshot | undefined {
    this.#subscribe()
    try {
      const router = (this.#api as { orchestrator?: { router?: { learning?: () => LearningSnapshot | undefined } } }).orchestrator?.router
      return typeof router?.learning === 'function' ? router.learning() : undefined
    } catch {
      return undefined
    }
  }
}

const METRIC: Record<LearnedFlag['metric'], string> = { failure: 'failure rate', latency: 'run time', disagreement: 'disagreement rate' }

/** Why a target is flagged, in a sentence: its recent figure against its own history. */
export function flagReason(f: Pick<LearnedFlag, 'metric' | 'recent' | 'baseline' | 'z'>): string {
  const fig = (x: number): string => (f.metric === 'latency' ? `${Math.round(x)} ms` : `${Math.round(x * 100)} %`)
  return `${METRIC[f.metric]} ${fig(f.recent)} lately against ${fig(f.baseline)} in its history (robust z ${Number(f.z.toFixed(1))})`
}

/** A health-check summary of a flag: none yet, or how many and the last outcome. */
export function checksText(f: Pick<LearnedFlag, 'checks' | 'lastCheck'>): string {
  if (f.checks === 0) return 'no health check yet'
  return `${f.checks} health check${f.checks === 1 ? '' : 's'}, the last ${f.lastCheck ?? 'pending'}`
}
