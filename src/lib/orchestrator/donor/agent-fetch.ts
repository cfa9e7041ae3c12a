/**
 * agent-fetch over the task protocol: a donor that lacks an agent's module
 * asks a peer that holds it; the answer comes in chunks (≤ 12 KiB of base64)
 * with the whole module's sha-256, which the requester checks before use.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { fromString, toString as bytesToString } from 'uint8arrays'
import type { AgentBlobStore } from '../components.ts'
import { AgentIntegrityError, PeerUnavailableError, RequestTimeoutError, toError } from '../errors.ts'
import { randomId } from '../ids.ts'
import { logger } from '../../core/index.ts'
import { AGENT_CHUNK_BYTES, type TaskMessage } from '../dispatch/index.ts'
import type { TaskTransport } from '../dispatch/index.ts'

const log = logger('orchestrator:agent-fetch')

/** Hex sha-256 of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return bytesToString(sha256(bytes), 'base16')
}

/** Largest module we accept over agent-fetch (the runtime's own cap is lower or equal). */
export const MAX_FETCHED_AGENT_BYTES = 16 * 1024 * 1024

/** Serve agent-fetch requests from `blobs`. Returns the unsubscribe function. */
export function serveAgentFetch(transport: TaskTransport, blobs: AgentBlobStore): () => void {
  return transport.onMessage((from, m) => {
    if (m.type !== 'agent-fetch') return
    void (async () => {
      const bytes = await blobs.get(m.agentId)
      if (bytes == null) {
        await transport.send(from, { type: 'agent-missing', rid: m.rid, agentId: m.agentId })
        return
      }
      const sha = sha256Hex(bytes)
      const count = Math.max(1, Math.ceil(bytes.byteLength / AGENT_CHUNK_BYTES))
      for (let index = 0; index < count; index++) {
        const data = bytesToString(bytes.subarray(index * AGENT_CHUNK_BYTES, (index + 1) * AGENT_CHUNK_BYTES), 'base64pad')
        await transport.send(from, { type: 'agent-chunk', rid: m.rid, index, count, totalBytes: bytes.byteLength, sha256: sha, data })
      }
    })().catch((err) => {
      log('serving %s to %s failed: %s', m.agentId, from, toError(err).message)
    })
  })
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
  return await new Promise<Uint8Array>((resolve, reject) => {
    let chunks: Array<Uint8Array | undefined> | undefined
    let meta: { count: number; totalBytes: number; sha256: string } | undefined
    let received = 0
    const finish = (err?: Error, bytes?: Uint8Array): void => {
      offMsg()
      offClosed()
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
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
    const offMsg = transport.onMessage((from, m: TaskMessage) => {
      if (from !== peer || m.rid !== rid) return
      if (m.type === 'agent-missing') {
        finish(new PeerUnavailableError(`${peer} does not hold agent ${agentId.slice(0, 12)}…`))
        return
      }
      if (m.type !== 'agent-chunk') return
      if (meta == null) {
        if (m.totalBytes > MAX_FETCHED_AGENT_BYTES || m.count !== Math.max(1, Math.ceil(m.totalBytes / AGENT_CHUNK_BYTES))) {
          finish(new AgentIntegrityError(`${peer} announced an impossible module size (${m.totalBytes} bytes in ${m.count} chunks)`))
          return
        }
        if (opts.expectedSha256 != null && m.sha256 !== opts.expectedSha256) {
          finish(new AgentIntegrityError(`${peer} offered agent bytes whose hash differs from the catalog's`))
          return
        }
        meta = { count: m.count, totalBytes: m.totalBytes, sha256: m.sha256 }
        chunks = new Array(m.count)
      }
      if (m.count !== meta.count || m.totalBytes !== meta.totalBytes || m.sha256 !== meta.sha256 || m.index >= meta.count) {
        finish(new AgentIntegrityError(`${peer} sent inconsistent chunks for agent ${agentId.slice(0, 12)}…`))
        return
      }
      if (chunks![m.index] != null) return // a duplicate chunk
      let data: Uint8Array
      try {
        data = fromString(m.data, 'base64pad')
      } catch {
        finish(new AgentIntegrityError(`${peer} sent a chunk that is not base64`))
        return
      }
      chunks![m.index] = data
      if (++received < meta.count) return
      const bytes = new Uint8Array(meta.totalBytes)
      let off = 0
      for (const c of chunks!) {
        if (off + c!.byteLength > bytes.byteLength) {
          finish(new AgentIntegrityError(`${peer} sent more bytes than announced`))
          return
        }
        bytes.set(c!, off)
        off += c!.byteLength
      }
      if (off !== meta.totalBytes) {
        finish(new AgentIntegrityError(`${peer} sent ${off} bytes, not the announced ${meta.totalBytes}`))
        return
      }
      if (sha256Hex(bytes) !== meta.sha256) {
        finish(new AgentIntegrityError(`The agent bytes from ${peer} do not match their sha-256: a chunk was corrupted or forged`))
        return
      }
      finish(undefined, bytes)
    })
    transport.send(peer, { type: 'agent-fetch', rid, agentId }, { signal: opts.signal }).catch((err) => {
      finish(toError(err))
    })
  })
}
