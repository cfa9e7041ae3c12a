/**
 * Selection time of the router over n agents of one capability and 50 peers,
 * per strategy (median and p95 of repeated routes after warm-up). Vitest-free,
 * so `bench/tasks.mjs` can call it.
 */
import type { AgentCandidate, PeerSnapshot } from '../src/lib/orchestrator/components.ts'
import { resolvePreferences, type Strategy } from '../src/lib/orchestrator/route/preferences.ts'
import { createRouter } from '../src/lib/orchestrator/route/router.ts'

/** One row of the selection benchmark. */
export interface SelectionBench {
  agents: number
  peers: number
  strategy: Strategy
  runs: number
  medianMs: number
  p95Ms: number
  indexBuildMs: number
}

/** Measure selection over `n` agents (default strategies: cost, balanced, quality, round-robin). */
export function benchSelection(n: number, opts: { peers?: number; runs?: number; strategies?: Strategy[] } = {}): SelectionBench[] {
  let seed = 42
  const rnd = (): number => {
    seed = (seed * 1664525 + 1013904223) >>> 0
    return seed / 2 ** 32
  }
  const agents: AgentCandidate[] = Array.from({ length: n }, (_, i) => ({
    id: i.toString(16).padStart(64, '0'),
    name: `agent-${i}`,
    version: '1.0.0',
    capabilities: i % 3 === 0 ? ['text-summarization', 'keyword-extraction'] : ['text-summarization'],
    price: Math.round(rnd() * 1000) / 1000,
    quality: rnd()
  }))
  const peers: PeerSnapshot[] = Array.from({ length: opts.peers ?? 50 }, (_, i) => ({
    id: `12D3KooWpeer${i}`,
    rttMs: 1 + rnd() * 100,
    freeWorkers: 1 + Math.floor(rnd() * 4),
    region: i % 2 === 0 ? 'eu' : 'us',
    donating: true,
    capabilities: []
  }))
  const reputation = new Map(agents.map((a) => [a.id, rnd() * 5]))
  const router = createRouter({
    catalog: { list: (c) => (c == null ? agents : agents.filter((a) => a.capabilities.includes(c))), version: () => 1 },
    peers: { peers: () => peers },
    reputation: { agentReputation: (id) => reputation.get(id) }
  })
  const rows: SelectionBench[] = []
  const runs = opts.runs ?? 200
  let first = true
  for (const strategy of opts.strategies ?? (['cost', 'balanced', 'quality', 'round-robin'] as Strategy[])) {
    const prefs = resolvePreferences({ strategy, preferred_regions: ['eu'] }, (m) => new Error(m))
    const t0 = performance.now()
    router.route(['text-summarization'], prefs)
    const indexBuildMs = first ? performance.now() - t0 : 0
    first = false
    for (let i = 0; i < 20; i++) router.route(['text-summarization'], prefs)
    const times: number[] = []
    for (let i = 0; i < runs; i++) {
      const s = performance.now()
      router.route(['text-summarization'], prefs)
      times.push(performance.now() - s)
    }
    times.sort((a, b) => a - b)
    rows.push({ agents: n, peers: peers.length, strategy, runs, medianMs: times[Math.floor(runs / 2)], p95Ms: times[Math.floor(runs * 0.95)], indexBuildMs })
  }
  return rows
}
