/**
 * Mutation survivors (issue 9), messages and leases: whose answer counts for an attempt, lease
 * renewals, late results of given-up attempts, and which donors are told to stop. Donors are
 * scripted (survivors.test-fixtures.ts), so each path runs in a fixed order.
 */
import { describe, expect, it, vi } from 'vitest'
import { agent } from '../test-fixtures.ts'
import { MemoryTaskNetwork, answers, peer, planOf, prefs, scriptedDonor, submitter, type ScriptedDonor } from './survivors.test-fixtures.ts'

const hash = agent('hasher', ['hashing'], 0.02)
const cancels = (d: ScriptedDonor): string[] => d.received.filter((m) => m.type === 'cancel').map((m) => m.rid)

describe('dispatcher messages (mutation survivors)', () => {
  it("a result sent by a peer the attempt was not offered to is ignored: only the donor's own answer commits", async () => {
    const net = new MemoryTaskNetwork()
    const impostor = await scriptedDonor(net, 'impostor', () => {})
    await scriptedDonor(net, 'donor', (o, d) => {
      d.accept(o.rid)
      // Another peer answers first with the donor's request id.
      impostor.result(o.rid, 'forged')
      d.result(o.rid, 'genuine')
    })
    const s = await submitter(net, [hash], [peer('donor')])
    const r = await s.run(planOf([{ id: 's1' }]))
    expect(r.outputs.get('s1')).toBe('genuine')
    expect(s.d.stats()).toMatchObject({ committed: 1, offers: 1 })
  })

  it('stray accepts, renewals, declines and errors for requests we never made change no counter; a receipt without trust is dropped quietly', async () => {
    const net = new MemoryTaskNetwork()
    const stranger = await scriptedDonor(net, 'stranger', () => {})
    const s = await submitter(net, [hash], [])
    const before = s.d.stats()
    stranger.send({ type: 'accept', rid: 'nope#1', leaseMs: 100 })
    stranger.send({ type: 'lease-renew', rid: 'nope#1', leaseMs: 100 })
    stranger.send({ type: 'decline', rid: 'nope#1', reason: 'full' })
    stranger.send({ type: 'error', rid: 'nope#1', name: 'Error', message: 'x' })
    stranger.send({ type: 'receipt', rid: 'nope#1', receipt: { v: 1 } })
    stranger.result('nope#2', 'late')
    // The result is last: once it is counted, everything before it was handled.
    await vi.waitFor(() => {
      expect(s.d.stats().duplicatesIgnored).toBe(1)
    })
    expect(s.d.stats()).toEqual({ ...before, duplicatesIgnored: 1 })
    // No handler threw (the transport counts a throwing handler as a dropped message).
    expect(s.t.dropped).toBe(0)
  })

  it('lease renewals keep a step that outlives its first lease on its donor', async () => {
    const net = new MemoryTaskNetwork()
    await scriptedDonor(net, 'donor', (o, d) => {
      // Each renewal comes well inside the lease; together they outlast it twice over.
      d.accept(o.rid, 200)
      let n = 0
      const timer = setInterval(() => {
        d.renew(o.rid, 200)
        if (++n === 10) {
          clearInterval(timer)
          d.result(o.rid, 'slow but alive')
        }
      }, 40)
    })
    const s = await submitter(net, [hash], [peer('donor')])
    const r = await s.run(planOf([{ id: 's1' }]))
    expect(r.outputs.get('s1')).toBe('slow but alive')
    expect(s.d.stats()).toMatchObject({ offers: 1, leasesLost: 0 })
    expect(s.outcomes.map((o) => o.success)).toEqual([true])
  })

  it('a donor that renews once and then goes silent loses its lease at the renewed length (not at the step deadline); the next donor runs the step', async () => {
    const net = new MemoryTaskNetwork()
    const quiet = await scriptedDonor(net, 'a-quiet', (o, d) => {
      d.accept(o.rid, 40)
      setTimeout(() => d.renew(o.rid, 40), 20)
    })
    await scriptedDonor(
      net,
      'b-ok',
      answers(() => 'ok')
    )
    // A step deadline far beyond the test's: only the lease can end the first attempt in time.
    const s = await submitter(net, [hash], [peer('a-quiet', { rttMs: 1 }), peer('b-ok', { rttMs: 200 })], { stepTimeoutMs: 120_000 })
    const r = await s.run(planOf([{ id: 's1' }]), {
      prefs: prefs({ strategy: 'speed', retry_policy: { max_attempts: 2, backoff_ms: 1, backoff_multiplier: 1 } })
    })
    expect(r.steps[0]).toMatchObject({ peer: 'b-ok', output: 'ok', attempts: 2 })
    expect(s.outcomes.map((o) => [o.peerId, o.errorName ?? null])).toEqual([
      ['a-quiet', 'LeaseLostError'],
      ['b-ok', null]
    ])
    expect(s.d.stats().leasesLost).toBe(1)
    // The given-up attempt is told to stop; the committed one is not.
    await vi.waitFor(() => {
      expect(cancels(quiet)).toEqual([quiet.offers[0].rid])
    })
  })

  it("a donor's long lease cannot stretch an attempt past the step deadline", async () => {
    const net = new MemoryTaskNetwork()
    await scriptedDonor(net, 'a-stuck', (o, d) => {
      d.accept(o.rid, 120_000)
      setTimeout(() => d.renew(o.rid, 120_000), 10)
    })
    await scriptedDonor(
      net,
      'b-ok',
      answers(() => 'ok')
    )
    const s = await submitter(net, [hash], [peer('a-stuck', { rttMs: 1 }), peer('b-ok', { rttMs: 200 })], { stepTimeoutMs: 150 })
    const r = await s.run(planOf([{ id: 's1' }]))
    expect(r.steps[0]).toMatchObject({ peer: 'b-ok', output: 'ok' })
    expect(s.outcomes[0]).toMatchObject({ peerId: 'a-stuck', success: false, errorName: 'LeaseLostError' })
  })

  it('a late result of an attempt superseded by another donor is dropped and counted, never committed; that donor was told to stop first', async () => {
    const net = new MemoryTaskNetwork()
    let late: (() => void) | undefined
    // a-late takes the step, never renews (its lease is lost) and answers once b-slow has the step.
    const a = await scriptedDonor(net, 'a-late', (o, d) => {
      d.accept(o.rid, 30)
      late = () => d.result(o.rid, 'from a')
    })
    // b-slow accepts, a's late answer arrives, then b answers.
    const b = await scriptedDonor(net, 'b-slow', (o, d) => {
      d.accept(o.rid, 120_000)
      setTimeout(() => late?.(), 10)
      setTimeout(() => d.result(o.rid, 'from b'), 60)
    })
    const s = await submitter(net, [hash], [peer('a-late', { rttMs: 1 }), peer('b-slow', { rttMs: 200 })], { stepTimeoutMs: 120_000 })
    const events: string[] = []
    const r = await s.run(planOf([{ id: 's1' }]), { events })
    // Fencing (issue 16): the claim at a-late was withdrawn when b-slow got the step, so a-late's
    // answer is not the step's, though it came first: never two donors' runs for one step.
    expect(r.steps[0]).toMatchObject({ peer: 'b-slow', output: 'from b', attempts: 2 })
    expect(events).toEqual([
      'dispatched:a-late:1',
      'accepted:a-late:1',
      'failed:a-late:1',
      'retrying:b-slow:2',
      'dispatched:b-slow:2',
      'accepted:b-slow:2',
      'succeeded:b-slow:2'
    ])
    expect(cancels(a)).toEqual([a.offers[0].rid])
    expect(cancels(b)).toEqual([])
    expect(s.d.stats()).toMatchObject({ committed: 1, leasesLost: 1, leasesSuperseded: 1, supersededResults: 1, duplicatesIgnored: 0 })
    expect(s.outcomes.map((o) => [o.peerId, o.success, o.attempt])).toEqual([
      ['a-late', false, 1],
      ['b-slow', true, 2]
    ])
  })

  it('a late result arriving during the retry backoff commits without a new offer', async () => {
    const net = new MemoryTaskNetwork()
    let late: (() => void) | undefined
    await scriptedDonor(net, 'a-late', (o, d) => {
      d.accept(o.rid, 30)
      late = () => d.result(o.rid, 'from a')
    })
    const b = await scriptedDonor(
      net,
      'b-spare',
      answers(() => 'from b')
    )
    const s = await submitter(net, [hash], [peer('a-late', { rttMs: 1 }), peer('b-spare', { rttMs: 200 })])
    const r = await s.run(planOf([{ id: 's1' }]), {
      prefs: prefs({ strategy: 'speed', retry_policy: { max_attempts: 3, backoff_ms: 300, backoff_multiplier: 1 } }),
      onStep: (e) => {
        // The lease is lost: the result comes while the dispatcher waits out the backoff.
        if (e.status === 'retrying') late?.()
      }
    })
    expect(r.steps[0]).toMatchObject({ peer: 'a-late', output: 'from a' })
    expect(b.offers).toHaveLength(0)
  })

  it("a peer closing fails only the attempts at that peer: another step's attempt elsewhere carries on", async () => {
    const net = new MemoryTaskNetwork()
    const held: Array<() => void> = []
    const both = (): void => {
      if (held.length < 2) return
      net.kill('a-dies')
      for (const f of held) f()
    }
    await scriptedDonor(net, 'a-dies', (o, d) => {
      d.accept(o.rid)
      held.push(() => {})
      both()
    })
    const b = await scriptedDonor(net, 'b-lives', (o, d) => {
      d.accept(o.rid)
      held.push(() => d.result(o.rid, 'from b'))
      both()
    })
    const s = await submitter(net, [hash], [peer('a-dies'), peer('b-lives')])
    const doomed = s.run(planOf([{ id: 's1' }]), { peers: [peer('a-dies')] }).catch((e: unknown) => e)
    const r = await s.run(planOf([{ id: 's1' }]), { peers: [peer('b-lives')] })
    expect(r.outputs.get('s1')).toBe('from b')
    expect(b.offers).toHaveLength(1)
    expect(await doomed).toBeInstanceOf(Error)
    expect(s.d.stats().peersLost).toBe(1)
  })
})
