import { describe, it, expect, afterEach } from 'vitest'
import { lpStream } from '@libp2p/utils'
import * as v from 'valibot'
import { LLM_CAPABILITY, PLAN_PROTOCOL_ID, planProtocolDefinition, remotePlanner, type PlanMessage } from './remote-planner.ts'
import type { StreamHost } from '../../core/index.ts'
import { servePlans, type LlmEngine } from '../llm/index.ts'
import type { CapabilityInfo, PlanRequest } from './planner.ts'
import { capabilityCatalog, plannerChain } from './planner.ts'
import { deterministicPlanner } from './deterministic-planner.ts'
import { PlanDraftSchema, type PlanDraft } from './plan-schema.ts'
import { validatePlan } from './validate-plan.ts'
import { LlmPlanError, OrchestratorError, PlannerUnavailableError } from '../errors.ts'
import { framed } from '../../core/index.ts'
import type { PeerDirectory, PeerSnapshot } from '../components.ts'
import { agent, catalogOf, delay, peer, streamNetwork } from '../test-fixtures.ts'

const DRAFT: PlanDraft = {
  subtasks: [
    { id: 's1', description: 'Summarize the text', capabilities: ['text-summarization'], dependencies: [], input: { from: 'task.input' }, estimated_cost: 2 },
    {
      id: 's2',
      description: 'Translate the summary',
      capabilities: ['translation'],
      dependencies: ['s1'],
      input: { from: 'step', step: 's1', path: 'summary' },
      estimated_cost: 3
    }
  ],
  execution_mode: 'sequential',
  total_estimated_cost: 5
}

const AGENTS = catalogOf([
  agent('summarizer', ['text-summarization'], 2, { description: 'Summarizes text' }),
  agent('translator', ['translation'], 3, { description: 'Translates text' })
])
const CATALOG: CapabilityInfo[] = capabilityCatalog(AGENTS)

/** A fake loaded engine that records what it was asked. */
function fakeEngine(
  plan: (req: PlanRequest, catalog: readonly CapabilityInfo[], signal?: AbortSignal) => Promise<PlanDraft> | PlanDraft = () => DRAFT
): LlmEngine & { calls: Array<{ request: PlanRequest; catalog: readonly CapabilityInfo[] }> } {
  const calls: Array<{ request: PlanRequest; catalog: readonly CapabilityInfo[] }> = []
  return {
    calls,
    async available() {
      return { ok: true }
    },
    async load() {},
    async plan(request, catalog, opts) {
      calls.push({ request, catalog })
      return await plan(request, catalog, opts?.signal)
    },
    async unload() {}
  }
}

function directory(peers: PeerSnapshot[]): PeerDirectory {
  return { peers: () => peers }
}

const llmPeer = (id: string, rttMs?: number): PeerSnapshot => peer(id, { rttMs, capabilities: [LLM_CAPABILITY] })

let stops: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const s of stops) await s()
  stops = []
})

async function serve(host: StreamHost, engine: LlmEngine, opts?: { timeoutMs?: number }): Promise<void> {
  stops.push(await servePlans(host, engine, opts))
}

/** A peer answering every plan request with `answer` (raw JSON, framed but not validated). */
async function rawPeer(host: StreamHost, answer: unknown | undefined, seen?: PlanMessage[]): Promise<void> {
  await host.handle(PLAN_PROTOCOL_ID, (stream) => {
    void (async () => {
      const f = framed(stream, planProtocolDefinition)
      const req = await f.read()
      seen?.push(req)
      if (answer === undefined) return // never answers
      const lp = lpStream(stream)
      await lp.write(new TextEncoder().encode(typeof answer === 'string' ? answer : JSON.stringify(answer)))
      await stream.close()
    })().catch(() => {})
  })
}

describe('remote planner over a real stream pair', () => {
  it("returns the serving peer's plan and sends description, capabilities and catalog", async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    const server = net.host('gpu-peer')
    const engine = fakeEngine()
    await serve(server, engine)

    const planner = remotePlanner()({ host: tab, peers: directory([llmPeer('gpu-peer', 20)]) })
    expect(planner.name).toBe('remote')
    const plan = await planner.plan({ description: 'summarize then translate to French', capabilities: ['translation'] }, CATALOG)

    expect(v.parse(PlanDraftSchema, plan)).toEqual(DRAFT)
    expect(plan).toEqual(DRAFT)
    expect(engine.calls).toHaveLength(1)
    expect(engine.calls[0].request).toEqual({ description: 'summarize then translate to French', capabilities: ['translation'] })
    expect(engine.calls[0].catalog).toEqual(CATALOG)
    expect(engine.calls[0].catalog.map((c) => c.capability)).toEqual(['text-summarization', 'translation'])
    // The plan is runnable against the tab's catalog.
    expect(validatePlan({ ...plan, planner: 'remote' }, AGENTS).subtasks.map((s) => s.id)).toEqual(['s1', 's2'])
  })

  it('sends an empty capability list when none were requested, and trims the catalog to the wire limits', async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    const seen: PlanMessage[] = []
    await rawPeer(net.host('p'), { type: 'plan-response', plan: DRAFT }, seen)
    const big: CapabilityInfo[] = Array.from({ length: 300 }, (_, i) => ({
      capability: `cap-${i}`,
      agents: 1,
      minPrice: 1,
      examples: ['a', 'b', 'c', 'd', 'e', 'f']
    }))
    const plan = await remotePlanner()({ host: tab, peers: directory([llmPeer('p', 5)]) }).plan({ description: 'do it' }, big)
    expect(plan).toEqual(DRAFT)
    const req = seen[0]
    expect(req.type).toBe('plan-request')
    if (req.type !== 'plan-request') return
    expect(req.capabilities).toEqual([])
    expect(req.catalog).toHaveLength(256)
    expect(req.catalog.every((c) => c.examples.length === 4)).toBe(true)
    // The caller's catalog is not mutated.
    expect(big[0].examples).toHaveLength(6)
  })

  it('servePlans returns a stop function that unhandles the protocol', async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    const server = net.host('gpu-peer')
    const stop = await servePlans(server, fakeEngine())
    await stop()
    const err = await remotePlanner()({ host: tab, peers: directory([llmPeer('gpu-peer', 5)]) })
      .plan({ description: 'x' }, CATALOG)
      .catch((e) => e)
    expect(err).toBeInstanceOf(LlmPlanError)
    expect(err.message).toMatch(/gpu-peer: .*does not handle/)
  })
})

describe('peer selection', () => {
  it('asks only peers advertising llm, nearest first, never itself', async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    const engines: Record<string, ReturnType<typeof fakeEngine>> = {}
    for (const id of ['far', 'near', 'mid', 'no-llm']) {
      engines[id] = fakeEngine(() => {
        throw new Error(`${id} is busy`)
      })
      await serve(net.host(id), engines[id])
    }
    await serve(tab, fakeEngine())
    const peers = [
      llmPeer('far', 300),
      peer('no-llm', { rttMs: 1, capabilities: ['translation'] }),
      llmPeer('near', 10),
      llmPeer('tab', 0), // itself: never asked over the wire
      llmPeer('mid', 50)
    ]
    const err = await remotePlanner()({ host: tab, peers: directory(peers) })
      .plan({ description: 'x' }, CATALOG)
      .catch((e) => e)
    expect(net.dials).toEqual(['near', 'mid', 'far'])
    expect(engines['no-llm'].calls).toHaveLength(0)
    expect(err).toBeInstanceOf(LlmPlanError)
    // The error names each peer and why it failed.
    expect(err.message).toContain('near: near is busy')
    expect(err.message).toContain('mid: mid is busy')
    expect(err.message).toContain('far: far is busy')
  })

  it('peers without a measured rtt come after measured ones', async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    for (const id of ['unknown', 'measured'])
      await serve(
        net.host(id),
        fakeEngine(() => {
          throw new Error('no')
        })
      )
    await remotePlanner()({ host: tab, peers: directory([llmPeer('unknown'), llmPeer('measured', 400)]) })
      .plan({ description: 'x' }, CATALOG)
      .catch(() => {})
    expect(net.dials).toEqual(['measured', 'unknown'])
  })

  it('throws PlannerUnavailableError when no peer advertises llm, without dialling anyone', async () => {
    const net = streamNetwork()
    const planner = remotePlanner()({ host: net.host('tab'), peers: directory([peer('a', { capabilities: ['translation'] }), peer('b')]) })
    const err = await planner.plan({ description: 'x' }, CATALOG).catch((e) => e)
    expect(err).toBeInstanceOf(PlannerUnavailableError)
    expect(err.message).toMatch(/llm/)
    expect(net.dials).toEqual([])
  })

  it("tries the next peer when the nearest one's engine throws", async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    const broken = fakeEngine(() => {
      throw new LlmPlanError('The LLM returned an empty answer')
    })
    const good = fakeEngine()
    await serve(net.host('near'), broken)
    await serve(net.host('far'), good)
    const plan = await remotePlanner()({ host: tab, peers: directory([llmPeer('far', 80), llmPeer('near', 5)]) }).plan({ description: 'summarize' }, CATALOG)
    expect(plan).toEqual(DRAFT)
    expect(net.dials).toEqual(['near', 'far'])
    expect(broken.calls).toHaveLength(1)
    expect(good.calls).toHaveLength(1)
  })

  it('tries the next peer when the nearest cannot be reached', async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    await serve(net.host('far'), fakeEngine())
    net.host('near') // no handler: the dial fails
    const plan = await remotePlanner()({ host: tab, peers: directory([llmPeer('far', 80), llmPeer('near', 5)]) }).plan({ description: 'summarize' }, CATALOG)
    expect(plan).toEqual(DRAFT)
    expect(net.dials).toEqual(['near', 'far'])
  })
})

describe('hostile and silent peers', () => {
  const hostile: Array<[string, unknown]> = [
    ['not JSON', 'this is not json{'],
    ['an unknown message type', { type: 'plan-accepted', plan: DRAFT }],
    ['a plan that breaks the schema', { type: 'plan-response', plan: { subtasks: [], execution_mode: 'sequential', total_estimated_cost: 0 } }],
    ['a plan with a bad capability name', { type: 'plan-response', plan: { ...DRAFT, subtasks: [{ ...DRAFT.subtasks[0], capabilities: ['DROP TABLE'] }] } }],
    ['a plan-request echoed back', { type: 'plan-request', description: 'x', capabilities: [], catalog: [] }]
  ]
  for (const [what, answer] of hostile) {
    it(`rejects ${what} with LlmPlanError and moves on`, async () => {
      const net = streamNetwork()
      const tab = net.host('tab')
      await rawPeer(net.host('evil'), answer)
      const planner = remotePlanner()({ host: tab, peers: directory([llmPeer('evil', 1)]) })
      const err = await planner.plan({ description: 'x' }, CATALOG).catch((e) => e)
      expect(err).toBeInstanceOf(LlmPlanError)
      expect(err.message).toContain('evil:')

      // With a good peer behind it, the good plan wins.
      await serve(net.host('good'), fakeEngine())
      const ok = remotePlanner()({ host: tab, peers: directory([llmPeer('evil', 1), llmPeer('good', 50)]) })
      expect(await ok.plan({ description: 'x' }, CATALOG)).toEqual(DRAFT)
    })
  }

  it('a peer that closes without answering is reported', async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    await net.host('quitter').handle(PLAN_PROTOCOL_ID, (stream) => {
      void stream.close()
    })
    const err = await remotePlanner()({ host: tab, peers: directory([llmPeer('quitter', 1)]) })
      .plan({ description: 'x' }, CATALOG)
      .catch((e) => e)
    expect(err).toBeInstanceOf(LlmPlanError)
    expect(err.message).toContain('quitter:')
  })

  it('a serving engine that returns a malformed draft does not crash the server and the tab gets a typed error', async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    const bad = fakeEngine(() => ({ subtasks: [], execution_mode: 'sequential', total_estimated_cost: 0 }))
    await serve(net.host('gpu'), bad)
    const planner = remotePlanner({ timeoutMs: 2000 })({ host: tab, peers: directory([llmPeer('gpu', 1)]) })
    const err = await planner.plan({ description: 'x' }, CATALOG).catch((e) => e)
    expect(err).toBeInstanceOf(LlmPlanError)
    expect(err.message).toContain('gpu:')
    // The server still answers the next request.
    const good = fakeEngine()
    stops.pop()
    await net.host('gpu').unhandle(PLAN_PROTOCOL_ID)
    await serve(net.host('gpu'), good)
    expect(await planner.plan({ description: 'x' }, CATALOG)).toEqual(DRAFT)
  })

  it('a response that never comes hits timeoutMs with a typed error, then the next peer is tried', async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    await rawPeer(net.host('silent'), undefined)
    const planner = remotePlanner({ timeoutMs: 100 })({ host: tab, peers: directory([llmPeer('silent', 1)]) })
    const t = Date.now()
    const err = await planner.plan({ description: 'x' }, CATALOG).catch((e) => e)
    expect(Date.now() - t).toBeLessThan(2000)
    expect(err).toBeInstanceOf(LlmPlanError)
    expect(err.message).toContain('silent:')

    await serve(net.host('good'), fakeEngine())
    const both = remotePlanner({ timeoutMs: 100 })({ host: tab, peers: directory([llmPeer('silent', 1), llmPeer('good', 9)]) })
    expect(await both.plan({ description: 'x' }, CATALOG)).toEqual(DRAFT)
  })

  it('returns as soon as the answer arrives even if the peer keeps its end open', async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    await net.host('lingering').handle(PLAN_PROTOCOL_ID, (stream) => {
      void (async () => {
        const f = framed(stream, planProtocolDefinition)
        await f.read()
        await f.write({ type: 'plan-response', plan: DRAFT }) // and never closes
      })().catch(() => {})
    })
    const t = Date.now()
    const plan = await remotePlanner({ timeoutMs: 10_000 })({ host: tab, peers: directory([llmPeer('lingering', 1)]) }).plan({ description: 'x' }, CATALOG)
    expect(plan).toEqual(DRAFT)
    // Answered on the plan, not when the 10 s timeout fired.
    expect(Date.now() - t).toBeLessThan(5000)
  })

  it('does not leave the stream to a failed peer open (timeout or hostile answer)', async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    await rawPeer(net.host('silent'), undefined)
    await rawPeer(net.host('evil'), { type: 'plan-accepted' })
    await remotePlanner({ timeoutMs: 50 })({ host: tab, peers: directory([llmPeer('silent', 1), llmPeer('evil', 2)]) })
      .plan({ description: 'x' }, CATALOG)
      .catch(() => {})
    await delay(10)
    // net.streams holds [tab side, peer side] per dial; the tab's ends must be closed or aborted.
    const mine = net.streams.filter((_, i) => i % 2 === 0)
    expect(mine).toHaveLength(2)
    expect(mine.map((s) => s.status)).not.toContain('open')
  })

  it("a slow engine on the serving side is bounded by the server's own timeout", async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    let aborted = false
    const slow = fakeEngine(async (_req, _cat, signal) => {
      await new Promise<void>((_resolve, reject) => {
        signal?.addEventListener('abort', () => {
          aborted = true
          reject(signal.reason)
        })
      })
      return DRAFT
    })
    await serve(net.host('slow'), slow, { timeoutMs: 100 })
    const err = await remotePlanner({ timeoutMs: 2000 })({ host: tab, peers: directory([llmPeer('slow', 1)]) })
      .plan({ description: 'x' }, CATALOG)
      .catch((e) => e)
    expect(aborted).toBe(true)
    expect(err).toBeInstanceOf(LlmPlanError)
    expect(err.message).toContain('slow:')
  })

  it("the caller's abort signal stops planning with the abort reason, not a fall-through to the next peer", async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    await rawPeer(net.host('silent'), undefined)
    const good = fakeEngine()
    await serve(net.host('good'), good)
    const ac = new AbortController()
    const p = remotePlanner({ timeoutMs: 5000 })({ host: tab, peers: directory([llmPeer('silent', 1), llmPeer('good', 9)]) }).plan(
      { description: 'x' },
      CATALOG,
      { signal: ac.signal }
    )
    await delay(30)
    ac.abort(new Error('user cancelled'))
    await expect(p).rejects.toThrow('user cancelled')
    expect(good.calls).toHaveLength(0)
  })
})

describe('in the planner chain', () => {
  it('a remote plan is stamped planner: remote', async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    await serve(net.host('gpu'), fakeEngine())
    const chain = plannerChain([remotePlanner()({ host: tab, peers: directory([llmPeer('gpu', 5)]) }), deterministicPlanner()])
    const plan = await chain.plan({ description: 'summarize then translate' }, CATALOG, (p) => validatePlan(p, AGENTS))
    expect(plan.planner).toBe('remote')
    expect(plan.notes).toBeUndefined()
    expect(plan.subtasks).toEqual(DRAFT.subtasks)
  })

  it('falls through to the deterministic planner, with a note, when no peer has llm', async () => {
    const net = streamNetwork()
    const chain = plannerChain([remotePlanner()({ host: net.host('tab'), peers: directory([peer('x')]) }), deterministicPlanner()])
    const plan = await chain.plan({ description: 'summarize this', capabilities: ['text-summarization'] }, CATALOG, (p) => validatePlan(p, AGENTS))
    expect(plan.planner).toBe('deterministic')
    expect(plan.notes?.[0]).toMatch(/^remote: .*llm/)
  })

  it('a remote plan with a cycle is rejected by validation and the deterministic planner is used', async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    const cyclic: PlanDraft = {
      subtasks: [
        { id: 'a', description: 'a', capabilities: ['text-summarization'], dependencies: ['b'], input: { from: 'step', step: 'b' }, estimated_cost: 2 },
        { id: 'b', description: 'b', capabilities: ['translation'], dependencies: ['a'], input: { from: 'step', step: 'a' }, estimated_cost: 3 }
      ],
      execution_mode: 'dag',
      total_estimated_cost: 5
    }
    await serve(
      net.host('gpu'),
      fakeEngine(() => cyclic)
    )
    const chain = plannerChain([remotePlanner()({ host: tab, peers: directory([llmPeer('gpu', 5)]) }), deterministicPlanner()])
    const plan = await chain.plan({ description: 'summarize this', capabilities: ['text-summarization'] }, CATALOG, (p) => validatePlan(p, AGENTS))
    expect(plan.planner).toBe('deterministic')
    expect(plan.notes?.[0]).toMatch(/^remote: .*cycle|^remote: .*a → b/)

    // Alone in the chain, the cyclic plan surfaces as a typed error, not a crash.
    const alone = plannerChain([remotePlanner()({ host: tab, peers: directory([llmPeer('gpu', 5)]) })])
    const err = await alone.plan({ description: 'x' }, CATALOG, (p) => validatePlan(p, AGENTS)).catch((e) => e)
    expect(err).toBeInstanceOf(OrchestratorError)
    expect(err.name).toBe('PlanValidationError')
  })

  it("a plan needing a capability the tab's catalog lacks is rejected", async () => {
    const net = streamNetwork()
    const tab = net.host('tab')
    await serve(
      net.host('gpu'),
      fakeEngine(() => ({ ...DRAFT, subtasks: [{ ...DRAFT.subtasks[0], capabilities: ['image-generation'] }] }))
    )
    const chain = plannerChain([remotePlanner()({ host: tab, peers: directory([llmPeer('gpu', 5)]) }), deterministicPlanner()])
    const plan = await chain.plan({ description: 'summarize this' }, CATALOG, (p) => validatePlan(p, AGENTS))
    expect(plan.planner).toBe('deterministic')
    expect(plan.notes?.[0]).toContain('image-generation')
  })
})
