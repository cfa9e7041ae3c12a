/**
 * Learning wired for real (issue 12): the orchestrator's dispatcher feeds it, its router reads it,
 * and the app's known-answer health check runs through the orchestrator on the flagged user's
 * peers only. Donors run in-process over the in-memory task transport.
 */
import { describe, expect, it } from 'vitest'
import {
  MemoryTaskNetwork,
  createOrchestrator,
  donorService,
  routeLearning,
  type AbDecision,
  type AgentCandidate,
  type LocalExecutor,
  type PeerSnapshot
} from '../orchestrator/index.ts'
import { decisionSubject, knownAnswerCheck, probeInput, registryDecisions } from './learning-wiring.ts'

const hasher: AgentCandidate = { id: 'a'.repeat(64), name: 'hash', version: '1.0.0', capabilities: ['hashing'], price: 0.1 }
const manifest = { name: 'hash', input: { type: 'string' } }
const hash = (x: unknown): string => `h(${String(x)})`

/** An executor of one agent whose answers `behaviour()` decides; counts runs and probe inputs. */
function donorExecutor(behaviour: () => 'ok' | 'broken'): LocalExecutor & { runs: number; probes: number } {
  const ex = {
    runs: 0,
    probes: 0,
    has: (id: string) => id === hasher.id,
    freeWorkers: () => 4,
    async run(_id: string, input: unknown) {
      ex.runs++
      if (typeof input === 'string' && input.startsWith('ZeroState health check')) ex.probes++
      if (behaviour() === 'broken') throw new Error('runtime patched')
      return { output: hash(input), ms: 1 }
    }
  }
  return ex
}

describe('learning through the orchestrator', () => {
  it("a failing donor's user is flagged and routed around; the known-answer check runs on its peers only and clears it once it answers right", async () => {
    const net = new MemoryTaskNetwork()
    const donors: PeerSnapshot[] = [
      { id: 'a-fast', rttMs: 1, freeWorkers: 4, donating: true, capabilities: [] },
      { id: 'b-slow', rttMs: 30, freeWorkers: 4, donating: true, capabilities: [] }
    ]
    let fastState: 'ok' | 'broken' = 'ok'
    const ex = { 'a-fast': donorExecutor(() => fastState), 'b-slow': donorExecutor(() => 'ok') }
    for (const d of donors) {
      const t = net.transport(d.id)
      await t.start()
      await donorService()({ transport: t, executor: ex[d.id as keyof typeof ex] }).start()
    }
    const catalog = { list: () => [hasher], version: () => 1, get: (id: string) => (id === hasher.id ? { manifest } : undefined) }
    const peers = { peers: () => donors }
    // This tab's own runtime gives the known answer.
    const local = donorExecutor(() => 'ok')
    let orch: ReturnType<typeof createOrchestrator> | undefined
    const learning = routeLearning({ anomaly: { window: 10, minHistory: 20 }, healthDelayMs: 3_600_000 })({
      users: { userOf: (p) => (p === 'me' ? 'user:me' : `user:${p}`) },
      self: 'user:me',
      health: knownAnswerCheck({
        catalog,
        executor: local,
        trust: { agree: async (_id, a, b) => a === b, checkOutput: (_id, o) => (typeof o === 'string' ? undefined : 'not a string') },
        peers,
        orchestrator: () => orch
      })
    })
    orch = createOrchestrator({ catalog, peers, transport: net.transport('me'), learning })
    await orch.start()
    const submit = async (i: number) => {
      const r = await orch!.submit({ description: 'hash', capabilities: ['hashing'], input: `x${i}`, preferences: { strategy: 'speed' } }).done
      expect(r.status).toBe('succeeded')
      expect(r.output).toBe(hash(`x${i}`))
      return r.steps[0].peer
    }
    for (let i = 0; i < 25; i++) expect(await submit(i)).toBe('a-fast')
    // a-fast breaks: each task tries it first, fails, and succeeds on b-slow, until the user is flagged.
    fastState = 'broken'
    let i = 100
    while (!learning.peerFlagged('a-fast') && i < 160) await submit(i++)
    expect(learning.peerFlagged('a-fast')).toBe(true)
    expect(learning.snapshot().anomalies).toContainEqual(expect.objectContaining({ kind: 'user', id: 'user:a-fast', metric: 'failure' }))
    // Routed around: no further attempt on a-fast.
    const before = ex['a-fast'].runs
    for (let k = 0; k < 5; k++) expect(await submit(200 + k)).toBe('b-slow')
    expect(ex['a-fast'].runs).toBe(before)
    // Still broken: the known-answer run goes to a-fast alone (not to b-slow), fails, and the flag stays.
    const bProbes = ex['b-slow'].probes
    expect(await learning.checkHealth('user', 'user:a-fast')).toBe(false)
    expect(ex['a-fast'].probes).toBe(1)
    expect(ex['b-slow'].probes).toBe(bProbes)
    expect(local.probes).toBe(1)
    expect(learning.peerFlagged('a-fast')).toBe(true)
    // Repaired: the check passes, the flag clears, and the fast donor gets the traffic back.
    fastState = 'ok'
    expect(await learning.checkHealth('user', 'user:a-fast')).toBe(true)
    expect(learning.peerFlagged('a-fast')).toBe(false)
    expect(await submit(300)).toBe('a-fast')
    learning.stop()
    await orch.stop()
  })
})

describe('app adapters', () => {
  const decision: AbDecision = {
    name: 'summarize',
    author: 'ed25519:x',
    decision: 'promoted',
    challenger: { agentId: 'c', version: '1.10.0', results: 31, success: 0.9677, meanMs: 18.2, meanCost: 0.1 },
    incumbent: { agentId: 'i', version: '1.9.0', results: 279, success: 0.9534, meanMs: 20, meanCost: 0.1 },
    reason: 'no worse',
    at: 1
  }

  it('an A/B decision becomes a signed registry record with its figures in the subject', async () => {
    expect(decisionSubject(decision)).toBe('ab:summarize@1.10.0:promoted:vs=1.9.0;s=0.9677/0.9534;ms=18.2/20;cost=0.1/0.1;n=31/279')
    const written: unknown[] = []
    await registryDecisions({ publishReputation: async (r) => void written.push(r) }).publish(decision)
    expect(written).toEqual([{ subject: decisionSubject(decision), score: 0.9677, successes: 30, failures: 1 }])
    expect(decisionSubject({ ...decision, name: 'n'.repeat(300) }).length).toBe(200)
  })

  it('probe inputs follow the declared input type', () => {
    expect(typeof probeInput({ input: { type: 'string' } })).toBe('string')
    expect(probeInput({ input: { type: 'number' } })).toBe(42)
    expect(Array.isArray(probeInput({ input: { type: 'array' } }))).toBe(true)
    expect(typeof probeInput(undefined)).toBe('string')
  })
})
