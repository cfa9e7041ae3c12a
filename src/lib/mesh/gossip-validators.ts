/**
 * One definition of what gossip is acceptable, used by tabs and the relay alike (issue 11
 * item 9): topic validators that look at the size first, then the content, so an oversized
 * or malformed message is rejected before anything reads it and is never forwarded; and
 * gossipsub score parameters per topic, so that a `Reject` lowers its sender's score until
 * gossipsub ignores the sender altogether (with no topic listed, a Reject never did).
 */
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { type Message, TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerScoreParams, PeerScoreThresholds } from '@libp2p/gossipsub/score'
import type { PeerId } from '@libp2p/interface'
import { RateLimiter } from '@libp2p/utils'
import { DEPARTED_TOPIC, DEPARTURES, DISCOVERY_TOPIC, GOSSIP_LIMITS, GOSSIP_RATES, MAX_PRESENCE_BYTES, PRESENCE_TOPIC } from './constants.ts'
import { decodeDeparture } from './departures.ts'
import { decodePresence } from './presence.ts'
import { InvalidFrameError } from './errors.ts'

/** Why a message was rejected (counted as `gossip.rejected.<reason>`). */
export type GossipRejectReason = 'too-large' | 'unsigned' | 'malformed' | 'forged'

/** A validator's verdict before it is mapped to gossipsub's. */
export type GossipVerdict = { ok: true } | { ok: false; reason: GossipRejectReason; message: string }

const bad = (reason: GossipRejectReason, message: string): GossipVerdict => ({ ok: false, reason, message })

/** The largest message each topic takes, in bytes. */
export const GOSSIP_MAX_BYTES: Readonly<Record<string, number>> = {
  [PRESENCE_TOPIC]: MAX_PRESENCE_BYTES,
  [DISCOVERY_TOPIC]: GOSSIP_LIMITS.maxDiscoveryBytes,
  [DEPARTED_TOPIC]: DEPARTURES.maxBytes
}

const TOPIC_NAMES: Readonly<Record<string, string>> = {
  [PRESENCE_TOPIC]: 'presence',
  [DISCOVERY_TOPIC]: 'discovery record',
  [DEPARTED_TOPIC]: 'departure notice'
}

/** The size rule of a topic alone (no signature, no content): what can be judged before anything else. */
export function checkGossipSize(topic: string, bytes: number): GossipVerdict {
  const max = GOSSIP_MAX_BYTES[topic]
  if (max == null || bytes <= max) return { ok: true }
  return bad('too-large', `${TOPIC_NAMES[topic] ?? topic} of ${bytes} bytes exceeds ${max}`)
}

/** Presence: size first, then a signed author, then the schema (the claimed peer id must be the author). */
export function checkPresence(msg: Message): GossipVerdict {
  const size = checkGossipSize(PRESENCE_TOPIC, msg.data.byteLength)
  if (!size.ok) return size
  if (msg.type !== 'signed') return bad('unsigned', 'presence must be signed by its author')
  try {
    decodePresence(msg.data, msg.from.toString())
    return { ok: true }
  } catch (err) {
    return bad('malformed', (err as Error).message)
  }
}

/** The fields of a pubsub-peer-discovery record (protobuf `Peer { bytes publicKey = 1; repeated bytes addrs = 2; }`). */
export interface DiscoveryRecord {
  publicKey: Uint8Array
  addrs: Uint8Array[]
}

/**
 * Decode a discovery record, bounded: at most `maxAddrs` addresses, nothing but fields 1
 * and 2 (length-delimited), no varint longer than 5 bytes. Throws InvalidFrameError on anything else.
 */
export function decodeDiscoveryRecord(data: Uint8Array, maxAddrs: number = GOSSIP_LIMITS.maxDiscoveryAddrs): DiscoveryRecord {
  let pos = 0
  const varint = (): number => {
    let out = 0
    for (let i = 0; i < 5; i++) {
      if (pos >= data.byteLength) throw new InvalidFrameError('truncated varint')
      const b = data[pos++] as number
      out += (b & 0x7f) * 2 ** (7 * i)
      if ((b & 0x80) === 0) return out
    }
    throw new InvalidFrameError('varint too long')
  }
  let publicKey: Uint8Array | undefined
  const addrs: Uint8Array[] = []
  while (pos < data.byteLength) {
    const tag = varint()
    if ((tag & 7) !== 2) throw new InvalidFrameError(`unexpected wire type ${tag & 7}`)
    const len = varint()
    if (pos + len > data.byteLength) throw new InvalidFrameError('field runs past the end')
    const bytes = data.subarray(pos, pos + len)
    pos += len
    if (tag >>> 3 === 1) publicKey = bytes
    else if (tag >>> 3 === 2) {
      if (addrs.length >= maxAddrs) throw new InvalidFrameError(`more than ${maxAddrs} addresses`)
      addrs.push(bytes)
    } else throw new InvalidFrameError(`unexpected field ${tag >>> 3}`)
  }
  if (publicKey == null) throw new InvalidFrameError('no public key')
  return { publicKey, addrs }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Discovery: size first, then a signed author, then a bounded record whose key must be
 * the author's. pubsub-peer-discovery trusts the key inside the record, so anyone could
 * publish a record for any peer with addresses of their choosing (issue 11 item 10).
 */
export function checkDiscovery(msg: Message): GossipVerdict {
  const size = checkGossipSize(DISCOVERY_TOPIC, msg.data.byteLength)
  if (!size.ok) return size
  if (msg.type !== 'signed') return bad('unsigned', 'discovery records must be signed by their author')
  let record: DiscoveryRecord
  try {
    record = decodeDiscoveryRecord(msg.data)
  } catch (err) {
    return bad('malformed', `discovery record: ${(err as Error).message}`)
  }
  const key = msg.from.publicKey
  if (key == null || !sameBytes(record.publicKey, publicKeyToProtobuf(key)))
    return bad('forged', `discovery record for another key, published by ${msg.from.toString()}`)
  return { ok: true }
}

/**
 * A departure notice (departures.ts): size first, then a signed author that is a relay this peer
 * knows, then the schema. A notice by anyone else is refused as forged when its author sent it
 * to us itself (`source`, the peer whose connection it came over); forwarded by another peer it
 * is only ignored ('not-relay'), since the forwarder may know a relay this peer does not (a
 * relay added to the list since this tab loaded) and must not be blamed for it.
 */
export function checkDeparture(msg: Message, source: string, isRelay: (author: string) => boolean): GossipVerdict | { ok: 'ignore'; reason: 'not-relay' } {
  const size = checkGossipSize(DEPARTED_TOPIC, msg.data.byteLength)
  if (!size.ok) return size
  if (msg.type !== 'signed') return bad('unsigned', 'departure notices must be signed by a relay')
  const author = msg.from.toString()
  if (!isRelay(author)) {
    if (author === source) return bad('forged', `departure notice published by ${author}, which is not a relay`)
    return { ok: 'ignore', reason: 'not-relay' }
  }
  try {
    decodeDeparture(msg.data)
    return { ok: true }
  } catch (err) {
    return bad('malformed', (err as Error).message)
  }
}

/** The validator of each topic we gossip on (departure notices need the known relays: see installGossipValidators). */
export const GOSSIP_CHECKS: Readonly<Record<string, (msg: Message) => GossipVerdict>> = {
  [PRESENCE_TOPIC]: checkPresence,
  [DISCOVERY_TOPIC]: checkDiscovery
}

/** The name a topic's offences are struck and counted under (`strikes.<name>.<reason>`). */
export function gossipStrikeProtocol(topic: string): 'presence' | 'discovery' | 'departed' {
  return topic === PRESENCE_TOPIC ? 'presence' : topic === DEPARTED_TOPIC ? 'departed' : 'discovery'
}

/** Hooks of the validators (tabs and the relay strike and count). */
export interface GossipValidatorHooks {
  /** Authors whose messages are ignored without penalty (blocked peers; the relay forwarding them is not at fault). */
  isBlocked?: (author: string) => boolean
  /**
   * A message was rejected: its sender's gossipsub score falls; the caller may strike the author.
   * `author` is the signed author; for a message refused on its size before its signature was
   * checked, it is the peer that sent it to us (its connection proves who that is, the message's
   * own `from` is not proven yet; an honest peer never forwards one, as every tab and relay
   * checks sizes before forwarding).
   */
  onReject?: (author: string | undefined, topic: string, verdict: Extract<GossipVerdict, { ok: false }>) => void
  /** A valid message over its author's rate on the topic (GOSSIP_RATES): not forwarded; the caller may strike the author. */
  onOverRate?: (author: string, topic: string) => void
  /** The relays whose departure notices this peer takes (DEPARTED_TOPIC); without it every notice is refused or ignored. */
  isRelay?: (author: string) => boolean
  /** A message ignored without blame (a departure notice of an author that is not a known relay, forwarded by another peer). */
  onIgnore?: (author: string | undefined, topic: string, reason: string) => void
}

/** The message of an RPC as gossipsub receives it, before anything is checked. */
export interface ReceivedRpcMessage {
  topic: string
  data?: Uint8Array
}

/** What gossipsub's pre-validation answers (its `MessageStatus` and `RejectReason` values, not exported by the package). */
type PreValidation = { code: string; reason?: string }

/** What `installGossipValidators` needs of gossipsub. */
export interface ValidatingPubSub {
  topicValidators: Map<string, (peer: PeerId, msg: Message) => TopicValidatorResult | Promise<TopicValidatorResult>>
  /**
   * gossipsub's own first step for each received message (a private method: duplicate check,
   * signature check, message id, IDONTWANT to mesh peers, then the topic validator). Wrapped so
   * that the size rule comes first of all, where present.
   */
  validateReceivedMessage?: (source: PeerId, rpcMsg: ReceivedRpcMessage) => Promise<PreValidation>
}

/**
 * Install GOSSIP_CHECKS as gossipsub topic validators, and the size rule ahead of gossipsub's
 * own pre-validation: an oversized message is refused before its signature is verified, its id
 * computed or IDONTWANTs sent for it to every mesh peer (gossipsub runs all of that before any
 * topic validator; issue 11 item 9, "size first"). gossipsub then scores it as an invalid
 * delivery of its propagation source, as for a bad signature.
 */
export function installGossipValidators(pubsub: ValidatingPubSub, hooks: GossipValidatorHooks = {}): void {
  const prevalidate = pubsub.validateReceivedMessage
  if (typeof prevalidate === 'function') {
    pubsub.validateReceivedMessage = async (source, rpcMsg) => {
      const verdict = checkGossipSize(rpcMsg.topic, rpcMsg.data?.byteLength ?? 0)
      if (verdict.ok) return await prevalidate.call(pubsub, source, rpcMsg)
      const sender = source.toString()
      if (hooks.isBlocked?.(sender) !== true) hooks.onReject?.(sender, rpcMsg.topic, verdict)
      return { code: 'invalid', reason: 'reject' }
    }
  }
  const isRelay = hooks.isRelay ?? (() => false)
  const checks: Record<string, (msg: Message, source: string) => GossipVerdict | { ok: 'ignore'; reason: string }> = {
    ...GOSSIP_CHECKS,
    [DEPARTED_TOPIC]: (msg, source) => checkDeparture(msg, source, isRelay)
  }
  for (const [topic, check] of Object.entries(checks)) {
    const rate = GOSSIP_RATES[topic]
    const limiter = rate == null ? undefined : new RateLimiter({ points: rate.messages, duration: rate.windowS, keyPrefix: topic })
    pubsub.topicValidators.set(topic, (peer, msg) => {
      const author = msg.type === 'signed' ? msg.from.toString() : undefined
      if (author !== undefined && hooks.isBlocked?.(author) === true) return TopicValidatorResult.Ignore
      const verdict = check(msg, peer.toString())
      if (verdict.ok === 'ignore') {
        hooks.onIgnore?.(author, topic, verdict.reason)
        return TopicValidatorResult.Ignore
      }
      if (!verdict.ok) {
        hooks.onReject?.(author, topic, verdict)
        return TopicValidatorResult.Reject
      }
      // Valid messages only reach here, and each once (gossipsub drops copies first), so an
      // author is counted for what it published, however many peers forwarded it.
      if (limiter != null && author !== undefined) {
        try {
          limiter.consume(author)
        } catch {
          hooks.onOverRate?.(author, topic)
          return TopicValidatorResult.Ignore
        }
      }
      return TopicValidatorResult.Accept
    })
  }
}

/** Per-topic score: only invalid deliveries count (−3 × count², the count decaying 2 % a second). */
const TOPIC_SCORE = {
  topicWeight: 1,
  timeInMeshWeight: 0,
  timeInMeshQuantum: 1000,
  timeInMeshCap: 1,
  firstMessageDeliveriesWeight: 0,
  firstMessageDeliveriesDecay: 0.5,
  firstMessageDeliveriesCap: 1,
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesCap: 1,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 5000,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.5,
  invalidMessageDeliveriesWeight: -3,
  invalidMessageDeliveriesDecay: 0.98
} as const

/**
 * Gossipsub thresholds: two rejected messages put a peer below the gossip threshold (−12),
 * six past the graylist (−108), where gossipsub drops everything it sends (the strike policy
 * blocks at five first on tabs; the relay, which strikes nobody, relies on this); twenty take
 * about a minute to decay back above it.
 */
export const GOSSIP_SCORE_THRESHOLDS: PeerScoreThresholds = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 20
}

/**
 * Score parameters and thresholds for gossipsub's init. `appScore` adds a peer-level score
 * (tabs: relays high so a relay is never graylisted by accident, blocked peers far below
 * the graylist). The IP colocation penalty stays off: browsers share addresses.
 */
export function gossipScoring(appScore: (peerId: string) => number = () => 0): {
  scoreParams: Partial<PeerScoreParams>
  scoreThresholds: PeerScoreThresholds
} {
  return {
    scoreParams: {
      IPColocationFactorWeight: 0,
      topics: { [PRESENCE_TOPIC]: { ...TOPIC_SCORE }, [DISCOVERY_TOPIC]: { ...TOPIC_SCORE }, [DEPARTED_TOPIC]: { ...TOPIC_SCORE } },
      appSpecificScore: appScore,
      appSpecificWeight: 1
    },
    scoreThresholds: { ...GOSSIP_SCORE_THRESHOLDS }
  }
}

let unsigned = 0

/**
 * gossipsub's `msgIdToStrFn` for tabs and relays: a message id as the key gossipsub keeps it
 * under (seen, message cache, IHAVE/IWANT), never sent or shown. The library's default is
 * base64 through multiformats: every id of every IHAVE a peer receives was encoded so, 6 %
 * of what a simulated peer allocated while gossip flowed (issue 16). One character per byte
 * (code points 0-255) is as unique and costs one string. String.fromCharCode takes the bytes
 * as arguments, so long inputs go in slices.
 */
export function gossipMsgIdToString(id: Uint8Array): string {
  const max = 4096
  if (id.length <= max) return String.fromCharCode.apply(null, id as unknown as number[])
  let s = ''
  for (let i = 0; i < id.length; i += max) s += String.fromCharCode.apply(null, id.subarray(i, i + max) as unknown as number[])
  return s
}

/**
 * gossipsub's `fastMsgIdFn` for tabs and relays: a message's author and sequence number,
 * read from the RPC before anything is checked. That pair is already the message's id
 * under StrictSign (gossipsub's msgIdFnStrictSign), so duplicates are the same ones; the
 * difference is when they are dropped. Without it gossipsub checks the signature of every
 * copy it receives (one from each mesh peer, ~6) before finding it seen: in the simulator's
 * profile, 15 % of a peer's CPU was signature checks of copies. gossipsub remembers the
 * key only after a copy passed the signature check, so a forged copy sent first does not
 * shadow the real message. A message without author or sequence number (refused under
 * StrictSign anyway) gets a key of its own. One character per byte, not hex through
 * multiformats: the hex keys were 5 % of what a simulated peer allocated while gossip flowed.
 */
export function gossipFastMsgId(msg: { from?: Uint8Array; seqno?: Uint8Array }): string {
  // U+FFFF first: no author's key starts so (its length would pass the RPC limit).
  if (msg.from == null || msg.seqno == null) return `\uffffunsigned:${unsigned++}`
  // The author's length first, then author and sequence number one character per byte.
  return String.fromCharCode(msg.from.length) + gossipMsgIdToString(msg.from) + gossipMsgIdToString(msg.seqno)
}
