/**
 * Multi-criteria routing (vision §2). A route is an (agent, peer) pair. Every
 * criterion depends on the agent alone (cost, quality, reputation,
 * specialization) or the peer alone (speed, region, load), and every built-in
 * strategy scores a weighted sum, so the best pair is the best agent plus the
 * best peer: selection is O(agents + peers), over typed arrays indexed by
 * capability, with no allocation per agent. Only `custom` scores every pair.
 *
 * With trust (`components.routing`, issue 12) reputation, quality and latency are measured: an
 * agent's reputation is its Beta posterior (prior by provenance plus verified outcomes), its quality
 * its verified success rate, a pair's latency the agent's run time plus the peer's round trip, and
 * the user behind the peer takes half the reputation term. With learning (`components.learning`),
 * `balanced` draws each agent's quality from a Thompson sample, a newer version of the winner takes
 * its A/B share, and flagged agents and users are routed around while others are eligible.
 *
 * Room (with `components.capacity`): a donor whose offers of ours in flight fill the capacity it has
 * shown goes after every donor with room left, whatever the strategy; among equals, the one with
 * fewer of ours in flight goes first ({@link LOAD_TIE}); and a peer's latency counts the wait behind our
 * offers there (their share of its shown capacity times a run), so a slightly closer donor does not take
 * a whole fan-out while an equal one idles.
 */
import type { AgentCandidate, AgentCatalog, PeerDirectory, PeerSnapshot, ReputationSource, RoutingTrust } from '../components.ts'
import { NoEligibleAgentError, OrchestratorError } from '../errors.ts'
import { DEFAULT_WEIGHTS, type ResolvedPreferences, type Strategy } from './preferences.ts'
import type { RouteCriteria, RouteDecision, ScoredRoute } from './router-types.ts'
import { reasoningFor } from './router-reasoning.ts'
import { TRUSTED_MEAN, agentPosterior, betaMean, isHeld, type AgentTrust } from './trust.ts'
import type { LearningSnapshot, RouteLearning } from './learning.ts'
import { compareVersions } from './ab.ts'
import type { PeerCapacity } from './capacity.ts'
import { parseLlmRuns, peerLlmFit, UNKNOWN_TPS, type LlmSpeedSource } from './llm-fit.ts'

/** What a peer advertises when it runs `llm-prompt` agents (a language model is loaded there). */
export const LLM_PROMPT_CAPABILITY = 'llm-prompt'

/** Added to the ordering key of trusted agents: every trusted agent outranks every untrusted one. */
const TIER_GAP = 1e6
/** Weight of spreading offers among donors showing equal room (above the speed tie-break, below any real difference). */
const FAIRNESS = 0.002
/**
 * Every strategy: among otherwise equal peers, the one with fewer of our offers in flight (sent or
 * running) first, so a fan-out (a `for_each`, parallel steps) spreads over equal donors instead of
 * piling onto the lowest peer id. Small: it orders ties and near-ties, never a real difference.
 */
const LOAD_TIE = 0.002

/** No donating peer with a free worker meets the constraints (the agent exists). */
export class NoEligiblePeerError extends OrchestratorError {
  override readonly name: string = 'NoEligiblePeerError'
  static override readonly defaultMessage = 'No peer can run this step right now: donate compute here or wait for a donor'
}

/** What the router needs. */
export interface RouterComponents {
  catalog: AgentCatalog
  peers: PeerDirectory
  reputation?: ReputationSource
  /** Beta posteriors of agents by author (the trust room's reputation plugs in here); default: priors plus this peer's outcomes. */
  agentTrust?: AgentTrust
  /** Capacity each donor has shown (`CapacityBook`); without it, self-reported free workers count as they are. */
  capacity?: PeerCapacity
  /** This peer (the task transport's `self`): agents it is named a holder of count as held. */
  transport?: { readonly self: string }
  /** This peer's runtime: agents whose bytes it has count as held (the donor fetches them from us). */
  executor?: { has(agentId: string): boolean }
  /**
   * Verified outcomes and reputation (trust/, issue 12): agents' reputation and quality become their
   * verified success, latency their measured run time plus the round trip, and the user behind each
   * peer weighs in the reputation term. Without it: the catalog's figures, and the round trip alone.
   */
  routing?: RoutingTrust
  /** What routing learned (route/learning.ts): the balanced bandit, A/B trials of new versions, anomaly flags. */
  learning?: RouteLearning
  /**
   * Measured generation speed of donors (`LlmSpeedBook`, fed by the dispatcher): for an `llm-prompt`
   * step a peer's speed is its tokens/s as measured, its advertised claim only a prior. Without it
   * the claims count as they are (capped).
   */
  llmSpeed?: LlmSpeedSource
}

/** Router options. */
export interface RouterInit {
  /** How many alternatives to keep for re-dispatch. Default 8. */
  maxAlternatives?: number
}

/** Per-call options. */
export interface RouteOptions {
  /** Price cap for this step (default: preferences.max_cost). */
  budget?: number
  excludeAgents?: ReadonlySet<string>
  excludePeers?: ReadonlySet<string>
  /** Only these agent ids (a request that names its agent). */
  onlyAgents?: ReadonlySet<string>
  /** Route over these peers instead of the directory's (e.g. only this peer). */
  peers?: readonly PeerSnapshot[]
}

/** Picks the (agent, peer) pair for a step. */
export interface Router {
  route(capabilities: readonly string[], prefs: ResolvedPreferences, opts?: RouteOptions): RouteDecision
  /** What routing has learned (bandit arms, A/B trials and decisions, anomaly flags), read-only; undefined without learning. */
  learning(): LearningSnapshot | undefined
}

interface CapabilityIndex {
  agents: readonly AgentCandidate[]
  price: Float64Array
  quality: Float64Array
  /** 1 / number of capabilities. */
  spec: Float64Array
  minPrice: number
  maxPrice: number
}

interface Weights {
  cost: number
  quality: number
  reputation: number
  spec: number
  gen: number
  speed: number
  region: number
  load: number
}

const TIE = 0.001

function weightsFor(strategy: Strategy, p: ResolvedPreferences): Weights {
  const w: Weights = { cost: 0, quality: 0, reputation: 0, spec: 0, gen: 0, speed: 0, region: 0, load: 0 }
  const tie = (): void => {
    w.cost += TIE
    w.quality += TIE
    w.reputation += TIE
    w.speed += TIE * 0.1
  }
  switch (strategy) {
    case 'cost':
      w.cost = 1
      tie()
      break
    case 'quality':
      w.quality = 1
      tie()
      break
    case 'speed':
      w.speed = 1
      tie()
      break
    case 'specialist':
      w.spec = 1
      tie()
      break
    case 'generalist':
      w.gen = 1
      tie()
      break
    case 'geographic':
      w.region = 1
      w.speed = 0.5
      tie()
      break
    case 'load-balanced':
      w.load = 1
      tie()
      break
    default: {
      w.cost = p.cost_weight ?? DEFAULT_WEIGHTS.cost
      w.quality = p.quality_weight ?? DEFAULT_WEIGHTS.quality
      w.speed = p.speed_weight ?? DEFAULT_WEIGHTS.speed
      w.region = p.region_weight ?? DEFAULT_WEIGHTS.region
      w.reputation = p.reputation_weight ?? DEFAULT_WEIGHTS.reputation
      if (p.prefer_specialists === true) w.spec = 0.2
    }
  }
  return w
}

const K_MAX = 8

/** Create a router over the catalog, the peer directory and reputation. */
/** The router as a service, `router(init)(components)` (the house's construction convention). */
export function router(init: RouterInit = {}): (components: RouterComponents) => Router {
  return (components) => createRouter(components, init)
}

/** Components first; kept for callers that build a router directly (tests). */
export function createRouter(components: RouterComponents, init: RouterInit = {}): Router {
  const k = Math.max(1, Math.min(K_MAX, init.maxAlternatives ?? 8))
  const index = new Map<string, CapabilityIndex>()
  let indexedVersion: number | undefined
  const roundRobin = new Map<string, number>()
  // Reused top-k buffers: the hot loop allocates nothing.
  const topIdx = new Int32Array(K_MAX)
  const topScore = new Float64Array(K_MAX)
  // Per-call figures of the scanned agents (quality as routing sees it, run time), grown as needed.
  let qBuf = new Float64Array(0)
  let msBuf = new Float64Array(0)
  const routing = components.routing
  const learning = components.learning

  function indexFor(capability: string): CapabilityIndex {
    const version = components.catalog.version?.()
    if (version === undefined || version !== indexedVersion) {
      index.clear()
      indexedVersion = version
    }
    let ix = index.get(capability)
    if (ix != null) return ix
    const agents = components.catalog.list(capability)
    const n = agents.length
    ix = { agents, price: new Float64Array(n), quality: new Float64Array(n), spec: new Float64Array(n), minPrice: Infinity, maxPrice: 0 }
    for (let i = 0; i < n; i++) {
      const a = agents[i]
      ix.price[i] = a.price
      ix.quality[i] = a.quality ?? 0.5
      ix.spec[i] = 1 / Math.max(1, a.capabilities.length)
      if (a.price < ix.minPrice) ix.minPrice = a.price
      if (a.price > ix.maxPrice) ix.maxPrice = a.price
    }
    if (version !== undefined) index.set(capability, ix)
    return ix
  }

  function route(capabilities: readonly string[], prefs: ResolvedPreferences, opts: RouteOptions = {}): RouteDecision {
    if (capabilities.length === 0) throw new NoEligibleAgentError(undefined, 'A step names no capability: give it at least one')
    // Scan the rarest capability's agents; check the others per agent.
    let ix = indexFor(capabilities[0])
    for (let c = 1; c < capabilities.length; c++) {
      const other = indexFor(capabilities[c])
      if (other.agents.length < ix.agents.length) ix = other
    }
    const capsLabel = capabilities.join(' + ')
    if (ix.agents.length === 0) throw new NoEligibleAgentError(capsLabel)
    const strategy = prefs.strategy
    const w = weightsFor(strategy, prefs)
    const capKey = capabilities.join('\n')
    const only = opts.onlyAgents
    /** The balanced strategy learns: Thompson samples of each agent's verified success replace its quality estimate. */
    const bandit = learning != null && strategy === 'balanced' ? learning : undefined

    // ---- peers (few): filter and score once.
    const directory = components.peers.peers()
    const allPeers = opts.peers ?? directory
    // Peers whose word that they hold an agent counts: every peer we know, and this one.
    const known = new Set<string>()
    for (const p of directory) known.add(p.id)
    if (opts.peers != null) for (const p of opts.peers) known.add(p.id)
    const self = components.transport?.self
    if (self != null) known.add(self)
    const capacity = components.capacity
    const executor = components.executor
    const local = executor == null ? undefined : (id: string): boolean => executor.has(id)
    const peers: PeerSnapshot[] = []
    const free: number[] = []
    /** Our offers in flight at each peer (sent, not yet settled), as the dispatcher's windows count them. */
    const inflight: number[] = []
    let maxInflight = 0
    let maxRtt = 0
    let maxFree = 0
    // Peers of users flagged by anomaly detection are routed around while another peer is eligible.
    const candidatePeers: PeerSnapshot[] = []
    const flaggedPeers: PeerSnapshot[] = []
    // An llm-prompt agent needs a loaded language model: only peers that advertise one (issue 14).
    const llmOnly = ix.agents.length > 0 && ix.agents.every((a) => a.abi === 'llm-prompt')
    const llmSpeed = components.llmSpeed
    /** Tokens/s of a peer's fastest advertised model as routing believes it (measured, the claim a prior). */
    const llmTps = (p: PeerSnapshot): number => {
      const claim = Math.max(0, ...parseLlmRuns(p.capabilities).map((m) => m.tps))
      return llmSpeed?.speed(p.id, claim > 0 ? claim : undefined) ?? (claim > 0 ? Math.min(claim, 5000) : UNKNOWN_TPS)
    }
    for (const p of allPeers) {
      if (!p.donating || p.freeWorkers <= 0) continue
      if (llmOnly && !p.capabilities.includes(LLM_PROMPT_CAPABILITY)) continue
      if (opts.excludePeers?.has(p.id) === true) continue
      if (prefs.max_latency !== undefined && (p.rttMs === undefined || p.rttMs > prefs.max_latency)) continue
      if (learning?.peerFlagged(p.id) === true) flaggedPeers.push(p)
      else candidatePeers.push(p)
    }
    for (const p of candidatePeers.length > 0 ? candidatePeers : flaggedPeers) {
      peers.push(p)
      // What it says it has free, capped by what it has been seen to take (issue 11 item 6).
      const f = capacity == null || p.id === self ? p.freeWorkers : Math.min(p.freeWorkers, capacity.free(p.id))
      free.push(f)
      const busy = capacity?.inflight?.(p.id) ?? 0
      inflight.push(busy)
      if (busy > maxInflight) maxInflight = busy
      if (p.rttMs !== undefined && p.rttMs > maxRtt) maxRtt = p.rttMs
      if (f > maxFree) maxFree = f
    }
    if (peers.length === 0 && llmOnly) {
      throw new NoEligiblePeerError(`No peer can run ${capsLabel} right now: it needs a language model, and no donating peer with a free worker has one loaded`)
    }
    if (peers.length === 0) {
      throw new NoEligiblePeerError(
        `No peer can run ${capsLabel} right now: no donating peer has a free worker${prefs.max_latency !== undefined ? ` within ${prefs.max_latency} ms` : ''}. Donate compute here or wait for a donor`
      )
    }
    // ---- agents' quality (verified success when trust knows it) and measured run time (learned, verified or the catalog's).
    const n = ix.agents.length
    if (qBuf.length < n) {
      qBuf = new Float64Array(Math.max(n, qBuf.length * 2))
      msBuf = new Float64Array(qBuf.length)
    }
    let maxRun = 0
    let knownRuns = 0
    let sumRun = 0
    for (let i = 0; i < n; i++) {
      const id = ix.agents[i].id
      qBuf[i] = routing?.agentQuality(id) ?? ix.quality[i]
      const ms = learning?.runMs(capKey, id) ?? routing?.agentRunMs(id) ?? ix.agents[i].avgMs
      if (ms !== undefined && Number.isFinite(ms) && ms >= 0) {
        msBuf[i] = ms
        knownRuns++
        sumRun += ms
        if (ms > maxRun) maxRun = ms
      } else msBuf[i] = -1
    }
    // An agent never timed counts the mean of those timed (neither favoured nor punished).
    const meanRun = knownRuns === 0 ? 0 : sumRun / knownRuns
    for (let i = 0; i < n; i++) if (msBuf[i] < 0) msBuf[i] = meanRun
    // A peer busy with our offers answers a new one later: the wait behind them is counted as the share of the
    // capacity it has shown that they take, times a run (the mean run time: the peer part stays separable).
    const waitMs = peers.map((_, i) => (inflight[i] === 0 ? 0 : (meanRun * inflight[i]) / Math.max(1, inflight[i] + free[i])))
    const maxWait = Math.max(0, ...waitMs)
    // Latency of a pair = the agent's run time + the peer's round trip and wait, on one scale (separable: agent part + peer part).
    const latencySpan = maxRun + maxRtt + maxWait
    const regions = prefs.preferred_regions
    const userScore = routing == null ? undefined : (peerId: string, agentId?: string): number => clamp01(routing.userScore(peerId, agentId))
    const peerUser = peers.map((p) => userScore?.(p.id) ?? 0)
    // An llm-prompt step: a peer's speed is mostly its generation speed (tokens/s, measured here where known,
    // its claim as a prior), shared by the fastest candidate; the round trip and wait take the rest.
    const tps = llmOnly ? peers.map((p) => llmTps(p)) : undefined
    const maxTps = tps == null ? 0 : Math.max(0, ...tps)
    const peerCriteria = peers.map((p, i) => ({
      speed: mixSpeed(
        latencySpan === 0 ? (p.rttMs === undefined ? 0.5 : 1) : 1 - ((p.rttMs ?? maxRtt / 2) + waitMs[i]) / latencySpan,
        tps == null || maxTps <= 0 ? undefined : tps[i] / maxTps
      ),
      region: regions != null && p.region != null && regions.includes(p.region) ? 1 : 0,
      load: maxFree === 0 ? 0 : free[i] / maxFree
    }))
    // Among donors showing equal room, load-balanced turns to the one that took fewest of our offers.
    const taken = w.load > 0 && capacity?.accepted != null ? peers.map((p) => capacity.accepted?.(p.id) ?? 0) : undefined
    const maxTaken = taken == null ? 0 : Math.max(0, ...taken)
    // With trust, the reputation term is half the agent's and half its peer's user's (shared statements included).
    const repShare = routing == null ? 1 : 0.5
    const peerScore = peerCriteria.map(
      (c, i) =>
        w.speed * c.speed +
        w.region * c.region +
        w.load * c.load +
        (1 - repShare) * w.reputation * peerUser[i] +
        (taken != null && maxTaken > 0 ? w.load * FAIRNESS * (1 - taken[i] / maxTaken) : 0) +
        (maxInflight > 0 ? LOAD_TIE * (1 - inflight[i] / maxInflight) : 0)
    )
    // Peers with room first (a full one would decline or queue the offer), then by score.
    const roomAt = (i: number): number => (free[i] > 0 ? 1 : 0)
    const peerOrder = peers.map((_, i) => i).sort((a, b) => roomAt(b) - roomAt(a) || peerScore[b] - peerScore[a] || peers[a].id.localeCompare(peers[b].id))
    /** Whether peer `p` has a model that fits agent `i` (always, for other agents): issue 14's family, list and minimum context. */
    const fitMemo = new Map<number, boolean>()
    const fits = (i: number, p: number): boolean => {
      if (!llmOnly) return true
      const key = i * peers.length + p
      let f = fitMemo.get(key)
      if (f === undefined) {
        f = peerLlmFit(peers[p].capabilities, ix.agents[i].llm).fits
        fitMemo.set(key, f)
      }
      return f
    }
    /** The best-ordered peer (from the `from`-th in order, wrapping) that fits agent `i`, or -1. */
    const peerFor = (i: number, from = 0): number => {
      for (let j = 0; j < peerOrder.length; j++) {
        const p = peerOrder[(from + j) % peerOrder.length]
        if (fits(i, p)) return p
      }
      return -1
    }

    // ---- agents (many): hard constraints, then the weighted agent part, top-k kept in place.
    const budget = opts.budget ?? prefs.max_cost ?? Infinity
    const minQ = prefs.min_quality ?? -Infinity
    const minRep = prefs.min_reputation
    const rep = components.reputation
    const trust = components.agentTrust
    const trustOf = (a: AgentCandidate): number => betaMean(trust?.reputation(a.id, a.author) ?? agentPosterior(a, routing))
    /** Reputation 0..5: the source's when it knows the agent, else 5 x its posterior mean (unknown is the prior, not zero). */
    const reputationOf = (a: AgentCandidate): number => rep?.agentReputation(a.id) ?? 5 * trustOf(a)
    /** Agents flagged by anomaly detection rank after every unflagged one of their trust tier (routed around). */
    const flaggedAgent = (id: string): boolean => learning?.agentFlagged(id) === true
    /** Rank: trusted and unflagged 3, trusted flagged 2, untrusted unflagged 1, untrusted flagged 0. */
    const rankOf = (a: AgentCandidate, t = trustOf(a)): number => (t >= TRUSTED_MEAN ? 2 : 0) + (flaggedAgent(a.id) ? 0 : 1)
    /** The quality term of agent `i`: under balanced with learning, a Thompson sample of its verified success. */
    const samples = new Map<number, number>()
    const qualityOf = (i: number): number => {
      if (bandit == null) return qBuf[i]
      let s = samples.get(i)
      if (s === undefined) {
        s = bandit.sample(capKey, ix.agents[i].id, qBuf[i])
        samples.set(i, s)
      }
      return s
    }
    const speedOf = (i: number): number => (latencySpan === 0 ? 0 : -msBuf[i] / latencySpan)
    const exclude = opts.excludeAgents
    const span = ix.maxPrice - ix.minPrice
    const multi = capabilities.length > 1
    let overBudget = 0
    let lowQuality = 0
    let lowRep = 0
    let excluded = 0
    let unheld = 0
    /** llm-prompt agents whose model no donating peer has loaded (family, list or context). */
    let noModel = 0
    let eligible = 0
    /** Eligible agents per rank (see rankOf), and the best rank present. */
    const perTier = [0, 0, 0, 0]
    let kept = 0
    const rr = strategy === 'round-robin'
    for (let i = 0; i < n; i++) {
      const price = ix.price[i]
      if (price > budget) {
        overBudget++
        continue
      }
      const q = qBuf[i]
      if (q < minQ) {
        lowQuality++
        continue
      }
      const agent = ix.agents[i]
      if (multi && !hasAll(agent.capabilities, capabilities)) continue
      if (exclude?.has(agent.id)) {
        excluded++
        continue
      }
      if (only !== undefined && !only.has(agent.id)) continue
      // Nobody we know holds it and it never answered here: a listing, not an agent (issue 11 item 4).
      if (!isHeld(agent, known, local)) {
        unheld++
        continue
      }
      if (llmOnly && peerFor(i) < 0) {
        noModel++
        continue
      }
      const t = trustOf(agent)
      const r = rep?.agentReputation(agent.id) ?? 5 * t
      if (minRep !== undefined && r < minRep) {
        lowRep++
        continue
      }
      eligible++
      const tier = rankOf(agent, t)
      perTier[tier]++
      if (rr) continue
      const cost = span === 0 ? 1 : (ix.maxPrice - price) / span
      // Trusted (and unflagged) agents first, then the strategy's score.
      const s =
        tier * TIER_GAP +
        w.cost * cost +
        w.quality * qualityOf(i) +
        repShare * w.reputation * (r / 5) +
        w.speed * speedOf(i) +
        w.spec * ix.spec[i] +
        w.gen * (1 - ix.spec[i])
      // Insert into the sorted top-k (stable: earlier index wins ties).
      if (kept < k || s > topScore[kept - 1]) {
        let j = kept < k ? kept++ : k - 1
        while (j > 0 && topScore[j - 1] < s) {
          topScore[j] = topScore[j - 1]
          topIdx[j] = topIdx[j - 1]
          j--
        }
        topScore[j] = s
        topIdx[j] = i
      }
    }
    if (eligible === 0 && noModel > 0 && overBudget + lowQuality + lowRep + excluded + unheld === 0) {
      const need = ix.agents.find((a) => a.llm != null)?.llm
      throw new NoEligiblePeerError(
        `No peer can run ${capsLabel} right now: no donating peer with a free worker has a language model that fits it${need != null ? ` (${needText(need)})` : ''}`
      )
    }
    if (eligible === 0) {
      const why: string[] = []
      if (overBudget > 0) why.push(`${overBudget} over the ${budget} credit budget`)
      if (lowQuality > 0) why.push(`${lowQuality} below min_quality ${prefs.min_quality}`)
      if (lowRep > 0) why.push(`${lowRep} below min_reputation ${minRep}`)
      if (excluded > 0) why.push(`${excluded} already failed`)
      if (unheld > 0) why.push(`${unheld} held by no peer this one knows`)
      if (noModel > 0) why.push(`${noModel} with no fitting language model on any donating peer`)
      if (only !== undefined && why.length === 0) why.push('the named agent is not among them')
      throw new NoEligibleAgentError(
        capsLabel,
        why.length === 0
          ? `No agent offers ${capsLabel}: publish one or remove the step`
          : `No agent for ${capsLabel} meets the constraints (${why.join(', ')}): relax the preferences`
      )
    }

    let bestTier = 3
    while (bestTier > 0 && perTier[bestTier] === 0) bestTier--
    const scored = (i: number, p: number): ScoredRoute => {
      const agent = ix.agents[i]
      const r = reputationOf(agent)
      const pc = peerCriteria[p]
      const agentRep = r / 5
      // The user's score on this very agent where trust knows it (the scan used its overall score).
      const user = userScore?.(peers[p].id, agent.id)
      const criteria: RouteCriteria = {
        cost: span === 0 ? 1 : (ix.maxPrice - ix.price[i]) / span,
        quality: qualityOf(i),
        speed: pc.speed + speedOf(i),
        region: pc.region,
        reputation: user === undefined ? agentRep : (agentRep + user) / 2,
        load: pc.load,
        specialization: ix.spec[i]
      }
      const score =
        w.cost * criteria.cost +
        w.quality * criteria.quality +
        w.reputation * criteria.reputation +
        w.speed * speedOf(i) +
        w.spec * criteria.specialization +
        w.gen * (1 - criteria.specialization) +
        peerScore[p] -
        (1 - repShare) * w.reputation * peerUser[p]
      return { agent, peer: peers[p], reputation: r, score, criteria, trust: trustOf(agent), freeSeen: free[p] }
    }
    const tierOf = (s: ScoredRoute): number => rankOf(s.agent, s.trust ?? 1)
    const roomOf = (s: ScoredRoute): number => ((s.freeSeen ?? 1) > 0 ? 1 : 0)
    /** Trust tier, then room at the peer, then the strategy's score. */
    const byTierThenScore = (a: ScoredRoute, b: ScoredRoute): number => tierOf(b) - tierOf(a) || roomOf(b) - roomOf(a) || b.score - a.score
    const isEligible = (i: number): boolean => {
      const a = ix.agents[i]
      if (
        ix.price[i] > budget ||
        ix.quality[i] < minQ ||
        (multi && !hasAll(a.capabilities, capabilities)) ||
        exclude?.has(a.id) === true ||
        (only !== undefined && !only.has(a.id)) ||
        !isHeld(a, known, local) ||
        (llmOnly && peerFor(i) < 0)
      )
        return false
      return minRep === undefined || reputationOf(a) >= minRep
    }

    /** Set by abSwap when the trial kept the winner (the reasoning says so). */
    let abKept = ''
    /** The A/B choice for the winner's name: the route to take instead, or undefined to keep the winner. */
    const abSwap = (w0: ScoredRoute): { route: ScoredRoute; note: string } | undefined => {
      if (learning == null) return undefined
      const a0 = w0.agent
      // The two newest eligible versions of this name by this author: the challenger and its incumbent.
      let top = -1
      let second = -1
      for (let i = 0; i < n; i++) {
        const a = ix.agents[i]
        if (a.name !== a0.name || a.author !== a0.author || !isEligible(i)) continue
        if (top < 0 || compareVersions(a.version, ix.agents[top].version) > 0) {
          second = top
          top = i
        } else if (second < 0 || compareVersions(a.version, ix.agents[second].version) > 0) second = i
      }
      if (top < 0 || second < 0 || compareVersions(ix.agents[top].version, ix.agents[second].version) === 0) return undefined
      const challenger = ix.agents[top]
      const incumbent = ix.agents[second]
      const choice = learning.abChoose(capKey, incumbent, challenger)
      const pick = choice.use === 'challenger' ? top : second
      const note = `; A/B ${a0.name} ${incumbent.version} vs ${challenger.version}: ${choice.why}`
      if (ix.agents[pick].id === a0.id) {
        abKept = note
        return undefined
      }
      const p = peers.indexOf(w0.peer)
      return { route: scored(pick, p >= 0 && fits(pick, p) ? p : peerFor(pick)), note }
    }

    let ranked: ScoredRoute[]
    let rrInfo: { turn: number; of: number } | undefined
    if (rr) {
      const key = capabilities.join('\n')
      const turn = roundRobin.get(key) ?? 0
      roundRobin.set(key, turn + 1)
      ranked = []
      // The turn-th eligible agent, then the following ones, each on the turn-th peer.
      // Over the best tier present: untrusted agents take turns only where no trusted one is eligible.
      const inTier = perTier[bestTier]
      let seen = 0
      const want = turn % inTier
      for (let i = 0; i < n && ranked.length < k; i++) {
        if (!isEligible(i) || rankOf(ix.agents[i]) < bestTier) continue
        if (seen++ < want && ranked.length === 0) continue
        ranked.push(scored(i, peerFor(i, turn % peers.length)))
      }
      rrInfo = { turn: want + 1, of: inTier }
    } else if (strategy === 'custom') {
      const fn = prefs.custom_score
      if (fn == null) throw new OrchestratorError('The custom strategy needs a custom_score function')
      ranked = []
      for (let i = 0; i < n; i++) {
        if (!isEligible(i)) continue
        for (let p = 0; p < peers.length; p++) {
          if (!fits(i, p)) continue
          const s = scored(i, p)
          let v: number
          try {
            v = fn({ agent: s.agent, peer: s.peer, reputation: s.reputation }, s.criteria)
          } catch {
            v = NaN
          }
          if (!Number.isFinite(v)) continue
          s.score = v
          ranked.push(s)
        }
      }
      if (ranked.length === 0) throw new NoEligibleAgentError(capsLabel, `The custom scoring function gave no finite score for ${capsLabel}: check it`)
      ranked.sort(byTierThenScore)
      ranked.length = Math.min(ranked.length, k)
    } else {
      ranked = []
      // An llm-prompt agent takes only peers whose model fits it: its best k of them.
      for (let a = 0; a < kept; a++) {
        let taken = 0
        for (let p = 0; p < peerOrder.length && taken < k; p++) {
          if (!fits(topIdx[a], peerOrder[p])) continue
          ranked.push(scored(topIdx[a], peerOrder[p]))
          taken++
        }
      }
      ranked.sort(byTierThenScore)
      ranked.length = Math.min(ranked.length, k)
    }

    let winner = ranked[0]
    let alternatives = ranked.slice(1)
    // A/B: a newer version of the winner's agent (same name and author) takes its share of the traffic,
    // or all of it once promoted; a demoted one none. Steps that name their agent are left alone.
    let abNote = ''
    if (learning != null && only === undefined && ranked.length > 0) {
      const ab = abSwap(winner)
      if (ab != null) {
        alternatives = [winner, ...alternatives.filter((r) => r.agent.id !== ab.route.agent.id || r.peer.id !== ab.route.peer.id)]
        winner = ab.route
        abNote = ab.note
      } else if (abKept !== '') abNote = abKept
    }
    const chain = prefs.fallback_chain
    if (chain != null && chain.length > 0) {
      const front: ScoredRoute[] = []
      for (const ref of chain) {
        for (let i = 0; i < n; i++) {
          const a = ix.agents[i]
          if ((a.id === ref || a.name === ref) && a.id !== winner.agent.id && isEligible(i) && !front.some((f) => f.agent.id === a.id)) {
            front.push(scored(i, peerFor(i)))
            break
          }
        }
      }
      const chosen = new Set(front.map((f) => f.agent.id))
      alternatives = [...front, ...alternatives.filter((r) => !chosen.has(r.agent.id) || r.peer.id !== peers[peerOrder[0]].id)]
    }
    return {
      capabilities,
      strategy,
      winner,
      alternatives,
      reasoning:
        reasoningFor(strategy, winner, eligible, rrInfo) +
        ((winner.trust ?? 1) < TRUSTED_MEAN ? ', from an author with no track record here (no trusted agent is eligible)' : '') +
        (flaggedAgent(winner.agent.id) ? ', though anomaly detection flagged it (no unflagged agent is eligible)' : '') +
        abNote,
      considered: n,
      eligible
    }
  }

  return { route, learning: () => learning?.snapshot() }
}

/** The peer's speed criterion: its round trip alone, or for an llm-prompt step mostly its generation speed (0..1 of the fastest). */
function mixSpeed(rtt: number, tps: number | undefined): number {
  return tps === undefined ? rtt : 0.75 * tps + 0.25 * rtt
}

function needText(need: { families?: readonly string[]; models?: readonly string[]; minContext?: number }): string {
  const parts: string[] = []
  const names = [...(need.families ?? []), ...(need.models ?? [])]
  if (names.length > 0) parts.push(`a model of ${names.join(' or ')}`)
  if (need.minContext != null) parts.push(`at least ${need.minContext} tokens of context`)
  return parts.length === 0 ? 'any model' : `it needs ${parts.join(' with ')}`
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0.5
}

function hasAll(have: readonly string[], want: readonly string[]): boolean {
  for (const c of want) if (!have.includes(c)) return false
  return true
}
