/**
 * The relay's roster (issue 11, join time). Without it a newcomer and a member only learn of
 * each other from presence gossip: the newcomer's once it holds a reservation and is grafted
 * into the topic mesh, the member's once it answers; 0.3–0.9 s of every join measured under
 * attack passed before anyone dialled.
 *
 * `/zerostate/roster/1.0.0`: a tab opens one stream to its relay as soon as it is connected.
 * The relay writes `{ peers: [peer id, …] }` with the peers holding a reservation there that
 * have gossiped a valid presence (a reservation alone is free to make: 200 throwaway identities
 * reserving filled rosters with peers that never answer), at most ROSTER_MAX, newest first,
 * never the asker; then keeps the stream open and writes `{ peers: [id] }` as each new holder's
 * first presence passes. The tab dials those peers at once, but only
 * where the usual rule says it dials (the smaller peer id): the roster brings the dial forward
 * and never makes both sides dial (two WebRTC dials that meet both fail).
 *
 * The relay is already trusted to bootstrap; the list only names peers (no addresses: a dial
 * goes through that same relay), each id is checked, and every dial spends the dialer's budget.
 */
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import * as v from 'valibot'
import { defineProtocol, framed } from '../core/index.ts'

export const ROSTER_PROTOCOL_ID = '/zerostate/roster/1.0.0'
/** The most peers the first roster names. */
export const ROSTER_MAX = 24
/** How long a tab waits for the first roster before joining the usual way (presence). */
export const ROSTER_TIMEOUT_MS = 2000

/** A peer id as text (base58btc: 12D3Koo…, Qm…); checked again by peerIdFromString. */
const PeerIdText = v.pipe(v.string(), v.minLength(16), v.maxLength(128), v.regex(/^[1-9A-HJ-NP-Za-km-z]+$/))

export const RosterSchema = v.strictObject({ peers: v.pipe(v.array(PeerIdText), v.maxLength(ROSTER_MAX)) })
export type Roster = v.InferOutput<typeof RosterSchema>

export const rosterProtocol = defineProtocol(ROSTER_PROTOCOL_ID, RosterSchema, { maxFrameBytes: 8 * 1024 })

/** The relay's end of one tab's roster stream. */
export interface RosterSubscriber {
  /** Tell this tab that `id` now holds a reservation (not sent to `id` itself). */
  reserved(id: string): void
  readonly peer: string
}

/**
 * The relay's side: answer `stream` with up to ROSTER_MAX of `holders` (peer ids with a live
 * reservation, newest first), leaving out the asker. Resolves with a subscriber that writes
 * later reservations to the same stream (frames are small and in order; a write that fails
 * or stalls closes the stream).
 */
export async function answerRoster(stream: Stream, connection: Connection, holders: () => Iterable<string>): Promise<RosterSubscriber> {
  const asker = connection.remotePeer.toString()
  const peers: string[] = []
  for (const id of holders()) {
    if (id === asker) continue
    peers.push(id)
    if (peers.length >= ROSTER_MAX) break
  }
  const f = framed(stream, rosterProtocol)
  await f.write({ peers }, { signal: AbortSignal.timeout(ROSTER_TIMEOUT_MS) })
  let queue = Promise.resolve()
  return {
    peer: asker,
    reserved(id) {
      if (id === asker || stream.status !== 'open') return
      queue = queue.then(() =>
        f.write({ peers: [id] }, { signal: AbortSignal.timeout(ROSTER_TIMEOUT_MS) }).catch((err: Error) => {
          stream.abort(err)
        })
      )
    }
  }
}

/**
 * The tab's side: follow the roster of the relay `relay` (a connected peer). `onPeers` gets
 * the first roster (within ROSTER_TIMEOUT_MS, or this rejects: an older relay does not speak
 * the protocol), then each newly reserved peer, as peer ids that parse, without our own.
 * Resolves when the relay ends the stream or the connection closes; `signal` stops it.
 */
export async function followRoster(
  node: Pick<Libp2p, 'dialProtocol' | 'peerId'>,
  relay: Connection['remotePeer'],
  onPeers: (peers: string[]) => void,
  { signal }: { signal?: AbortSignal } = {}
): Promise<void> {
  const first = AbortSignal.timeout(ROSTER_TIMEOUT_MS)
  const stream = await node.dialProtocol(relay, ROSTER_PROTOCOL_ID, { signal: signal == null ? first : AbortSignal.any([signal, first]) })
  const f = framed(stream, rosterProtocol)
  const self = node.peerId.toString()
  const valid = (peers: string[]): string[] =>
    [...new Set(peers)].filter((id) => {
      if (id === self) return false
      try {
        peerIdFromString(id)
        return true
      } catch {
        return false
      }
    })
  let answered = false
  try {
    onPeers(valid((await f.read({ signal: signal == null ? first : AbortSignal.any([signal, first]) })).peers))
    answered = true
    for (;;) onPeers(valid((await f.read({ signal })).peers))
  } catch (err) {
    // After the first roster, the relay going or ending the stream is the end of the roster,
    // not a failure; before it, the relay did not answer (refused, too slow, an older relay).
    if (!answered || (stream.status === 'open' && signal?.aborted !== true)) throw err
  } finally {
    if (stream.status === 'open') stream.abort(new Error('roster: done'))
  }
}

/** The first roster of `relay` only (tests, tools): its peer ids. */
export async function askRoster(node: Pick<Libp2p, 'dialProtocol' | 'peerId'>, relay: Connection['remotePeer']): Promise<string[]> {
  const stop = new AbortController()
  const { promise, resolve } = Promise.withResolvers<string[]>()
  // followRoster settles once stopped: after the first roster, or rejecting without one.
  const done = followRoster(
    node,
    relay,
    (peers) => {
      resolve(peers)
      stop.abort()
    },
    { signal: stop.signal }
  )
  await done.catch((err: Error) => {
    if (!stop.signal.aborted) throw err
  })
  return await promise
}
