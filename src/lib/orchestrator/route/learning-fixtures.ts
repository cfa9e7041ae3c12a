/** Shared helpers of the learning tests (not exported from index.ts). */
import type { StepOutcome } from '../components.ts'

/** A seeded uniform source (mulberry32): the same seed gives the same sequence. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

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
