/** Types of routing decisions, shared by the router, the dispatcher and custom scoring functions. */
import type { AgentCandidate, PeerSnapshot } from '../components.ts'

/**
 * Per-criterion scores of one (agent, peer) pair, each 0..1 where 1 is best:
 * cost (cheapest), quality, speed (lowest round trip), region (in a preferred
 * region), reputation, load (most free workers), specialization (fewest
 * capabilities; 1 = a specialist).
 */
export interface RouteCriteria {
  cost: number
  quality: number
  speed: number
  region: number
  reputation: number
  load: number
  specialization: number
}

/** The raw facts about one (agent, peer) pair, as a custom scoring function sees them. */
export interface RouteCandidate {
  agent: AgentCandidate
  peer: PeerSnapshot
  /** 0..5: the reputation source's figure, else 5 x the agent's posterior mean (its prior when nothing is known); undefined only from older callers. */
  reputation: number | undefined
}

/** One scored (agent, peer) pair. */
export interface ScoredRoute extends RouteCandidate {
  score: number
  criteria: RouteCriteria
  /** Posterior mean (0..1) that the agent does its job; below 0.5 it is ranked after every trusted agent. */
  trust?: number
  /** Free workers the router counted for the peer: what it says, capped by what it has been seen to take. */
  freeSeen?: number
}

/** The router's answer for one step. */
export interface RouteDecision {
  capabilities: readonly string[]
  strategy: string
  winner: ScoredRoute
  /** Next choices, best first: the fallback chain's agents first, then by score. */
  alternatives: ScoredRoute[]
  /** One sentence saying why the winner was chosen. */
  reasoning: string
  /** Agents offering the capabilities, and how many passed the hard constraints. */
  considered: number
  eligible: number
}
