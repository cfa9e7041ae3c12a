/**
 * Where routing's learned state is kept across reloads (issue 12 "Learning"): the bandit's
 * arms, A/B trials with their decisions, and the anomaly detector's histories and flags.
 * `IndexedDbLearningStore` in browsers (one record per browser profile, database
 * `zerostate-learning`), `MemoryLearningStore` in Node and tests. What is read back is
 * validated (IndexedDB is a boundary too): a state that does not parse is ignored.
 */
import * as v from 'valibot'
import { IdbValue } from '../../core/index.ts'
import type { AbTrial } from './ab.ts'
import type { AnomalyFlag, AnomalySample } from './anomaly.ts'
import type { Arm } from './bandit.ts'

/** The persisted state (version 1). */
export interface LearningState {
  v: 1
  bandit: Array<[string, Array<[string, Arm]>]>
  ab: Array<[string, AbTrial]>
  anomaly: Array<[string, { samples: AnomalySample[]; flag?: AnomalyFlag }]>
  health: { runs: number; passed: number; failed: number }
}

const N = v.pipe(v.number(), v.finite(), v.minValue(0))
const Key = v.pipe(v.string(), v.maxLength(4096))
const ArmSchema = v.object({ s: N, f: N, ms: N, msN: N, cost: N, costN: N, at: N })
const Figures = v.object({ agentId: Key, version: Key, results: N, success: N, meanMs: N, meanCost: N })
const SideSchema = v.object({ agentId: Key, version: Key, ok: N, failed: N, msSum: N, costSum: N })
const Status = v.picklist(['running', 'promoted', 'demoted'])
const TrialSchema = v.object({
  name: Key,
  author: v.optional(Key),
  challenger: SideSchema,
  incumbent: SideSchema,
  status: Status,
  decision: v.optional(
    v.object({
      name: Key,
      author: v.optional(Key),
      decision: v.picklist(['promoted', 'demoted']),
      challenger: Figures,
      incumbent: Figures,
      reason: v.pipe(v.string(), v.maxLength(2000)),
      at: N
    })
  )
})
const SampleSchema = v.object({ failed: v.boolean(), ms: v.optional(N), disagreed: v.optional(v.boolean()) })
const FlagSchema = v.object({
  kind: v.picklist(['agent', 'user']),
  id: Key,
  metric: v.picklist(['failure', 'latency', 'disagreement']),
  baseline: v.pipe(v.number(), v.finite()),
  recent: v.pipe(v.number(), v.finite()),
  z: v.pipe(v.number(), v.finite()),
  at: N,
  checks: N,
  lastCheck: v.optional(v.picklist(['passed', 'failed']))
})

/** Schema of {@link LearningState}. */
export const LearningStateSchema = v.object({
  v: v.literal(1),
  bandit: v.pipe(v.array(v.tuple([Key, v.pipe(v.array(v.tuple([Key, ArmSchema])), v.maxLength(4096))])), v.maxLength(4096)),
  ab: v.pipe(v.array(v.tuple([Key, TrialSchema])), v.maxLength(4096)),
  anomaly: v.pipe(
    v.array(v.tuple([Key, v.object({ samples: v.pipe(v.array(SampleSchema), v.maxLength(10_000)), flag: v.optional(FlagSchema) })])),
    v.maxLength(4096)
  ),
  health: v.object({ runs: N, passed: N, failed: N })
})

/** Loads and saves the learned state. */
export interface LearningStore {
  load(): Promise<LearningState | undefined>
  save(state: LearningState): Promise<void>
}

/** Parse a stored value; undefined when it is not a learned state. */
export function parseLearningState(value: unknown): LearningState | undefined {
  const r = v.safeParse(LearningStateSchema, value)
  return r.success ? (r.output as LearningState) : undefined
}

/** Keeps the state in memory (Node, tests; share one to simulate a reload). */
export class MemoryLearningStore implements LearningStore {
  state: unknown
  async load(): Promise<LearningState | undefined> {
    return this.state == null ? undefined : parseLearningState(structuredClone(this.state))
  }
  async save(state: LearningState): Promise<void> {
    this.state = structuredClone(state)
  }
}

/** Keeps the state in this browser profile's IndexedDB (database `zerostate-learning`). */
export class IndexedDbLearningStore implements LearningStore {
  readonly #value: IdbValue
  constructor(dbName = 'zerostate-learning') {
    this.#value = new IdbValue(dbName, 'learning')
  }
  async load(): Promise<LearningState | undefined> {
    return parseLearningState(await this.#value.read())
  }
  async save(state: LearningState): Promise<void> {
    await this.#value.write(state)
  }
}
