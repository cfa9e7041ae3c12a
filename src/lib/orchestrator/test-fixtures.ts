/** Shared stubs for the orchestrator's tests (not exported from index.ts). */
import { streamPair } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import type { AgentCandidate, AgentCatalog, LocalExecutor, PeerSnapshot } from './components.ts'
import type { StreamHost, TaskMessage } from './dispatch/index.ts'

/** In-process stream hosts joined by libp2p stream pairs, recording who was dialled and every stream. */
export function streamNetwork(): { host: (id: string) => StreamHost; dials: string[]; streams: Stream[] } {
  const handlers = new Map<string, (s: Stream, peer: string) => void>()
  const dials: string[] = []
  const streams: Stream[] = []
  const host = (id: string): StreamHost => ({
    peerId: id,
    async handle(protocol, h) {
      handlers.set(`${id} ${protocol}`, h)
    },
    async unhandle(protocol) {
      handlers.delete(`${id} ${protocol}`)
    },
    async openStream(peer, protocol, opts) {
      opts?.signal?.throwIfAborted()
      dials.push(peer)
      const h = handlers.get(`${peer} ${protocol}`)
      if (h == null) throw new Error(`${peer} does not handle ${protocol}`)
      const [mine, theirs] = await streamPair()
      streams.push(mine, theirs)
      h(theirs, id)
      return mine
    }
  })
  return { host, dials, streams }
}

/** A 64-hex agent id from a short label. */
export function aid(label: string): string {
  let h = ''
  for (const ch of label) h += ch.charCodeAt(0).toString(16).padStart(2, '0')
  return h.padEnd(64, '0').slice(0, 64)
}

/** An agent candidate with defaults. */
export function agent(name: string, capabilities: string[], price: number, extra: Partial<AgentCandidate> = {}): AgentCandidate {
  return { id: aid(name), name, version: '1.2.0', capabilities, price, ...extra }
}

/** An in-memory catalog. */
export function catalogOf(agents: AgentCandidate[]): AgentCatalog & { agents: AgentCandidate[] } {
  // The version changes whenever the list does (a test may push or edit agents), as the app's catalog does.
  let version = 0
  let seen = ''
  return {
    agents,
    list: (c) => (c == null ? agents : agents.filter((a) => a.capabilities.includes(c))),
    version: () => {
      const now = JSON.stringify(agents)
      if (now !== seen) {
        seen = now
        version++
      }
      return version
    }
  }
}

/** A donating peer with defaults. */
export function peer(id: string, extra: Partial<PeerSnapshot> = {}): PeerSnapshot {
  return { id, rttMs: 10, freeWorkers: 2, donating: true, capabilities: [], ...extra }
}

/** A local executor running plain functions by agent id. */
export function fnExecutor(
  fns: Record<string, (input: unknown, signal: AbortSignal) => unknown | Promise<unknown>>,
  workers = 2
): LocalExecutor & { running: number; maxRunning: number; runs: number } {
  const ex = {
    running: 0,
    maxRunning: 0,
    runs: 0,
    has: (id: string) => id in fns,
    freeWorkers: () => workers - ex.running,
    async run(id: string, input: unknown, opts: { signal: AbortSignal; timeoutMs: number }) {
      ex.running++
      ex.runs++
      ex.maxRunning = Math.max(ex.maxRunning, ex.running)
      const t = Date.now()
      try {
        const output = await fns[id](input, opts.signal)
        return { output, ms: Date.now() - t }
      } finally {
        ex.running--
      }
    }
  }
  return ex
}

/** Resolve after ms. */
export const delay = async (ms: number): Promise<void> => {
  await new Promise((r) => setTimeout(r, ms))
}

/** Poll `fn` every 5 ms until it holds; throws naming `what` after `timeoutMs` (tests over the in-memory transports). */
export async function pollUntil(fn: () => boolean, what = 'the condition', timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!fn()) {
    if (Date.now() > end) throw new Error(`${what} did not hold within ${timeoutMs} ms`)
    await delay(5)
  }
}

/** A task offer of agent `agent` (a label, see `aid`) for step `stepId` of `taskId`, with a minute to run. */
export function offerMessage(o: { rid: string; agent: string; taskId?: string; stepId?: string; idempotencyKey?: string }): TaskMessage {
  const taskId = o.taskId ?? 't'
  const stepId = o.stepId ?? 's1'
  return {
    type: 'offer',
    rid: o.rid,
    taskId,
    stepId,
    attempt: 1,
    idempotencyKey: o.idempotencyKey ?? `${taskId}/${stepId}`,
    agentId: aid(o.agent),
    input: 'x',
    deadline: Date.now() + 60_000
  }
}
