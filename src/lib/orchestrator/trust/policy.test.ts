import { describe, expect, it } from 'vitest'
import { AdaptivePolicy, parseVerificationMode } from './policy.ts'

const A = 'agent-1'

describe('AdaptivePolicy', () => {
  it('replicates an untrusted user, never replicates under none or for this profile, always under always', () => {
    const p = new AdaptivePolicy({ self: 'me', random: () => 0.999 })
    expect(p.decide('u', A, 'adaptive')).toMatchObject({ replicate: true, reason: 'untrusted' })
    expect(p.decide('u', A, 'none')).toMatchObject({ replicate: false, reason: 'none' })
    expect(p.decide('me', A, 'always')).toMatchObject({ replicate: false, reason: 'self' })
    for (let i = 0; i < 50; i++) p.settle({ agentId: A, agreed: ['u'], disagreed: [] })
    expect(p.decide('u', A, 'always')).toMatchObject({ replicate: true, reason: 'always' })
    expect(p.decide('u', A, 'adaptive')).toMatchObject({ replicate: false, reason: 'trusted' })
  })

  it('earns trust by consecutive agreements per (user, agent) and loses it at once on a disagreement', () => {
    const p = new AdaptivePolicy({ trustAfter: 4 })
    for (let i = 0; i < 3; i++) p.settle({ agentId: A, agreed: ['u'], disagreed: [] })
    expect(p.trust('u', A)).toMatchObject({ streak: 3, trusted: false, checkProbability: 1 })
    p.settle({ agentId: A, agreed: ['u'], disagreed: [] })
    expect(p.trust('u', A).trusted).toBe(true)
    // Trust is per agent: another agent starts from nothing.
    expect(p.trust('u', 'agent-2').trusted).toBe(false)
    p.settle({ agentId: A, agreed: ['v'], disagreed: ['u'] })
    expect(p.trust('u', A)).toMatchObject({ streak: 0, trusted: false })
    // An inconclusive step (no majority) also resets.
    p.settle({ agentId: A, agreed: ['w'], disagreed: [] })
    p.settle({ agentId: A, agreed: [], disagreed: [], inconclusive: ['w'] })
    expect(p.trust('w', A).streak).toBe(0)
  })

  it('spot-checks trusted users at random with a probability that falls with the streak and never reaches zero', () => {
    let seed = 7
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const p = new AdaptivePolicy({ trustAfter: 10, spotCheck: 5, minSpotCheck: 0.05, random })
    const probs: number[] = []
    for (let i = 1; i <= 10_000; i++) {
      p.settle({ agentId: A, agreed: ['u'], disagreed: [] })
      if ([10, 20, 100, 10_000].includes(i)) probs.push(p.trust('u', A).checkProbability)
    }
    expect(probs).toEqual([0.5, 0.25, 0.05, 0.05])
    // At streak 20 the observed check rate matches 0.25.
    const q = new AdaptivePolicy({ trustAfter: 10, spotCheck: 5, random })
    for (let i = 0; i < 20; i++) q.settle({ agentId: A, agreed: ['u'], disagreed: [] })
    let checks = 0
    for (let i = 0; i < 4000; i++) if (q.decide('u', A, 'adaptive').replicate) checks++
    expect(checks / 4000).toBeGreaterThan(0.22)
    expect(checks / 4000).toBeLessThan(0.28)
  })

  it('persists streaks and refuses malformed snapshots', () => {
    const p = new AdaptivePolicy()
    p.settle({ agentId: A, agreed: ['u'], disagreed: [] })
    const q = new AdaptivePolicy()
    q.restore({ ...p.snapshot(), bad: 3, 'x|y': -1, 'z|w': 1.5 } as Record<string, number>)
    expect(q.trust('u', A).streak).toBe(1)
    expect(Object.keys(q.snapshot())).toEqual([`u|${A}`])
  })

  it('parses preferences.verification', () => {
    const err = (m: string) => new TypeError(m)
    expect(parseVerificationMode(undefined, err)).toBeUndefined()
    expect(parseVerificationMode('always', err)).toBe('always')
    expect(() => parseVerificationMode('never', err)).toThrow(/adaptive/)
  })
})
