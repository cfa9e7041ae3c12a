/**
 * Mutation survivors (issue 9), capacity: waits for a full donor, the donor windows learned from
 * 'full' declines and successes, and donors lost mid-step (neither uses up attempts, up to a cap).
 */
import { describe, expect, it } from 'vitest'
import { StepFailedError, PeerUnavailableError } from '../errors.ts'
import { agent } from '../test-fixtures.ts'
import { MemoryTaskNetwork, answers, peer, planOf, prefs, scriptedDonor, submitter } from './survivors.test-fixtures.ts'

const hash = agent('hasher', ['hashing'], 0.02)
const oneAttempt = (backoff_ms: number) => prefs({ strategy: 'speed', retry_policy: { max_attempts: 1, backoff_ms, backoff_multiplier: 1 } })

describe('capacity waits (mutation survivors)', () => {
  it('a full donor is waited for without spending attempts, each wait 1.5x longer, with a retrying event', async () => {
    const net = new MemoryTaskNetwork()
    const at: number[] = []
    const donor = await scriptedDonor(net, 'donor', (o, d) => {
      at.push(performance.now())
      if (at.length <= 3) d.decline(o.rid, 'full')
      else answers(() => 'done')(o, d)
    })
    const s = await submitter(net, [hash], [peer('donor')])
    const events: string[] = []
    const r = await s.run(planOf([{ id: 's1' }]), { prefs: oneAttempt(40), events })
    expect(r.steps[0]).toMatchObject({ output: 'done', attempts: 1 })
    expect(donor.offers).toHaveLength(4)
    expect(events).toEqual([
      'dispatched:donor:1',
      'failed:donor:1',
      'retrying:donor:1',
      'dispatched:donor:1',
      'failed:donor:1',
      'retrying:donor:1',
      'dispatched:donor:1',
      'failed:donor:1',
      'retrying:donor:1',
      'dispatched:donor:1',
      'accepted:donor:1',
      'succeeded:donor:1'
    ])
    // Lower bounds only (timers never fire early): 40 x 1.5, x 1.5², x 1.5³.
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(59)
    expect(at[2] - at[1]).toBeGreaterThanOrEqual(89)
    expect(at[3] - at[2]).toBeGreaterThanOrEqual(134)
    expect(s.d.stats().declines).toBe(3)
  })

  it('the retrying event of a capacity wait names the decline', async () => {
    const net = new MemoryTaskNetwork()
    let n = 0
    await scriptedDonor(net, 'donor', (o, d) => {
      if (n++ === 0) d.decline(o.rid, 'full')
      else answers(() => 'done')(o, d)
    })
    const s = await submitter(net, [hash], [peer('donor')])
    const retrying: Array<{ status: string; error?: string; attempt: number }> = []
    await s.run(planOf([{ id: 's1' }]), {
      prefs: oneAttempt(1),
      onStep: (e) => {
        if (e.status === 'retrying') retrying.push({ status: e.status, error: e.error, attempt: e.attempt })
      }
    })
    expect(retrying).toEqual([{ status: 'retrying', attempt: 1, error: 'donor declined: full' }])
  })

  it('a full donor with another choice left moves on at once, with no capacity wait', async () => {
    const net = new MemoryTaskNetwork()
    await scriptedDonor(net, 'a-full', (o, d) => d.decline(o.rid, 'full'))
    await scriptedDonor(
      net,
      'b-spare',
      answers(() => 'done')
    )
    const s = await submitter(net, [hash], [peer('a-full', { rttMs: 1 }), peer('b-spare', { rttMs: 200 })])
    const events: string[] = []
    await s.run(planOf([{ id: 's1' }]), { prefs: oneAttempt(1), events })
    expect(events).toEqual(['dispatched:a-full:1', 'failed:a-full:1', 'dispatched:b-spare:1', 'accepted:b-spare:1', 'succeeded:b-spare:1'])
  })

  it('a donor full for good: after 40 capacity waits the next "full" spends the attempt and the step fails', async () => {
    const net = new MemoryTaskNetwork()
    const donor = await scriptedDonor(net, 'donor', (o, d) => d.decline(o.rid, 'full'))
    const s = await submitter(net, [hash], [peer('donor')])
    const err = await s.run(planOf([{ id: 's1' }]), { prefs: oneAttempt(1) }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StepFailedError)
    expect((err as Error).message).toMatch(/last error: donor declined: full$/)
    expect(donor.offers).toHaveLength(41)
    expect(s.d.stats().declines).toBe(41)
  })
})

describe('donor windows (mutation survivors)', () => {
  it("a 'full' decline shrinks the donor's window to what it runs for us, a success widens it, and other declines leave it", async () => {
    // a-fast is everyone's first choice; b-slow only gets what a-fast's window holds back.
    const net = new MemoryTaskNetwork()
    let mode: 'answer' | 'no-agent' | 'full' = 'no-agent'
    await scriptedDonor(net, 'a-fast', (o, d) => {
      if (mode === 'answer') answers(() => 'a')(o, d)
      else d.decline(o.rid, mode)
    })
    await scriptedDonor(
      net,
      'b-slow',
      answers(() => 'b')
    )
    const s = await submitter(net, [hash], [peer('a-fast', { rttMs: 1, freeWorkers: 8 }), peer('b-slow', { rttMs: 300, freeWorkers: 8 })])
    const two = planOf([{ id: 's1' }, { id: 's2' }])
    const where = (r: Awaited<ReturnType<typeof s.run>>): string[] => r.steps.map((x) => x.peer)

    // 'no-agent' says nothing about room: both parallel steps still go to a-fast.
    expect(where(await s.run(planOf([{ id: 's1' }])))).toEqual(['b-slow'])
    mode = 'answer'
    expect(where(await s.run(two))).toEqual(['a-fast', 'a-fast'])

    // 'full' with nothing of ours running there: the window is 1, so the second step goes to b-slow.
    mode = 'full'
    expect(where(await s.run(planOf([{ id: 's1' }])))).toEqual(['b-slow'])
    mode = 'answer'
    expect(where(await s.run(two))).toEqual(['a-fast', 'b-slow'])

    // That success widened the window to 2: both go to a-fast again.
    expect(where(await s.run(two))).toEqual(['a-fast', 'a-fast'])
  })
})

describe('donors lost mid-step (mutation survivors)', () => {
  it('up to 8 lost donors do not spend an attempt; the 9th does, and the step fails naming the loss', async () => {
    const net = new MemoryTaskNetwork()
    const ids = Array.from({ length: 10 }, (_, i) => `d${i}`)
    const donors = await Promise.all(
      ids.map((id) =>
        scriptedDonor(net, id, (o, d) => {
          d.accept(o.rid)
          // The donor's tab closes while it runs the step.
          setTimeout(() => net.kill(id), 1)
        })
      )
    )
    const s = await submitter(
      net,
      [hash],
      ids.map((id, i) => peer(id, { rttMs: 10 + i * 10 }))
    )
    const events: string[] = []
    const err = await s.run(planOf([{ id: 's1' }]), { prefs: oneAttempt(1), events }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StepFailedError)
    expect((err as Error).cause).toBeInstanceOf(PeerUnavailableError)
    expect((err as Error).message).toMatch(/last error: d8 closed while running a step$/)
    expect(donors.map((d) => d.offers.length)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
    expect(s.d.stats().peersLost).toBe(9)
    expect(events.filter((e) => e.startsWith('failed'))).toEqual(ids.slice(0, 9).map((id) => `failed:${id}:1`))
    // Each loss is recorded against the attempt it happened in.
    expect(s.outcomes.map((o) => [o.peerId, o.attempt, o.errorName])).toEqual(ids.slice(0, 9).map((id) => [id, 1, 'PeerUnavailableError']))
  })
})
