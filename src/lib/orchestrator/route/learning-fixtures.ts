/** Shared helpers of the learning tests (not exported from index.ts). */
import { seededRandom } from '../../core/index.ts'
import type { StepOutcome } from '../components.ts'

/** A seeded uniform source: core's seededRandom, by the name these tests know it. */
export const seeded = seededRandom

let n = 0
/** A step outcome with defaults. */
export function outcome(agentId: string, success: boolean, extra: Partial<StepOutcome> = {}): StepOutcome {
  n++
  return {
    taskId: `t${n}`,
    stepId: 's1',
    agentId,
    peerId: 'p1',
    capabilities: ['text-summarization'],
    attempt: 1,
    success,
    durationMs: 10,
    cost: 0.1,
    inputSize: 1,
    outputSize: 1,
    at: 1_700_000_000_000 + n,
    ...(success ? {} : { errorName: 'StepFailedError' }),
    ...extra
  }
}
