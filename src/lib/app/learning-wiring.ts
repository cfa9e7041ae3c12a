/**
 * Routing's learning in the app (issue 12 "Learning"): the users behind peers come from trust,
 * A/B decisions are written to the registry doc as signed records (subject `ab:…`, the figures in
 * the subject, the challenger's success as the score), and a flagged agent or user is cleared by a
 * known-answer run: this tab runs the agent on a probe input itself (its own answer is the known
 * one), then runs the same input through the mesh on the flagged agent, or on the flagged user's
 * peers only, with verification off, and compares the two with the agent's declared comparison.
 */
import type { Registry } from '../memory/index.ts'
import {
  IndexedDbLearningStore,
  InvalidTaskRequestError,
  newTaskId,
  resolvePreferences,
  routeLearning,
  validatePlan,
  type AbDecision,
  type AgentCatalog,
  type DecisionLog,
  type HealthCheck,
  type LocalExecutor,
  type Orchestrator,
  type PeerDirectory,
  type RouteLearning,
  type TrustService
} from '../orchestrator/index.ts'
import type { AppCatalog } from './adapters.ts'

/** The longest subject a registry reputation record takes. */
const MAX_SUBJECT = 200

/** The registry subject of an A/B decision: `ab:<name>@<new>:<promoted|demoted>:vs=<old>;s=…;ms=…;cost=…;n=…`. */
export function decisionSubject(d: AbDecision): string {
  const c = d.challenger
  const i = d.incumbent
  const s = `ab:${d.name}@${c.version}:${d.decision}:vs=${i.version};s=${c.success}/${i.success};ms=${c.meanMs}/${i.meanMs};cost=${c.meanCost}/${i.meanCost};n=${c.results}/${i.results}`
  return s.slice(0, MAX_SUBJECT)
}

/** A/B decisions written to the registry doc (this profile's signed reputation records). */
export function registryDecisions(registry: Pick<Registry, 'publishReputation'>): DecisionLog {
  return {
    publish: (d) =>
      registry.publishReputation({
        subject: decisionSubject(d),
        score: Math.min(1, Math.max(0, d.challenger.success)),
        successes: Math.round(d.challenger.success * d.challenger.results),
        failures: d.challenger.results - Math.round(d.challenger.success * d.challenger.results)
      })
  }
}

const PROBE_TEXT =
  'ZeroState health check. The quick brown fox jumps over the lazy dog 42 times; see https://example.org or write to probe@example.org. Happy, calm, 3.14 + 2.'

/** A probe input for an agent's declared input type (a text by default). */
export function probeInput(manifest: Record<string, unknown> | undefined): unknown {
  const type = (manifest?.input as { type?: unknown } | undefined)?.type
  if (type === 'number' || type === 'integer') return 42
  if (type === 'object') return { text: PROBE_TEXT }
  if (type === 'array') return [PROBE_TEXT]
  return PROBE_TEXT
}

/**
 * The known-answer health check. `orchestrator()` is read when a check runs (the orchestrator is
 * built after learning, which it reads). A user check passes only when a peer of that user answered.
 */
export function knownAnswerCheck(opts: {
  catalog: AgentCatalog & { get(agentId: string): { manifest: unknown } | undefined }
  executor: Pick<LocalExecutor, 'has' | 'run'>
  trust: Pick<TrustService, 'agree' | 'checkOutput'>
  peers: PeerDirectory
  orchestrator: () => Orchestrator | undefined
}): HealthCheck {
  return async (target, signal) => {
    const orchestrator = opts.orchestrator()
    if (orchestrator == null) return false
    const peers = target.kind === 'user' ? opts.peers.peers().filter((p) => target.peers.includes(p.id)) : undefined
    if (peers != null && peers.length === 0) return false // the user is not online: stays flagged until it is
    for (const agentId of target.agents) {
      signal.throwIfAborted()
      const entry = opts.catalog.get(agentId)
      const agent = opts.catalog.list().find((a) => a.id === agentId)
      if (entry == null || agent == null || !opts.executor.has(agentId)) continue
      const input = probeInput(entry.manifest as Record<string, unknown>)
      let known: unknown
      try {
        known = (await opts.executor.run(agentId, input, { signal, timeoutMs: 30_000 })).output
      } catch {
        continue // no known answer on this input: try another agent
      }
      const plan = validatePlan(
        {
          subtasks: [
            {
              id: 's1',
              description: `health check of ${target.kind} ${target.id.slice(0, 16)}`,
              capabilities: [agent.capabilities[0]],
              dependencies: [],
              input: { from: 'task.input' },
              estimated_cost: agent.price
            }
          ],
          execution_mode: 'sequential',
          total_estimated_cost: agent.price,
          planner: 'direct'
        },
        opts.catalog
      )
      const run = await orchestrator.runPlan(plan, {
        taskId: newTaskId(),
        input,
        prefs: resolvePreferences({ strategy: 'balanced' }, (m) => new InvalidTaskRequestError(m)),
        signal,
        pinned: new Map([['s1', agentId]]),
        verification: 'none',
        ...(peers != null ? { peers } : {})
      })
      const step = run.steps[0]
      if (step == null || (peers != null && !peers.some((p) => p.id === step.peer))) return false
      const output = run.outputs.get('s1')
      if (opts.trust.checkOutput(agentId, output) != null) return false
      return await opts.trust.agree(agentId, known, output, { signal })
    }
    return false
  }
}

/** The learning of a tab: users from trust, decisions to the registry, known-answer health checks. */
export function appLearning(opts: {
  trust: TrustService
  registry: Pick<Registry, 'publishReputation'>
  catalog: AppCatalog
  executor: Pick<LocalExecutor, 'has' | 'run'>
  peers: PeerDirectory
  orchestrator: () => Orchestrator | undefined
  /** Keep the learned state in IndexedDB across reloads. Default: when IndexedDB exists. */
  persist?: boolean
}): RouteLearning {
  const persist = opts.persist ?? typeof indexedDB !== 'undefined'
  const learning = routeLearning()({
    users: opts.trust,
    self: opts.trust.self,
    decisions: registryDecisions(opts.registry),
    health: knownAnswerCheck(opts),
    shared: () => opts.trust.sharedDecisions(),
    ...(persist ? { store: new IndexedDbLearningStore() } : {})
  })
  void learning.load()
  return learning
}
