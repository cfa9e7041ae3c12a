import { describe, expect, it } from 'vitest'
import type { AgentManifest } from '../runtime/index.ts'
import type { CatalogAgent } from './adapters.ts'
import { agentListing } from './agent-listing.ts'

const manifest = (name: string, capabilities: string[], description = ''): AgentManifest =>
  ({ name, version: '1.0.0', description, capabilities, abi: 'json-v1', price: 1, author: `ed25519:${name}`, signature: 's' }) as AgentManifest

const agents: CatalogAgent[] = [
  { id: 'a1', manifest: manifest('summarize', ['text-summarization'], 'Extractive summary'), author: 'ed25519:bundle', bundled: true, holders: [] },
  {
    id: 'b2',
    manifest: manifest('hash', ['hashing']),
    author: 'ed25519:alice',
    bundled: false,
    holders: ['peer-1'],
    publishedAt: 5,
    reputation: 0.9
  },
  {
    id: 'c3',
    manifest: manifest('keywords', ['keyword-extraction', 'text-summarization']),
    author: 'ed25519:bob',
    bundled: false,
    holders: [],
    reputation: 0.4
  }
]

const listing = agentListing()({
  catalog: { agents: () => agents, get: (id) => agents.find((a) => a.id === id) },
  stats: { of: (id) => (id === 'b2' ? { runs: 3, successes: 2, avgMs: 12 } : undefined) }
})
const ids = (list: Array<{ id: string }>) => list.map((e) => e.id)

describe('agentListing', () => {
  it('lists every agent as an entry with its statistics', () => {
    const all = listing.list()
    expect(ids(all)).toEqual(['a1', 'b2', 'c3'])
    expect(all[1]).toMatchObject({ name: 'hash', author: 'ed25519:alice', bundled: false, holders: ['peer-1'], publishedAt: 5, reputation: 0.9 })
    expect(all[1].stats).toEqual({ runs: 3, successes: 2, avgMs: 12 })
    expect(all[0].stats).toBeUndefined()
  })

  it('filters by capability, author, minimum reputation (none counts as 0) and text, all at once', () => {
    expect(ids(listing.list({ capability: 'text-summarization' }))).toEqual(['a1', 'c3'])
    expect(ids(listing.list({ author: 'ed25519:bob' }))).toEqual(['c3'])
    expect(ids(listing.list({ minReputation: 0.5 }))).toEqual(['b2'])
    expect(ids(listing.list({ minReputation: 0 }))).toEqual(['a1', 'b2', 'c3'])
    expect(ids(listing.list({ text: 'EXTRACT' }))).toEqual(['a1', 'c3']) // description, capability
    expect(ids(listing.list({ text: 'b2' }))).toEqual(['b2']) // id
    expect(ids(listing.list({ capability: 'text-summarization', minReputation: 0.1 }))).toEqual(['c3'])
    expect(ids(listing.list({ capability: '', author: '', text: '' }))).toEqual(['a1', 'b2', 'c3'])
  })

  it('gets one agent by id, undefined when unknown; entries do not share the manifest capabilities array', () => {
    expect(listing.get('c3')?.name).toBe('keywords')
    expect(listing.get('nope')).toBeUndefined()
    const e = listing.get('a1')
    e?.capabilities.push('mutated')
    expect(agents[0].manifest.capabilities).toEqual(['text-summarization'])
  })

  it('a bundled agent is held by this peer and every connected app peer; a published one by its registry holders', () => {
    let connected = ['me', 'peer-2']
    const withPeers = agentListing()({
      catalog: { agents: () => agents, get: (id) => agents.find((a) => a.id === id) },
      stats: { of: () => undefined },
      appPeers: () => connected
    })
    expect(withPeers.get('a1')?.holders).toEqual(['me', 'peer-2'])
    expect(withPeers.get('b2')?.holders).toEqual(['peer-1'])
    expect(withPeers.get('c3')?.holders).toEqual([])
    connected = ['me']
    expect(withPeers.list()[0]?.holders).toEqual(['me'])
  })
})

describe('agentListing reputation with verified outcomes', () => {
  const verified = new Map([['a1', { valid: 6, invalid: 2 }]])
  const withTrust = agentListing()({
    catalog: { agents: () => agents, get: (id) => agents.find((a) => a.id === id) },
    stats: { of: (id) => (id === 'b2' ? { runs: 3, successes: 2, avgMs: 12 } : undefined) },
    outcomes: { agentOutcomes: (id) => verified.get(id) }
  })

  it('shows a bundled agent with verified results the posterior routing uses, not nothing', () => {
    // Bundled prior Beta(9, 1) plus 6 valid and 2 wrong: 15 / 18.
    expect(withTrust.get('a1')?.reputation).toBeCloseTo(15 / 18, 10)
    expect(listing.get('a1')?.reputation).toBeUndefined()
  })

  it("counts this peer's runs when they exceed the verified results, from the new author's prior", () => {
    // New author prior Beta(1, 3) plus 2 of 3 runs: 3 / 7, not the registry's published 0.9.
    expect(withTrust.get('b2')?.reputation).toBeCloseTo(3 / 7, 10)
  })

  it("keeps the registry's published figure for an agent with no results here", () => {
    expect(withTrust.get('c3')?.reputation).toBe(0.4)
  })
})
