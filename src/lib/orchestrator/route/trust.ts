/**
 * Which agents routing may trust (issue 11 item 4: capability takeover with
 * throwaway keys). Two rules, both applied to every strategy:
 *
 * - **Held**: an agent is routed only if someone can run it: it ships with the
 *   app (bundled), a peer we know (this one included) says it holds the bytes,
 *   or it has answered for this peer before. Registry holder hints naming peers
 *   nobody has seen count for nothing.
 * - **Trusted first**: each agent has a Beta posterior over "it does the job";
 *   agents whose posterior mean reaches {@link TRUSTED_MEAN} outrank every agent
 *   below it, whatever the strategy's score. A new author's agent enters with
 *   {@link NEW_AUTHOR_PRIOR} (mean 0.25), bundled agents with {@link BUNDLED_PRIOR};
 *   outcomes seen here move the posterior. So a thousand free entries from fresh
 *   keys are chosen only where no trusted agent offers the capability.
 *
 * The posterior comes from an {@link AgentTrust} when one is given (the trust
 * room's reputation, issue 12, plugs in here), else from the prior and this
 * peer's own outcomes.
 */
import type { AgentCandidate, RoutingTrust } from '../components.ts'

/** A Beta(alpha, beta) belief that an agent does its job (successes + alpha, failures + beta). */
export interface BetaPosterior {
  alpha: number
  beta: number
}

/**
 * Reputation as routing reads it: the Beta posterior of `agentId` by `author`,
 * prior included, or undefined to let the router use its own prior and local
 * outcomes. Must be cheap: it is called for every candidate agent of a route.
 */
export interface AgentTrust {
  reputation(agentId: string, author: string | undefined): BetaPosterior | undefined
}

/** Prior of an agent by an author routing knows nothing of: mean 0.25, one success short of even. */
export const NEW_AUTHOR_PRIOR: Readonly<BetaPosterior> = Object.freeze({ alpha: 1, beta: 3 })
/** Prior of an agent that ships with the app: mean 0.9. */
export const BUNDLED_PRIOR: Readonly<BetaPosterior> = Object.freeze({ alpha: 9, beta: 1 })
/** Posterior mean from which an agent is trusted (ranked above every untrusted one). */
export const TRUSTED_MEAN = 0.5

/** The mean of a Beta posterior, 0..1 (0.5 for a degenerate one). */
export function betaMean(b: BetaPosterior): number {
  const n = b.alpha + b.beta
  return n > 0 && Number.isFinite(n) ? b.alpha / n : 0.5
}

/**
 * The router's own posterior for a candidate: the prior by provenance plus the
 * outcomes this peer has seen. A candidate that says nothing of its provenance
 * (`bundled` undefined: a caller's own catalog, tests) is vouched for by that
 * caller and counts as bundled.
 */
export function localPosterior(agent: AgentCandidate): BetaPosterior {
  const prior = agent.bundled === false ? NEW_AUTHOR_PRIOR : BUNDLED_PRIOR
  const runs = Math.max(0, agent.runs ?? 0)
  const successes = Math.min(runs, Math.max(0, agent.successes ?? 0))
  return { alpha: prior.alpha + successes, beta: prior.beta + runs - successes }
}

/**
 * The posterior with the trust room's verified outcomes (persisted across reloads): the prior by
 * provenance plus whichever evidence is larger, this peer's outcomes of this session (every attempt,
 * errors included) or the verified results the trust service has kept (valid vs wrong or
 * schema-invalid). They count many of the same results, so they are not added together.
 */
export function agentPosterior(agent: AgentCandidate, routing: Pick<RoutingTrust, 'agentOutcomes'> | undefined): BetaPosterior {
  const local = localPosterior(agent)
  const v = routing?.agentOutcomes(agent.id)
  if (v == null) return local
  const seen = Math.max(0, v.valid) + Math.max(0, v.invalid)
  if (!(seen > Math.max(0, agent.runs ?? 0))) return local
  const prior = agent.bundled === false ? NEW_AUTHOR_PRIOR : BUNDLED_PRIOR
  return { alpha: prior.alpha + Math.max(0, v.valid), beta: prior.beta + Math.max(0, v.invalid) }
}

/**
 * Whether some peer can run `agent`: bundled, its bytes on this peer (`local`: holder hints
 * name page loads, so after a reload this peer's own agents are found here), held by a known
 * peer, or it answered here before.
 */
export function isHeld(agent: AgentCandidate, known: ReadonlySet<string>, local?: (agentId: string) => boolean): boolean {
  if (agent.bundled !== false) return true
  if ((agent.successes ?? 0) > 0) return true
  if (local?.(agent.id) === true) return true
  const holders = agent.holders
  if (holders == null) return false
  for (const h of holders) if (known.has(h)) return true
  return false
}
