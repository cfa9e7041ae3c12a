import { afterEach, describe, expect, it, vi } from 'vitest'
import type { MeshNodeInit } from '../mesh/index.ts'
import { LLM_CAPABILITY } from '../orchestrator/index.ts'
import type { AgentManifest } from '../runtime/index.ts'
import * as v from 'valibot'
import { MAX_PRESENCE_FREE_SLOTS, MAX_PRESENCE_WORKERS, PresenceSchema, UnknownRegionError } from '../mesh/index.ts'
import { presencePublisher, savedRegion } from './presence.ts'

const agent = (id: string, capabilities: string[]) => ({ id, manifest: { capabilities } as unknown as AgentManifest })

function setup(opts: { held?: string[]; llm?: string; free?: number; maxCapabilities?: number } = {}) {
  const published: NonNullable<MeshNodeInit['presence']>[] = []
  const held = new Set(opts.held ?? ['a', 'c'])
  const llmState = { state: opts.llm ?? 'unavailable' }
  const presence = presencePublisher({ intervalMs: 1000, maxCapabilities: opts.maxCapabilities })({
    mesh: { setPresence: (p) => published.push({ ...p }) },
    catalog: { agents: () => [agent('a', ['text-summarization', 'hashing']), agent('b', ['csv-parsing']), agent('c', ['hashing', 'entity-extraction'])] },
    executor: { has: (id) => held.has(id), freeWorkers: () => opts.free ?? 7 },
    llm: { state: () => llmState },
    publicKey: 'ed25519:me'
  })
  return { presence, published, llmState, last: () => published.at(-1) }
}

describe('presencePublisher', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('advertises no capabilities and no workers while not donating', () => {
    const { presence, last } = setup()
    presence.refresh()
    expect(last()).toEqual({ donating: false, freeWorkers: 0, capabilities: [] })
  })

  it('a donor advertises the sorted, de-duplicated capabilities of the agents it holds, and its free workers', () => {
    const { presence, last } = setup({ free: 5 })
    presence.setDonating(true)
    expect(presence.donating).toBe(true)
    expect(last()).toEqual({ donating: true, freeWorkers: 5, capabilities: ['entity-extraction', 'hashing', 'text-summarization'] })
    presence.setDonating(false)
    expect(last()).toEqual({ donating: false, freeWorkers: 0, capabilities: [] })
  })

  it('adds the LLM capability when a model is ready, donating or not, and caps the list', () => {
    const { presence, last, llmState } = setup({ maxCapabilities: 2 })
    llmState.state = 'ready'
    presence.refresh()
    expect(last()?.capabilities).toEqual([LLM_CAPABILITY])
    presence.setDonating(true)
    expect(last()?.capabilities).toHaveLength(2)
  })

  it('start() advertises the public key once and refreshes every interval until stop()', () => {
    vi.useFakeTimers()
    const { presence, published } = setup()
    presence.start()
    presence.start()
    expect(published).toEqual([{ publicKey: 'ed25519:me' }])
    vi.advanceTimersByTime(3000)
    expect(published).toHaveLength(4)
    presence.stop()
    vi.advanceTimersByTime(3000)
    expect(published).toHaveLength(4)
  })

  it('a donor advertises its workers beside its free call slots (they differ: each worker queues calls)', () => {
    const published: NonNullable<MeshNodeInit['presence']>[] = []
    const presence = presencePublisher()({
      mesh: { setPresence: (p) => published.push({ ...p }) },
      catalog: { agents: () => [] },
      executor: { has: () => true, freeWorkers: () => 8 },
      pool: { stats: () => ({ workers: 1 }) },
      llm: { state: () => ({ state: 'unavailable' }) },
      publicKey: 'ed25519:me'
    })
    presence.setDonating(true)
    expect(published.at(-1)).toMatchObject({ donating: true, workers: 1, freeWorkers: 8 })
    presence.setDonating(false)
    expect(published.at(-1)).toMatchObject({ donating: false, workers: 0, freeWorkers: 0 })
  })

  it('a donor with more workers than presence admits advertises the most it admits (else every peer refuses its presence)', () => {
    const published: NonNullable<MeshNodeInit['presence']>[] = []
    const presence = presencePublisher()({
      mesh: { setPresence: (p) => published.push({ ...p }) },
      catalog: { agents: () => [] },
      executor: { has: () => true, freeWorkers: () => 192 * 8 },
      pool: { stats: () => ({ workers: 192 }) },
      llm: { state: () => ({ state: 'unavailable' }) },
      publicKey: 'ed25519:me'
    })
    presence.setDonating(true)
    const p = published.at(-1)!
    expect(p).toMatchObject({ donating: true, workers: MAX_PRESENCE_WORKERS, freeWorkers: MAX_PRESENCE_FREE_SLOTS })
    // What peers check: the presence as announced passes the schema every peer validates with.
    expect(
      v.safeParse(PresenceSchema, {
        v: 1,
        peerId: '12D3KooWpeer',
        donating: true,
        freeWorkers: p.freeWorkers,
        workers: p.workers,
        capabilities: [],
        region: 'unknown',
        ts: Date.now()
      }).success
    ).toBe(true)
  })

  it('a loaded model is advertised with its context and measured speed, first, so a cap on capabilities does not cut it', async () => {
    const { decodePresence, encodePresence } = await import('../mesh/index.ts')
    const { parseLlmRuns } = await import('../orchestrator/index.ts')
    const published: NonNullable<MeshNodeInit['presence']>[] = []
    const speed: { tokensPerSecond?: number } = {}
    const presence = presencePublisher({ maxCapabilities: 5 })({
      mesh: { setPresence: (p) => published.push({ ...p }) },
      catalog: { agents: () => [agent('a', ['aa', 'ab', 'ac', 'ad', 'ae', 'af'])] },
      executor: { has: () => true, freeWorkers: () => 1 },
      llm: { state: () => ({ state: 'unavailable' }) },
      llmRunner: { models: () => [{ name: 'ZS Tiny Llama', family: 'llama', context: 512 }], state: () => speed },
      publicKey: 'ed25519:me'
    })
    presence.setDonating(true)
    expect(published.at(-1)?.capabilities).toEqual(['llm', 'llm-family-llama', 'llm-model-zs-tiny-llama', 'llm-prompt', 'llm-run.llama.c512.t0.zs-tiny-llama'])
    speed.tokensPerSecond = 638.7
    presence.refresh()
    const caps = published.at(-1)?.capabilities ?? []
    expect(parseLlmRuns(caps)).toEqual([{ name: 'zs-tiny-llama', family: 'llama', context: 512, tps: 640 }])
    // It passes presence's own schema on the way out and in (an older peer's too: it is a capability).
    const peerId = '12D3KooWPresenceTestPeer'
    const bytes = encodePresence({ v: 1, peerId, capabilities: caps, donating: true, freeWorkers: 1, region: 'unknown', ts: 1 })
    expect(parseLlmRuns(decodePresence(bytes, peerId).capabilities)).toHaveLength(1)
  })

  it('a chosen region is validated, saved, advertised at once, and read back by a new publisher (a reload)', () => {
    const map = new Map<string, string>()
    const storage = {
      getItem: (k: string) => map.get(k) ?? null,
      setItem: (k: string, v: string) => void map.set(k, v),
      removeItem: (k: string) => void map.delete(k)
    }
    const make = () => {
      const published: NonNullable<MeshNodeInit['presence']>[] = []
      const presence = presencePublisher({ storage })({
        mesh: { setPresence: (p) => published.push({ ...p }) },
        catalog: { agents: () => [] },
        executor: { has: () => false, freeWorkers: () => 0 },
        llm: { state: () => ({ state: 'unavailable' }) },
        publicKey: 'ed25519:me'
      })
      return { presence, published }
    }
    const a = make()
    expect(a.presence.region().chosen).toBeUndefined()
    expect(() => a.presence.setRegion('eu-west')).toThrow(UnknownRegionError)
    expect(a.published).toEqual([])
    a.presence.setRegion('asia')
    expect(a.published.at(-1)).toEqual({ region: 'asia' })
    expect(a.presence.region()).toMatchObject({ region: 'asia', chosen: 'asia' })
    expect(savedRegion(storage)).toBe('asia')

    const b = make()
    b.presence.start()
    b.presence.stop()
    expect(b.published[0]).toEqual({ publicKey: 'ed25519:me', region: 'asia' })
    b.presence.setRegion(null)
    expect(b.presence.region().chosen).toBeUndefined()
    expect(b.presence.region().region).toBe(b.presence.region().fromTimeZone)
    expect(savedRegion(storage)).toBeUndefined()
    map.set('zerostate:region', 'mars')
    expect(savedRegion(storage)).toBeUndefined()
  })
})
