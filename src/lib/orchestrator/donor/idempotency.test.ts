import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork, type TaskMessage } from '../dispatch/index.ts'
import { aid, fnExecutor, offerMessage, pollUntil } from '../test-fixtures.ts'
import { donorService } from './donor-service.ts'

// A reloaded tab has a new peer id but the same profile: a step it re-offers under the same
// idempotency key must be answered from the donor's result cache (or join the run still going),
// not run a second time. Another user's offer under the same key is its own step.
const offer = (rid: string, key: string): TaskMessage => offerMessage({ rid, agent: 'count', idempotencyKey: key })

const until = (fn: () => boolean): Promise<void> => pollUntil(fn)

async function setup() {
  const net = new MemoryTaskNetwork()
  let release: () => void = () => {}
  const gate = new Promise<void>((r) => {
    release = r
  })
  const executor = fnExecutor({ [aid('count')]: () => gate.then(() => 'ran') }, 2)
  const users: Record<string, string | undefined> = { before: 'alice', after: 'alice', other: 'bob' }
  const donorT = net.transport('donor')
  const donor = donorService({})({ transport: donorT, executor, users: { userOf: (p) => users[p] } })
  await donor.start()
  const tabs = { before: net.transport('before'), after: net.transport('after'), other: net.transport('other') }
  for (const t of [donorT, ...Object.values(tabs)]) await t.start()
  const answers = (to: string) => net.log.filter((l) => l.from === 'donor' && l.to === to).map((l) => l.message.type)
  return { donor, executor, tabs, answers, release, users }
}

describe('donor idempotency across a reload', () => {
  it('a re-offer from the same user under a new peer id is answered from the cache, another user runs its own', async () => {
    const s = await setup()
    s.release()
    await s.tabs.before.send('donor', offer('r1', 'run-1/s1'))
    await until(() => s.answers('before').includes('result'))
    await s.tabs.after.send('donor', offer('r2', 'run-1/s1'))
    await until(() => s.answers('after').includes('result'))
    expect(s.executor.runs).toBe(1)
    expect(s.donor.stats().cachedReplies).toBe(1)
    await s.tabs.other.send('donor', offer('r3', 'run-1/s1'))
    await until(() => s.answers('other').includes('result'))
    expect(s.executor.runs).toBe(2)
  })

  it('a re-offer while the step still runs joins it: one run, both answered', async () => {
    const s = await setup()
    await s.tabs.before.send('donor', offer('r1', 'run-2/s1'))
    await until(() => s.answers('before').includes('accept'))
    await s.tabs.after.send('donor', offer('r2', 'run-2/s1'))
    await until(() => s.answers('after').includes('accept'))
    s.release()
    await until(() => s.answers('before').includes('result') && s.answers('after').includes('result'))
    expect(s.executor.runs).toBe(1)
  })

  // The same peer's profile key is proven at its first offer and still being re-proven at its
  // re-offer (its link came back after a reload), or the other way round: the step's key changes
  // form between user and peer, and the re-offer must still join the run (it ran twice, in
  // test/workflows-patterns.test.mjs, one run in two).
  for (const [first, second] of [
    ['alice', undefined],
    [undefined, 'alice']
  ] as const) {
    it(`a re-offer from the same peer joins its run when its user is ${first ?? 'unproven'} then ${second ?? 'unproven'}`, async () => {
      const s = await setup()
      s.users.before = first
      await s.tabs.before.send('donor', offer('r1', 'run-1/s1'))
      await until(() => s.answers('before').includes('accept'))
      s.users.before = second
      await s.tabs.before.send('donor', offer('r2', 'run-1/s1'))
      await until(() => s.answers('before').filter((t) => t === 'accept').length === 2)
      s.release()
      await until(() => s.answers('before').filter((t) => t === 'result').length === 2)
      expect(s.executor.runs).toBe(1)
      // Another peer of no proven user under the same key is still its own step.
      s.users.other = undefined
      await s.tabs.other.send('donor', offer('r3', 'run-1/s1'))
      await until(() => s.answers('other').includes('result'))
      expect(s.executor.runs).toBe(2)
    })
  }
})
