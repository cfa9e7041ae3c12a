// The join gate (issue 11: a new tab joins within 3 s): the rest of the app starts once the
// peers the relay's roster named are linked, or at its bounds, never while a dial it waits for
// is still under way.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Counters } from '../../core/index.ts'
import { type JoinView, joinSettled } from './start.ts'

/** A node as the gate sees it: relay status, roster milestone and counter, direct links. */
class FakeNode extends EventTarget {
  readonly counters = new Counters('mesh')
  state: JoinView['status']['state'] = 'starting'
  readonly milestones: Record<string, number> = {}
  readonly links: string[] = []
  get status(): JoinView['status'] {
    return { state: this.state, relays: [], connected: [] }
  }
  timings(): ReturnType<JoinView['timings']> {
    return { milestones: { ...this.milestones }, peers: this.links.map((peerId) => ({ peerId, directAt: 1 })) }
  }
  /** The relay answered with `n` peers holding a reservation. */
  roster(n: number): void {
    this.state = 'connected'
    this.milestones.rosterHeard = performance.now()
    this.counters.inc('roster.peers', n)
    this.dispatchEvent(new Event('change'))
  }
  link(id: string): void {
    this.links.push(id)
    this.dispatchEvent(new Event('change'))
  }
}

const BOUNDS = { afterRelayMs: 2_500, maxMs: 6_000, links: 4 }

/** Whether `p` settled after the microtasks queued so far ran. */
async function settled(p: Promise<void>): Promise<boolean> {
  let done = false
  void p.then(() => {
    done = true
  })
  await vi.advanceTimersByTimeAsync(0)
  return done
}

describe('joinSettled', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('waits for a link to every peer the roster named, not only the first', async () => {
    const node = new FakeNode()
    const gate = joinSettled(node as unknown as JoinView, Promise.resolve(), performance.now(), BOUNDS)
    expect(await settled(gate)).toBe(false)
    node.roster(2)
    expect(await settled(gate)).toBe(false)
    node.link('a')
    await vi.advanceTimersByTimeAsync(1_000)
    expect(await settled(gate)).toBe(false)
    node.link('b')
    expect(await settled(gate)).toBe(true)
  })

  it('waits for the first `links` links in a larger mesh, not for every peer named', async () => {
    const node = new FakeNode()
    const gate = joinSettled(node as unknown as JoinView, Promise.resolve(), performance.now(), BOUNDS)
    node.roster(20)
    for (const id of ['a', 'b', 'c']) node.link(id)
    expect(await settled(gate)).toBe(false)
    node.link('d')
    expect(await settled(gate)).toBe(true)
  })

  it('does not wait when the roster names nobody (the first tab of a mesh)', async () => {
    const node = new FakeNode()
    const gate = joinSettled(node as unknown as JoinView, Promise.resolve(), performance.now(), BOUNDS)
    node.roster(0)
    expect(await settled(gate)).toBe(true)
  })

  it('gives up afterRelayMs after the relay was reached when a named peer never links', async () => {
    const node = new FakeNode()
    const gate = joinSettled(node as unknown as JoinView, Promise.resolve(), performance.now(), BOUNDS)
    await vi.advanceTimersByTimeAsync(500)
    node.roster(1)
    await vi.advanceTimersByTimeAsync(BOUNDS.afterRelayMs - 10)
    expect(await settled(gate)).toBe(false)
    await vi.advanceTimersByTimeAsync(20)
    expect(await settled(gate)).toBe(true)
  })

  it('gives up maxMs after the start when no relay answers and none is declared unreachable', async () => {
    const node = new FakeNode()
    const gate = joinSettled(node as unknown as JoinView, Promise.resolve(), performance.now(), BOUNDS)
    await vi.advanceTimersByTimeAsync(BOUNDS.maxMs - 10)
    expect(await settled(gate)).toBe(false)
    await vi.advanceTimersByTimeAsync(20)
    expect(await settled(gate)).toBe(true)
  })

  it('settles at once when the relays are unreachable or the node failed to start', async () => {
    const node = new FakeNode()
    const gate = joinSettled(node as unknown as JoinView, Promise.resolve(), performance.now(), BOUNDS)
    node.state = 'unreachable'
    node.dispatchEvent(new Event('change'))
    expect(await settled(gate)).toBe(true)
    const failed = joinSettled(new FakeNode() as unknown as JoinView, Promise.reject(new Error('no libp2p')), performance.now(), BOUNDS)
    expect(await settled(failed)).toBe(true)
  })
})
