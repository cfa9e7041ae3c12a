// Models in presence and routing by them (issue 14): the capability codec with its bounds, the fit of
// an agent's model requirements, the measured speed book, and the router sending an llm-prompt step
// only to a peer whose model fits, the faster first, without believing a liar's claim for long.
import { describe, expect, it } from 'vitest'
import { InvalidTaskRequestError } from '../errors.ts'
import { agent, catalogOf, peer } from '../test-fixtures.ts'
import { CLAIM_PRIOR_TOKENS, LlmSpeedBook, MAX_CLAIMED_TPS, encodeLlmRun, parseLlmRuns, peerLlmFit } from './llm-fit.ts'
import { resolvePreferences, type RoutingPreferences } from './preferences.ts'
import { LLM_PROMPT_CAPABILITY, NoEligiblePeerError, createRouter } from './router.ts'
import type { PeerSnapshot } from '../components.ts'

const CAPABILITY = /^[a-z0-9][a-z0-9.-]{0,63}$/

describe('llm-run capabilities', () => {
  it('encode a model with its family, context and rough speed, within presence capability rules, and parse back', () => {
    const c = encodeLlmRun({ name: 'zs-tiny-llama', family: 'llama', context: 512, tokensPerSecond: 639.4 })
    expect(c).toBe('llm-run.llama.c512.t640.zs-tiny-llama')
    expect(parseLlmRuns(['hashing', c])).toEqual([{ family: 'llama', context: 512, tps: 640, name: 'zs-tiny-llama' }])
    const long = encodeLlmRun({
      name: `Meta Llama 3.1 8B Instruct ${'x'.repeat(90)}`,
      family: 'A Family Name That Is Long',
      context: 9_999_999,
      tokensPerSecond: 1e9
    })
    expect(long.length).toBeLessThanOrEqual(64)
    expect(long).toMatch(CAPABILITY)
    const [m] = parseLlmRuns([long])
    expect(m.context).toBe(1_048_576)
    expect(m.tps).toBe(99_999)
    expect(encodeLlmRun({ name: '', family: '', context: Number.NaN })).toMatch(CAPABILITY)
  })

  it('parse skips malformed or out-of-bound entries and takes at most four models', () => {
    expect(parseLlmRuns(['llm-run.llama.c0.t5.m', 'llm-run.llama.c2000000.t5.m', 'llm-run.llama.cx.t5.m', 'llm-run..c5.t5.m', 'llm-run.llama.c5.t5.'])).toEqual(
      []
    )
    const many = Array.from({ length: 9 }, (_, i) => `llm-run.llama.c${100 + i}.t1.m${i}`)
    expect(parseLlmRuns(many)).toHaveLength(4)
  })

  it('a peer fits an agent by family or name and minimum context; an older peer (no llm-run) by family or name alone', () => {
    const caps = ['llm-prompt', 'llm-family-llama', 'llm-model-zs-tiny-llama', encodeLlmRun({ name: 'zs-tiny-llama', family: 'llama', context: 512 })]
    expect(peerLlmFit(caps, { families: ['llama'] }).fits).toBe(true)
    expect(peerLlmFit(caps, { models: ['zs-tiny-llama'] }).fits).toBe(true)
    expect(peerLlmFit(caps, { families: ['qwen2'] }).fits).toBe(false)
    expect(peerLlmFit(caps, { families: ['llama'], minContext: 513 }).fits).toBe(false)
    expect(peerLlmFit(caps, { minContext: 512 }).fits).toBe(true)
    const old = ['llm-prompt', 'llm-family-llama', 'llm-model-zs-tiny-llama']
    expect(peerLlmFit(old, { families: ['llama'], minContext: 100_000 }).fits).toBe(true)
    expect(peerLlmFit(old, { families: ['qwen2'] }).fits).toBe(false)
  })
})

describe('LlmSpeedBook', () => {
  it('a claim is a prior: a liar claiming the cap is believed at its measured speed after a few dozen tokens', () => {
    const book = new LlmSpeedBook()
    expect(book.speed('liar', 99_999)).toBe(MAX_CLAIMED_TPS)
    // It streams 65 pieces over 6.4 s: 10 tokens/s.
    book.observe('liar', 65, 6400)
    const s = book.speed('liar', 99_999)
    expect(s).toBeLessThan(13)
    expect(s).toBeGreaterThan(10)
    // An honest donor measured at 50 tokens/s stays near 50 whatever it claims.
    book.observe('honest', 33, 640)
    expect(book.speed('honest', 50)).toBeCloseTo(50, 0)
    // Without a claim the prior is the unknown peer's 20 tokens/s: 32 measured tokens pull it most of the way.
    expect(book.speed('honest')).toBeGreaterThan(30)
    expect(book.speed('honest')).toBeLessThan(50)
  })

  it('ignores measurements without two tokens or time', () => {
    const book = new LlmSpeedBook()
    book.observe('p', 1, 100)
    book.observe('p', 10, 0)
    book.observe('p', Number.NaN, 100)
    expect(book.measured('p')).toBeUndefined()
    expect(CLAIM_PRIOR_TOKENS).toBeGreaterThan(0)
  })
})

const prefs = (p: RoutingPreferences = {}) => resolvePreferences(p, (m) => new InvalidTaskRequestError(m))
const llmPeer = (id: string, model: { name: string; family: string; context: number; tokensPerSecond?: number }, extra: Partial<PeerSnapshot> = {}) =>
  peer(id, { capabilities: [LLM_PROMPT_CAPABILITY, `llm-family-${model.family}`, encodeLlmRun(model)], ...extra })

describe('routing llm-prompt steps by model', () => {
  const classify = agent('classify-llm', ['llm-classification'], 0, { abi: 'llm-prompt', llm: { families: ['llama'], minContext: 1024 } })
  const small = llmPeer('12D3KooWSmallContext01', { name: 'tiny', family: 'llama', context: 512, tokensPerSecond: 900 })
  const qwen = llmPeer('12D3KooWOtherFamily002', { name: 'qwen', family: 'qwen2', context: 8192, tokensPerSecond: 900 })
  const slow = llmPeer('12D3KooWSlowLlama00003', { name: 'llama-a', family: 'llama', context: 4096, tokensPerSecond: 20 }, { rttMs: 2 })
  const fast = llmPeer('12D3KooWFastLlama00004', { name: 'llama-b', family: 'llama', context: 4096, tokensPerSecond: 200 }, { rttMs: 40 })

  it('goes only to a peer whose model meets the family and minimum context, under every strategy', () => {
    const r = createRouter({ catalog: catalogOf([classify]), peers: { peers: () => [small, qwen, slow] } })
    for (const strategy of ['speed', 'cost', 'balanced', 'round-robin', 'load-balanced'] as const) {
      for (let i = 0; i < 3; i++) {
        const d = r.route(['llm-classification'], prefs({ strategy }))
        expect(d.winner.peer.id, strategy).toBe(slow.id)
        expect(d.alternatives.every((a) => a.peer.id === slow.id)).toBe(true)
      }
    }
  })

  it('says which model is missing when no donating peer has one that fits', () => {
    const r = createRouter({ catalog: catalogOf([classify]), peers: { peers: () => [small, qwen] } })
    expect(() => r.route(['llm-classification'], prefs())).toThrow(NoEligiblePeerError)
    expect(() => r.route(['llm-classification'], prefs())).toThrow(/a model of llama with at least 1024 tokens of context/)
  })

  it('prefers the faster model under speed, balanced and cost (its tie-break), though its round trip is longer', () => {
    const r = createRouter({ catalog: catalogOf([classify]), peers: { peers: () => [slow, fast] } })
    for (const strategy of ['speed', 'balanced', 'cost'] as const)
      expect(r.route(['llm-classification'], prefs({ strategy })).winner.peer.id, strategy).toBe(fast.id)
  })

  it('a liar claiming the cap wins at first, then loses to the honest donor once its streamed speed is measured', () => {
    const liar = llmPeer('12D3KooWLiarLlama00005', { name: 'llama-c', family: 'llama', context: 4096, tokensPerSecond: 99_999 })
    const llmSpeed = new LlmSpeedBook()
    const r = createRouter({ catalog: catalogOf([classify]), peers: { peers: () => [fast, liar] }, llmSpeed })
    expect(r.route(['llm-classification'], prefs({ strategy: 'speed' })).winner.peer.id).toBe(liar.id)
    // It streamed 49 tokens at 5 tokens/s for us.
    llmSpeed.observe(liar.id, 49, 9600)
    expect(r.route(['llm-classification'], prefs({ strategy: 'speed' })).winner.peer.id).toBe(fast.id)
  })

  it('other agents route as before: a non-llm step ignores models', () => {
    const hash = agent('hash', ['hashing'], 0)
    const r = createRouter({ catalog: catalogOf([hash]), peers: { peers: () => [small, peer('12D3KooWPlainPeer00006', { rttMs: 1 })] } })
    expect(r.route(['hashing'], prefs({ strategy: 'speed' })).winner.peer.id).toBe('12D3KooWPlainPeer00006')
  })
})
