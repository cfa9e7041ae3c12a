/**
 * agent-fetch over the task protocol: a donor that lacks an agent's module
 * asks a peer that holds it; the answer is one core payload (`core/payload.ts`):
 * an `agent-payload` message with the module's descriptor (size, sha-256), then
 * its chunks on the same rid. The requester checks the size cap and the hash as
 * the chunks come, and the hash against the catalog's before use.
 */
import { encodePayload, describePayload, PayloadIntegrityError, PayloadTooLargeError, sha256Hex as coreSha256Hex } from '../../core/index.ts'
import type { AgentBlobStore } from '../components.ts'
import { AgentIntegrityError, PeerUnavailableError, RequestTimeoutError, toError } from '../errors.ts'
import { randomId } from '../ids.ts'
import { logger } from '../../core/index.ts'
import { PeerBudget, type PeerBudgetInit } from '../../mesh/index.ts'
import { TaskPayloads, type TaskMessage } from '../dispatch/index.ts'
import type { TaskTransport } from '../dispatch/index.ts'

const log = logger('orchestrator:agent-fetch')

/** Hex sha-256 of bytes. */
export const sha256Hex: (bytes: Uint8Array) => string = coreSha256Hex

/** Largest module we accept over agent-fetch (the runtime's own cap is lower or equal). */
export const MAX_FETCHED_AGENT_BYTES = 16 * 1024 * 1024

/**
 * Per-peer budget of agent-fetch answers (issue 11 item 11: requests of 2.2 KB drew
 * 1.42 MB). An honest donor fetches an agent once and keeps it.
 */
export const AGENT_FETCH_BUDGET: PeerBudgetInit = { requests: 10, bytes: 32 * 1024 * 1024, windowS: 60 }

/** Serve agent-fetch requests from `blobs`. Returns the unsubscribe function. */
export function serveAgentFetch(
  transport: TaskTransport,
  blobs: AgentBlobStore,
  budget = new PeerBudget('agent-fetch', { strikes: transport.strikes }, AGENT_FETCH_BUDGET)
): () => void {
  const payloads = new TaskPayloads(transport)
  payloads.start()
  const off = transport.onMessage((from, m) => {
    if (m.type !== 'agent-fetch') return
    void (async () => {
      let refused = budget.request(from)
      const bytes = refused == null ? await blobs.get(m.agentId) : undefined
      if (bytes != null) refused = budget.answer(from, bytes.byteLength)
      if (refused != null) {
        await transport.send(from, { type: 'error', rid: m.rid, name: refused.name, message: refused.message })
        return
      }
      if (bytes == null) {
        await transport.send(from, { type: 'agent-missing', rid: m.rid, agentId: m.agentId })
        return
      }
      const payload = describePayload(encodePayload(bytes))
      await transport.send(from, { type: 'agent-payload', rid: m.rid, agentId: m.agentId, payload })
      if (payload.inline == null) await payloads.send(from, m.rid, bytes)
    })().catch((err) => {
      log('serving %s to %s failed: %s', m.agentId, from, toError(err).message)
    })
  })
  return () => {
    off()
    payloads.stop()
  }
}

/** Options of `fetchAgent`. */
export interface FetchAgentOptions {
  /** The module hash the catalog announces; the fetched bytes must match it too. */
  expectedSha256?: string
  /** Give up after this long. Default 30 s. */
  timeoutMs?: number
  signal?: AbortSignal
}

/**
 * Fetch an agent's module from `peer`. Rejects with `AgentIntegrityError` when
 * chunks disagree, the size or hash does not match, or the hash differs from
 * `expectedSha256`; with `PeerUnavailableError` when the peer lacks it or closes.
 */
export async function fetchAgent(transport: TaskTransport, peer: string, agentId: string, opts: FetchAgentOptions = {}): Promise<Uint8Array> {
  const rid = `fetch-${randomId()}`
  const payloads = new TaskPayloads(transport, { maxBytes: MAX_FETCHED_AGENT_BYTES })
  const stop = new AbortController()
  return await new Promise<Uint8Array>((resolve, reject) => {
    const finish = (err?: Error, bytes?: Uint8Array): void => {
      offMsg()
      offClosed()
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      stop.abort()
      payloads.stop()
      if (err != null) reject(err)
      else resolve(bytes!)
    }
    const onAbort = (): void => {
      finish(toError(opts.signal?.reason))
    }
    const timer = setTimeout(() => {
      finish(new RequestTimeoutError(`fetching agent ${agentId.slice(0, 12)}… from ${peer} timed out`))
    }, opts.timeoutMs ?? 30_000)
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    const offClosed = transport.onPeerClosed((p) => {
      if (p === peer) finish(new PeerUnavailableError(`${peer} closed while sending agent ${agentId.slice(0, 12)}…`))
    })
    payloads.start()
    let announced = false
    const offMsg = transport.onMessage((from, m: TaskMessage) => {
      if (from !== peer || m.rid !== rid) return
      if (m.type === 'agent-missing') {
        finish(new PeerUnavailableError(`${peer} does not hold agent ${agentId.slice(0, 12)}…`))
        return
      }
      if (m.type === 'error') {
        finish(new PeerUnavailableError(`${peer} refused agent ${agentId.slice(0, 12)}…: ${m.message}`))
        return
      }
      if (m.type !== 'agent-payload' || announced) return
      announced = true
      if (m.payload.kind !== 'bytes' || m.agentId !== agentId) {
        finish(new AgentIntegrityError(`${peer} answered with something other than agent ${agentId.slice(0, 12)}…`))
        return
      }
      if (opts.expectedSha256 != null && m.payload.sha256 !== opts.expectedSha256) {
        finish(new AgentIntegrityError(`${peer} offered agent bytes whose hash differs from the catalog's`))
        return
      }
      payloads.receive(from, rid, m.payload, { signal: stop.signal }).then(
        (bytes) => {
          finish(undefined, bytes as Uint8Array)
        },
        (err: unknown) => {
          if (err instanceof PayloadTooLargeError)
            finish(new AgentIntegrityError(`${peer} announced an impossible module size (${m.payload.size} bytes)`, { cause: err }))
          else if (err instanceof PayloadIntegrityError)
            finish(new AgentIntegrityError(`The agent bytes from ${peer} do not match their sha-256: a chunk was corrupted or forged`, { cause: err }))
          else finish(toError(err))
        }
      )
    })
    transport.send(peer, { type: 'agent-fetch', rid, agentId }, { signal: opts.signal }).catch((err) => {
      finish(toError(err))
    })
  })
}
