/**
 * Dispatcher behaviour that dispatch.test.ts left unpinned (found by mutation testing):
 * offer timeouts, the local fallback switch, remote errors moving to another donor, and the
 * outcome records' fields.
 */
import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from './memory-task-transport.ts'
import { createOrchestrator } from '../index.ts'
import { donorService } from '../donor/index.ts'
import { NoEligiblePeerError } from '../route/index.ts'
import { StepFailedError } from '../errors.ts'
import { agent, catalogOf, fnExecutor, peer } from '../test-fixtures.ts'
import type { StepOutcome } from '../components.ts'
import type { StepEvent } from './dispatcher.ts'

const hash = agent('hasher', ['hashing'], 0.02)
const catalog = catalogOf([hash])
const ok = { [hash.id]: (i: unknown) => ({ hash: `h(${String(i)})` }) }
const fast = { retry_policy: { max_attempts: 3, backoff_ms: 1, backoff_multiplier: 1 } }

async function donor(net: MemoryTaskNetwork, id: string, fns: Record<string, (i: unknown) => unknown> = ok) {
  const t = net.transport(id)
  await t.start()
  const ex = fnExecutor(fns)
  await donorService()({ transport: t, executor: ex }).start()
  return ex
}

describe('dispatcher (mutation-found gaps)', () => {
  it('an offer nobody answers times out (RequestTimeoutError) and the step moves to the next donor', async () => {
    const net = new MemoryTaskNetwork()
    // "silent" is on the network but runs no donor service: offers to it go unanswered.
    await net.transport('silent').start()
    const ex = await donor(net, 'zz-live')
    const outcomes: StepOutcome[] = []
    const peers = [peer('silent', { rttMs: 1 }), peer('zz-live', { rttMs: 50 })]
    const orch = createOrchestrator(
      { catalog, peers: { peers: () => peers }, transport: net.transport('me'), outcomes: { record: (o) => outcomes.push(o) } },
      { dispatcher: { offerTimeoutMs: 80 } }
    )
    await orch.start()
    const events: string[] = []
    const h = orch.submit({ description: 'hash it', input: 'x', preferences: { strategy: 'speed', ...fast } })
    h.on('step', (e: StepEvent) => events.push(`${e.status}:${e.peer}:${e.attempt}`))
    const r = await h.done
    expect(r.steps[0]).toMatchObject({ peer: 'zz-live', output: { hash: 'h(x)' } })
    expect(ex.runs).toBe(1)
    expect(outcomes.map((o) => [o.peerId, o.success, o.errorName ?? null, o.attempt])).toEqual([
      ['silent', false, 'RequestTimeoutError', 1],
      ['zz-live', true, null, 2]
    ])
    expect(events).toEqual([
      'dispatched:silent:1',
      'failed:silent:1',
      'retrying:zz-live:2',
      'dispatched:zz-live:2',
      'accepted:zz-live:2',
      'succeeded:zz-live:2'
    ])
    expect(orch.stats()).toMatchObject({ offers: 2, committed: 1, localRuns: 0 })
  })

  it('a remote error is not retried on the same donor: the next donor runs it; the record carries the remote error', async () => {
    const net = new MemoryTaskNetwork()
    const bad = await donor(net, 'a-bad', {
      [hash.id]: () => {
        throw new TypeError('nope')
      }
    })
    const good = await donor(net, 'b-good')
    const outcomes: StepOutcome[] = []
    const peers = [peer('a-bad', { rttMs: 1 }), peer('b-good', { rttMs: 50 })]
    const orch = createOrchestrator({ catalog, peers: { peers: () => peers }, transport: net.transport('me'), outcomes: { record: (o) => outcomes.push(o) } })
    await orch.start()
    const r = await orch.submit({ description: 'hash it', input: 'y', preferences: { strategy: 'speed', ...fast } }).done
    expect(r.steps[0]).toMatchObject({ peer: 'b-good' })
    expect([bad.runs, good.runs]).toEqual([1, 1])
    expect(outcomes[0]).toMatchObject({ peerId: 'a-bad', success: false, errorName: 'RemoteError', cost: 0, outputSize: 0, attempt: 1 })
    expect(outcomes[0]?.errorMessage).toMatch(/a-bad: TypeError: nope/)
    expect(outcomes[1]).toMatchObject({
      peerId: 'b-good',
      success: true,
      cost: 0.02,
      attempt: 2,
      inputSize: 3,
      outputSize: JSON.stringify({ hash: 'h(y)' }).length
    })
  })

  it('fails with StepFailedError when every donor errs, after max_attempts offers at most', async () => {
    const net = new MemoryTaskNetwork()
    const boom = {
      [hash.id]: () => {
        throw new Error('boom')
      }
    }
    await donor(net, 'd1', boom)
    await donor(net, 'd2', boom)
    await donor(net, 'd3', boom)
    const orch = createOrchestrator({ catalog, peers: { peers: () => [peer('d1'), peer('d2'), peer('d3')] }, transport: net.transport('me') })
    await orch.start()
    const err = await orch
      .submit({ description: 'hash it', input: 1, preferences: { retry_policy: { max_attempts: 2, backoff_ms: 1, backoff_multiplier: 1 } } })
      .done.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StepFailedError)
    expect(orch.stats().offers).toBe(2)
  })

  it('runs here when no donor can, unless runLocallyWhenNoPeer is false', async () => {
    const local = fnExecutor(ok)
    const net = new MemoryTaskNetwork()
    const here = createOrchestrator({ catalog, peers: { peers: () => [] }, transport: net.transport('me'), executor: local })
    await here.start()
    const r = await here.submit({ description: 'hash it', input: 'z' }).done
    expect(r.steps[0]).toMatchObject({ peer: 'me', output: { hash: 'h(z)' } })
    expect(here.stats()).toMatchObject({ localRuns: 1, offers: 0 })
    const strict = createOrchestrator(
      { catalog, peers: { peers: () => [] }, transport: net.transport('me2'), executor: fnExecutor(ok) },
      { dispatcher: { runLocallyWhenNoPeer: false } }
    )
    await strict.start()
    await expect(strict.submit({ description: 'hash it', input: 'z' }).done).rejects.toBeInstanceOf(NoEligiblePeerError)
  })

  it('waits the retry backoff before each new attempt, growing by backoff_multiplier', async () => {
    const net = new MemoryTaskNetwork()
    const boom = {
      [hash.id]: () => {
        throw new Error('boom')
      }
    }
    for (const id of ['d1', 'd2', 'd3']) await donor(net, id, boom)
    const orch = createOrchestrator({ catalog, peers: { peers: () => [peer('d1'), peer('d2'), peer('d3')] }, transport: net.transport('me') })
    await orch.start()
    const at: Record<string, number> = {}
    const h = orch.submit({ description: 'hash it', input: 1, preferences: { retry_policy: { max_attempts: 3, backoff_ms: 60, backoff_multiplier: 2 } } })
    h.on('step', (e: StepEvent) => {
      if (e.status === 'failed' || e.status === 'dispatched') at[`${e.status}${e.attempt}`] ??= performance.now()
    })
    await expect(h.done).rejects.toBeInstanceOf(StepFailedError)
    // Lower bounds only (a timer never fires early; a busy machine only adds): 60 ms, then 120 ms.
    expect(at.dispatched2 - at.failed1).toBeGreaterThanOrEqual(59)
    expect(at.dispatched3 - at.failed2).toBeGreaterThanOrEqual(119)
  })

  it("the offer names the agent's module hash and at most 8 of its holders, so the donor can fetch the right bytes", async () => {
    const net = new MemoryTaskNetwork()
    const holders = Array.from({ length: 12 }, (_, i) => `holder-${i}`)
    const pinned = agent('pinned', ['hashing'], 0.01, { moduleSha256: 'ab'.repeat(32), holders })
    await donor(net, 'd1', { [pinned.id]: () => 'ok' })
    const orch = createOrchestrator({ catalog: catalogOf([pinned]), peers: { peers: () => [peer('d1')] }, transport: net.transport('me') })
    await orch.start()
    await orch.submit({ description: 'hash it', input: 1 }).done
    const offer = net.log.find((l) => l.message.type === 'offer')?.message as { moduleSha256?: string; holders?: string[] } | undefined
    expect(offer?.moduleSha256).toBe('ab'.repeat(32))
    expect(offer?.holders).toEqual(holders.slice(0, 8))
  })
})
