/**
 * Two gossipsub behaviours that lost presences in a growing mesh (issue 16, scale), repaired on
 * the gossipsub instance (tabs here; the relay should install the same):
 *
 * 1. gossipsub answers an IWANT with every message asked for in ONE RPC. A peer that fell
 *    behind (event-loop lag while 50 peers join) asks for dozens of presences at once (~1.1 KB
 *    each, up to MAX_PRESENCE_BYTES), and past GOSSIP_LIMITS.maxRpcBytes (64 KB) the receiver's
 *    length-prefixed reader refuses the RPC: every message in it is lost, and
 * 2. a read error on a peer's stream (that refusal, a reset stream) makes gossipsub drop the
 *    peer altogether (mesh, topics, both streams) while the connection stays open. Its peer
 *    keeps it as a mesh member but has no stream to send on: the link carries no gossip either
 *    way until it is closed, which nothing does. In a 50-peer simulator run, 12 oversized RPCs
 *    and 51 reset streams cut links this way, and peers lacked presences 70 s on.
 *
 * Repairs: an RPC whose messages exceed `splitBytes` leaves as several RPCs (the control part
 * with the last one), and a peer dropped on a read error whose connection is still open is
 * taken back after `rejoinMs`, its unread stream reset so that its peer opens a new one too (at most `maxRejoins` times a minute per peer, so a peer that
 * keeps sending oversized RPCs is not read again and again).
 */
import type { Connection, PeerId } from '@libp2p/interface'

/** The part of a gossipsub RPC message this file sizes. */
interface RpcMessage {
  from?: Uint8Array
  data?: Uint8Array
  seqno?: Uint8Array
  topic?: string
  signature?: Uint8Array
  key?: Uint8Array
}

interface Rpc {
  subscriptions?: unknown[]
  messages?: RpcMessage[]
  control?: unknown
}

/** The gossipsub internals the repairs wrap (gossipsub 17: `sendRpc`, `handlePeerReadStreamError`, `onPeerConnected`). */
interface GossipsubInternals {
  sendRpc?: (id: string, rpc: Rpc) => boolean
  handlePeerReadStreamError?: (err: Error, peerId: PeerId) => void
  onPeerConnected?: (peerId: PeerId, connection: Connection) => void
  isStarted?: () => boolean
  streamsInbound?: Map<string, { rawStream?: { abort?: (err: Error) => void } }>
}

export interface GossipRepairOptions {
  /** Messages of one RPC beyond this many bytes are sent in several. Default half of `maxRpcBytes`. */
  splitBytes: number
  counters: { inc(name: string, by?: number): void }
  /** An open connection to `peer` gossipsub may use (not a limited one), or undefined. */
  connection: (peer: PeerId) => Connection | undefined
  /** Wait before taking a dropped peer back. Default 1000 ms. */
  rejoinMs?: number
  /** Rejoins per peer per minute. Default 3. */
  maxRejoins?: number
}

/** Bytes a message takes in an RPC, near enough (its fields and their protobuf tags and lengths). */
export function rpcMessageBytes(m: RpcMessage): number {
  return (
    (m.data?.length ?? 0) + (m.from?.length ?? 0) + (m.seqno?.length ?? 0) + (m.signature?.length ?? 0) + (m.key?.length ?? 0) + (m.topic?.length ?? 0) + 16
  )
}

/** `rpc`'s messages in RPCs of at most `maxBytes` of messages each (one message larger than that goes alone); the control part and subscriptions go with the last. */
export function splitRpc<R extends Rpc>(rpc: R, maxBytes: number): R[] {
  const messages = rpc.messages ?? []
  let total = 0
  for (const m of messages) total += rpcMessageBytes(m)
  if (messages.length < 2 || total <= maxBytes) return [rpc]
  const out: R[] = []
  let chunk: RpcMessage[] = []
  let bytes = 0
  for (const m of messages) {
    const b = rpcMessageBytes(m)
    if (chunk.length > 0 && bytes + b > maxBytes) {
      out.push({ ...rpc, subscriptions: [], messages: chunk, control: undefined })
      chunk = []
      bytes = 0
    }
    chunk.push(m)
    bytes += b
  }
  out.push({ ...rpc, messages: chunk })
  return out
}

/** Install both repairs on a gossipsub instance (see the module's comment). A gossipsub without these internals is left as it is. */
export function repairGossip(pubsub: unknown, opts: GossipRepairOptions): void {
  const gs = pubsub as GossipsubInternals
  const rejoinMs = opts.rejoinMs ?? 1000
  const maxRejoins = opts.maxRejoins ?? 3
  const send = gs.sendRpc?.bind(gs)
  if (send != null) {
    gs.sendRpc = (id, rpc) => {
      const parts = splitRpc(rpc, opts.splitBytes)
      if (parts.length === 1) return send(id, rpc)
      opts.counters.inc('gossip.rpcSplit')
      let sent = true
      for (const part of parts) sent = send(id, part) && sent
      return sent
    }
  }
  const onReadError = gs.handlePeerReadStreamError?.bind(gs)
  const onConnected = gs.onPeerConnected?.bind(gs)
  if (onReadError == null) return
  const rejoins = new Map<string, number[]>()
  gs.handlePeerReadStreamError = (err, peerId) => {
    opts.counters.inc(`gossip.readStreamErrors.${(err as Error | undefined)?.name ?? 'Error'}`)
    // Reset the stream we no longer read, not only close our end: its peer's outbound stream then
    // ends too and is opened anew when we come back (a closed end left it writing into the void).
    try {
      gs.streamsInbound?.get(peerId.toString())?.rawStream?.abort?.(err instanceof Error ? err : new Error(String(err)))
    } catch {
      /* already closed */
    }
    onReadError(err, peerId)
    if (onConnected == null) return
    const id = peerId.toString()
    const now = Date.now()
    const recent = (rejoins.get(id) ?? []).filter((t) => now - t < 60_000)
    if (recent.length >= maxRejoins) {
      opts.counters.inc('gossip.rejoinRefused')
      return
    }
    recent.push(now)
    rejoins.set(id, recent)
    if (rejoins.size > 4096) rejoins.delete(rejoins.keys().next().value!)
    setTimeout(() => {
      if (gs.isStarted?.() === false) return
      const conn = opts.connection(peerId)
      if (conn == null) return
      opts.counters.inc('gossip.rejoined')
      onConnected(peerId, conn)
    }, rejoinMs)
  }
}
