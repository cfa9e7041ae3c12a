/**
 * Where a profile's trust state is kept across reloads: verification streaks,
 * reputation observations and receipts. `IndexedDbTrustStore` in browsers (one
 * record per profile), `MemoryTrustStore` in Node and tests. What is read back is
 * validated (IndexedDB is a boundary too) and receipts are verified again.
 */
import * as v from 'valibot'
import { IdbValue } from '../../core/index.ts'
import type { PolicySnapshot } from './policy.ts'
import type { ReputationSnapshot } from './reputation.ts'

/** The persisted state (version 1). */
export interface TrustState {
  v: 1
  policy: PolicySnapshot
  reputation: ReputationSnapshot
  /** Receipts as stored (verified again on load). */
  receipts: unknown[]
}

const Count = v.pipe(v.number(), v.finite(), v.minValue(0))
/** Schema of {@link TrustState}. */
export const TrustStateSchema = v.object({
  v: v.literal(1),
  policy: v.record(v.pipe(v.string(), v.maxLength(300)), v.pipe(v.number(), v.integer(), v.minValue(0))),
  reputation: v.record(v.pipe(v.string(), v.maxLength(300)), v.object({ valid: Count, invalid: Count, runs: Count, totalMs: Count, totalCost: Count })),
  receipts: v.pipe(v.array(v.unknown()), v.maxLength(100_000))
})

/** Loads and saves the trust state. */
export interface TrustStore {
  load(): Promise<TrustState | undefined>
  save(state: TrustState): Promise<void>
}

/** Parse a stored value; undefined when it is not a trust state. */
export function parseTrustState(value: unknown): TrustState | undefined {
  const r = v.safeParse(TrustStateSchema, value)
  return r.success ? (r.output as TrustState) : undefined
}

/** Keeps the state in memory (Node, tests; `state` may be shared to simulate a reload). */
export class MemoryTrustStore implements TrustStore {
  state: TrustState | undefined
  async load(): Promise<TrustState | undefined> {
    return this.state == null ? undefined : parseTrustState(structuredClone(this.state))
  }
  async save(state: TrustState): Promise<void> {
    this.state = structuredClone(state)
  }
}

/** Keeps the state in this browser profile's IndexedDB (database `zerostate-trust`). */
export class IndexedDbTrustStore implements TrustStore {
  readonly #value: IdbValue
  constructor(dbName = 'zerostate-trust') {
    this.#value = new IdbValue(dbName, 'trust')
  }
  async load(): Promise<TrustState | undefined> {
    return parseTrustState(await this.#value.read())
  }
  async save(state: TrustState): Promise<void> {
    await this.#value.write(state)
  }
}
