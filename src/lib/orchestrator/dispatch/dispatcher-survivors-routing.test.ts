/**
 * Mutation survivors (issue 9), route choice and errors: pinned agents, where a step runs when
 * this peer has a runtime too, the local fallback, what a failed choice excludes, the error type
 * a caller gets, and a caller without listeners.
 */
import { describe, expect, it } from 'vitest'
import { NoEligibleAgentError, RemoteError, StepFailedError } from '../errors.ts'
import { NoEligiblePeerError } from '../route/index.ts'
import { agent, fnExecutor } from '../test-fixtures.ts'
import { BudgetExceededError } from './budget.ts'
import { TASK_INLINE_JSON_BYTES } from './task-protocol.ts'
import { PAYLOAD_CHUNK_BYTES } from '../../core/index.ts'
import { MemoryTaskNetwork, answers, peer, planOf, prefs, scriptedDonor, submitter, type ScriptedDonor } from './survivors.test-fixtures.ts'
import type { StepEvent } from './dispatcher.ts'

const cheap = agent('cheap', ['hashing'], 0.5)
const dear = agent('dear', ['hashing'], 0.8)
const hash = agent('hasher', ['hashing'], 0.02)
const byAgent = (o: { agentId: string }): string => (o.agentId === cheap.id ? 'cheap' : o.agentId === dear.id ? 'dear' : 'other')

describe('route choice (mutation survivors)', () => {
  it('a pinned step runs its pinned agent even when another one ranks first', async () => {
    const net = new MemoryTaskNetwork()
    const d = await scriptedDonor(net, 'donor', answers(byAgent))
    const s = await submitter(net, [cheap, dear], [peer('donor')])
    const cost = prefs({ strategy: 'cost' })
    expect((await s.run(planOf([{ id: 's1' }]), { prefs: cost })).outputs.get('s1')).toBe('cheap')
    const r = await s.run(planOf([{ id: 's1' }]), { prefs: cost, pinned: new Map([['s1', dear.id]]) })
    expect(r.steps[0]).toMatchObject({ agent: dear.id, output: 'dear' })
    expect(d.offers.map((o) => o.agentId)).toEqual([cheap.id, dear.id])
  })

  it('with a runtime here and a donor online, the step goes to the donor (this peer runs only when no donor can)', async () => {
    const net = new MemoryTaskNetwork()
    await scriptedDonor(
      net,
      'donor',
      answers(() => 'remote')
    )
    const local = fnExecutor({ [hash.id]: () => 'local' })
    const s = await submitter(net, [hash], [peer('donor')], {}, local)
    const r = await s.run(planOf([{ id: 's1' }]))
    expect(r.steps[0]).toMatchObject({ peer: 'donor', output: 'remote' })
    expect(local.runs).toBe(0)
    expect(s.d.stats()).toMatchObject({ localRuns: 0, offers: 1 })
  })

  it('without a runtime here and no donor, the step fails with NoEligiblePeerError', async () => {
    const net = new MemoryTaskNetwork()
    const s = await submitter(net, [hash], [])
    await expect(s.run(planOf([{ id: 's1' }]))).rejects.toBeInstanceOf(NoEligiblePeerError)
  })

  it('a local fallback whose agent is not installed here is tried once, then the step fails saying so', async () => {
    const net = new MemoryTaskNetwork()
    const local = fnExecutor({})
    const s = await submitter(net, [hash], [], {}, local)
    const err = await s.run(planOf([{ id: 's1' }])).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StepFailedError)
    expect((err as Error).message).toMatch(/last error: agent hasher is not installed on this peer$/)
    expect(s.d.stats().localRuns).toBe(1)
  })

  it('a donor that errs is not offered the step again: one offer, no lease counted lost, StepFailedError caused by the RemoteError', async () => {
    const net = new MemoryTaskNetwork()
    const bad = await scriptedDonor(net, 'bad', (o, d) => {
      d.accept(o.rid)
      d.send({ type: 'error', rid: o.rid, name: 'TypeError', message: 'nope' })
    })
    const s = await submitter(net, [hash], [peer('bad')])
    const err = await s.run(planOf([{ id: 's1' }])).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StepFailedError)
    expect((err as Error).cause).toBeInstanceOf(RemoteError)
    expect(bad.offers).toHaveLength(1)
    expect(s.d.stats()).toMatchObject({ offers: 1, leasesLost: 0 })
  })

  it('after a donor is lost, no other agent is offered on that peer', async () => {
    const net = new MemoryTaskNetwork()
    // Both agents rank on "a-dies" before "b-ok": once a-dies is gone, its second pair is skipped.
    const a = await scriptedDonor(net, 'a-dies', (o, d) => {
      d.accept(o.rid)
      setTimeout(() => net.kill('a-dies'), 1)
    })
    await scriptedDonor(net, 'b-ok', answers(byAgent))
    const s = await submitter(net, [cheap, dear], [peer('a-dies', { rttMs: 1 }), peer('b-ok', { rttMs: 400 })])
    const r = await s.run(planOf([{ id: 's1' }]), {
      prefs: prefs({ strategy: 'speed', retry_policy: { max_attempts: 1, backoff_ms: 1, backoff_multiplier: 1 } })
    })
    expect(r.steps[0].peer).toBe('b-ok')
    expect(a.offers).toHaveLength(1)
    expect(s.d.stats().peersLost).toBe(1)
  })

  it("a second choice's event explains itself: which agent on which peer, its rank, and why", async () => {
    const net = new MemoryTaskNetwork()
    await scriptedDonor(net, 'aaaa-first-11', (o, d) => d.decline(o.rid, 'no-agent'))
    await scriptedDonor(
      net,
      'bbbb-second-42',
      answers(() => 'ok')
    )
    const s = await submitter(net, [hash], [peer('aaaa-first-11', { rttMs: 1 }), peer('bbbb-second-42', { rttMs: 200 })])
    const events: StepEvent[] = []
    await s.run(planOf([{ id: 's1' }]), { stepEvents: events })
    const second = events.find((e) => e.status === 'dispatched' && e.peer === 'bbbb-second-42')
    expect(second?.reasoning).toMatch(
      /^Chose hasher@1\.2\.0 on peer bbbb…42 as choice 2 of 2 ranked \(agent, peer\) pairs \(score [0-9.]+\), after an earlier choice failed$/
    )
    expect(second?.route).toMatchObject({ rank: 2, pairs: 2 })
  })
})

describe('error types (mutation survivors)', () => {
  it('agents excluded by a constraint other than price give NoEligibleAgentError, with or without max_cost', async () => {
    const net = new MemoryTaskNetwork()
    await scriptedDonor(
      net,
      'donor',
      answers(() => 'ok')
    )
    const s = await submitter(net, [hash], [peer('donor')])
    for (const max_cost of [undefined, 10]) {
      const err = await s.run(planOf([{ id: 's1' }]), { prefs: prefs({ min_quality: 0.9, max_cost }) }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(NoEligibleAgentError)
      expect(err).not.toBeInstanceOf(BudgetExceededError)
    }
  })

  it('when max_cost rules every agent out, BudgetExceededError names the cheapest one that would have run (the pinned one when pinned)', async () => {
    const net = new MemoryTaskNetwork()
    await scriptedDonor(
      net,
      'donor',
      answers(() => 'ok')
    )
    const s = await submitter(net, [cheap, dear], [peer('donor')])
    const err = await s.run(planOf([{ id: 's1' }]), { prefs: prefs({ max_cost: 0.3 }) }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BudgetExceededError)
    expect((err as Error).message).toMatch(/needs 0\.5 credits but only 0\.3 of max_cost 0\.3 are left/)
    const pinned = await s.run(planOf([{ id: 's1' }]), { prefs: prefs({ max_cost: 0.3 }), pinned: new Map([['s1', dear.id]]) }).catch((e: unknown) => e)
    expect(pinned).toBeInstanceOf(BudgetExceededError)
    expect((pinned as Error).message).toMatch(/needs 0\.8 credits/)
  })
})

describe('a caller without listeners (mutation survivors)', () => {
  it('runs through a capacity wait, a retry, a large input and a commit with no onStep and no onTransfer', async () => {
    const net = new MemoryTaskNetwork()
    let full = true
    const a = await scriptedDonor(net, 'a-erring', (o, d) => {
      if (full) {
        full = false
        d.decline(o.rid, 'full')
        return
      }
      d.accept(o.rid)
      d.send({ type: 'error', rid: o.rid, name: 'Error', message: 'boom' })
    })
    // Both donors are full at first (a capacity wait); then a-erring errs (a retry) and b-ok takes the
    // large input's chunks after accepting, then answers.
    let chunks = 0
    const b: ScriptedDonor = await scriptedDonor(
      net,
      'b-ok',
      (o, d) => {
        if (d.offers.length === 1) return d.decline(o.rid, 'full')
        chunks = Math.ceil((o.payload?.size ?? 0) / PAYLOAD_CHUNK_BYTES)
        d.accept(o.rid)
      },
      (m, d) => {
        if (m.type === 'chunk') {
          d.send({ type: 'chunk-ack', rid: m.rid, next: m.index + 1 })
          if (m.index === chunks - 1) d.result(m.rid, 'ok')
        }
      }
    )
    const s = await submitter(net, [hash], [peer('a-erring', { rttMs: 1 }), peer('b-ok', { rttMs: 200 })])
    const input = 'w'.repeat(TASK_INLINE_JSON_BYTES * 2)
    const r = await s.d.run(planOf([{ id: 's1' }]), { taskId: 'quiet', input, prefs: prefs({ strategy: 'speed' }), signal: new AbortController().signal })
    expect(r.steps[0]).toMatchObject({ peer: 'b-ok', output: 'ok', attempts: 2 })
    expect(a.offers).toHaveLength(2)
    expect(b.offers).toHaveLength(2)
    expect(b.received.some((m) => m.type === 'chunk')).toBe(true)
  })
})
