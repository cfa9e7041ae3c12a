import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { gossipsub, TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import { createPeerScoreParams, createPeerScoreThresholds, validatePeerScoreParams, validatePeerScoreThresholds } from '@libp2p/gossipsub/score'
import type { PeerId } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { DEPARTED_TOPIC, DISCOVERY_TOPIC, GOSSIP_LIMITS, GOSSIP_RATES, MAX_PRESENCE_BYTES, PRESENCE_MIN_SPACING_MS, PRESENCE_TOPIC } from './constants.ts'
import {
  checkDiscovery,
  checkPresence,
  decodeDiscoveryRecord,
  gossipScoring,
  installGossipValidators,
  type ReceivedRpcMessage,
  type ValidatingPubSub
} from './gossip-validators.ts'
import { MAX_PRESENCE_WORKERS, encodePresence } from './presence.ts'

async function peer(): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

function signed(from: PeerId, topic: string, data: Uint8Array): Message {
  return { type: 'signed', from, topic, data, sequenceNumber: 1n, signature: new Uint8Array(64), key: from.publicKey as never }
}

/** A pubsub-peer-discovery record (protobuf Peer { bytes publicKey = 1; repeated bytes addrs = 2 }). */
function record(publicKey: Uint8Array, addrs: Uint8Array[]): Uint8Array {
  const parts: number[] = []
  const field = (tag: number, bytes: Uint8Array): void => {
    parts.push(tag)
    let n = bytes.byteLength
    while (n >= 0x80) {
      parts.push((n & 0x7f) | 0x80)
      n >>>= 7
    }
    parts.push(n)
    parts.push(...bytes)
  }
  field(10, publicKey)
  for (const a of addrs) field(18, a)
  return Uint8Array.from(parts)
}

describe('gossip validators (issue 11 item 9)', () => {
  it('rejects an oversized presence on its size, before reading it', async () => {
    const from = await peer()
    // Not JSON at all: a size-first check says too-large, a parse-first one would say malformed.
    const v = checkPresence(signed(from, PRESENCE_TOPIC, new Uint8Array(MAX_PRESENCE_BYTES + 1).fill(0x7b)))
    expect(v).toMatchObject({ ok: false, reason: 'too-large' })
  })

  it('rejects a presence claiming more workers than any peer of this code advertises (issue 11 item 6), accepts the most it can', async () => {
    const a = await peer()
    const claim = (workers: number): Uint8Array =>
      new TextEncoder().encode(
        JSON.stringify({
          v: 1,
          peerId: a.toString(),
          capabilities: ['word-count'],
          donating: true,
          freeWorkers: 1024,
          workers,
          region: 'europe',
          ts: Date.now()
        })
      )
    expect(checkPresence(signed(a, PRESENCE_TOPIC, claim(1024)))).toMatchObject({ ok: false, reason: 'malformed' })
    expect(checkPresence(signed(a, PRESENCE_TOPIC, claim(MAX_PRESENCE_WORKERS + 1)))).toMatchObject({ ok: false, reason: 'malformed' })
    expect(checkPresence(signed(a, PRESENCE_TOPIC, claim(MAX_PRESENCE_WORKERS)))).toEqual({ ok: true })
  })

  it('accepts an honest presence and rejects one claiming another peer', async () => {
    const a = await peer()
    const b = await peer()
    const data = encodePresence({ v: 1, peerId: a.toString(), capabilities: ['echo'], donating: false, freeWorkers: 0, region: 'europe', ts: Date.now() })
    expect(checkPresence(signed(a, PRESENCE_TOPIC, data))).toEqual({ ok: true })
    expect(checkPresence(signed(b, PRESENCE_TOPIC, data))).toMatchObject({ ok: false, reason: 'malformed' })
    expect(checkPresence({ type: 'unsigned', topic: PRESENCE_TOPIC, data })).toMatchObject({ ok: false, reason: 'unsigned' })
  })

  it('rejects a discovery record for a key other than its author (a forged record)', async () => {
    const author = await peer()
    const victim = await peer()
    const addr = multiaddr('/ip4/10.1.2.3/tcp/22/ws').bytes
    const own = record(publicKeyToProtobuf(author.publicKey as never), [addr])
    const forged = record(publicKeyToProtobuf(victim.publicKey as never), [addr])
    expect(checkDiscovery(signed(author, DISCOVERY_TOPIC, own))).toEqual({ ok: true })
    expect(checkDiscovery(signed(author, DISCOVERY_TOPIC, forged))).toMatchObject({ ok: false, reason: 'forged' })
  })

  it('bounds discovery records: size, address count, fields, varints', async () => {
    const author = await peer()
    const key = publicKeyToProtobuf(author.publicKey as never)
    const addr = multiaddr('/ip4/1.2.3.4/tcp/1/ws').bytes
    expect(checkDiscovery(signed(author, DISCOVERY_TOPIC, new Uint8Array(GOSSIP_LIMITS.maxDiscoveryBytes + 1)))).toMatchObject({ reason: 'too-large' })
    const many = record(
      key,
      Array.from({ length: GOSSIP_LIMITS.maxDiscoveryAddrs + 1 }, () => addr)
    )
    expect(checkDiscovery(signed(author, DISCOVERY_TOPIC, many))).toMatchObject({ reason: 'malformed' })
    expect(() => decodeDiscoveryRecord(Uint8Array.from([10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]))).toThrow(/varint/)
    expect(() => decodeDiscoveryRecord(Uint8Array.from([10, 50, 1, 2]))).toThrow(/past the end/)
    expect(() => decodeDiscoveryRecord(Uint8Array.from([8, 1]))).toThrow(/wire type/)
    expect(decodeDiscoveryRecord(record(key, [addr, addr])).addrs).toHaveLength(2)
  })

  it('installs validators that reject, ignore blocked authors without penalty, and report', async () => {
    const topicValidators = new Map<string, (p: PeerId, m: Message) => TopicValidatorResult | Promise<TopicValidatorResult>>()
    const rejected: string[] = []
    const blocked = await peer()
    const honest = await peer()
    installGossipValidators({ topicValidators }, { isBlocked: (a) => a === blocked.toString(), onReject: (a, _t, v) => rejected.push(`${a}:${v.reason}`) })
    const validate = topicValidators.get(PRESENCE_TOPIC)
    expect(validate).toBeDefined()
    const big = new Uint8Array(MAX_PRESENCE_BYTES * 4)
    expect(await validate?.(honest, signed(honest, PRESENCE_TOPIC, big))).toBe(TopicValidatorResult.Reject)
    expect(await validate?.(honest, signed(blocked, PRESENCE_TOPIC, big))).toBe(TopicValidatorResult.Ignore)
    expect(rejected).toEqual([`${honest.toString()}:too-large`])
    expect(topicValidators.has(DISCOVERY_TOPIC)).toBe(true)
  })

  it("accepts an author's valid messages up to its rate per topic, then ignores them (not forwarded, no penalty to the relayer) and reports the author", async () => {
    const topicValidators = new Map<string, (p: PeerId, m: Message) => TopicValidatorResult | Promise<TopicValidatorResult>>()
    const over: string[] = []
    installGossipValidators({ topicValidators }, { onOverRate: (a, t) => over.push(`${a}:${t}`) })
    const validate = topicValidators.get(PRESENCE_TOPIC)!
    const [spammer, honest, relayer] = [await peer(), await peer(), await peer()]
    const presence = (from: PeerId): Message =>
      signed(
        from,
        PRESENCE_TOPIC,
        encodePresence({ v: 1, peerId: from.toString(), capabilities: [], donating: false, freeWorkers: 0, region: 'unknown', ts: 1 })
      )
    const rate = GOSSIP_RATES[PRESENCE_TOPIC]!
    const verdicts: TopicValidatorResult[] = []
    // Relayed by another peer: the limit follows the signed author, not who forwarded it.
    for (let i = 0; i < rate.messages + 5; i++) verdicts.push(await validate(relayer, presence(spammer)))
    expect(verdicts.filter((v) => v === TopicValidatorResult.Accept)).toHaveLength(rate.messages)
    expect(verdicts.slice(rate.messages)).toEqual(Array(5).fill(TopicValidatorResult.Ignore))
    expect(over).toEqual(Array(5).fill(`${spammer.toString()}:${PRESENCE_TOPIC}`))
    // Another author is not affected; nor is the discovery topic of the same author.
    expect(await validate(relayer, presence(honest))).toBe(TopicValidatorResult.Accept)
    const discovery = topicValidators.get(DISCOVERY_TOPIC)!
    expect(await discovery(relayer, signed(spammer, DISCOVERY_TOPIC, record(publicKeyToProtobuf(spammer.publicKey!), [])))).toBe(TopicValidatorResult.Accept)
    // An honest tab's cap (one presence every PRESENCE_MIN_SPACING_MS) fits the window with room to spare.
    expect((rate.windowS * 1000) / PRESENCE_MIN_SPACING_MS).toBeLessThanOrEqual(rate.messages * (2 / 3))
  })

  it('gives every topic score parameters that gossipsub accepts, where rejects sink a peer to the graylist', () => {
    const { scoreParams, scoreThresholds } = gossipScoring()
    const params = createPeerScoreParams(scoreParams)
    expect(() => validatePeerScoreParams(params)).not.toThrow()
    expect(() => validatePeerScoreThresholds(createPeerScoreThresholds(scoreThresholds))).not.toThrow()
    for (const topic of [PRESENCE_TOPIC, DISCOVERY_TOPIC]) {
      const t = params.topics[topic]
      expect(t).toBeDefined()
      if (t == null) continue
      // gossipsub's score of a topic's invalid deliveries: weight × topicWeight × count².
      const score = (n: number): number => t.invalidMessageDeliveriesWeight * t.topicWeight * n * n
      expect(score(2)).toBeLessThan(scoreThresholds.gossipThreshold)
      // Not before the strike policy's five (a tab blocks first), but soon after.
      expect(score(5)).toBeGreaterThan(scoreThresholds.graylistThreshold)
      expect(score(6)).toBeLessThan(scoreThresholds.graylistThreshold)
    }
  })
})

describe('size first, ahead of gossipsub (issue 11 item 9)', () => {
  /** A real gossipsub (not started: only its receiving side is used) with our validators. */
  async function receiver(hooks: Parameters<typeof installGossipValidators>[1]) {
    const privateKey = await generateKeyPair('Ed25519')
    const pubsub = gossipsub({ globalSignaturePolicy: 'StrictSign' })({
      peerId: peerIdFromPrivateKey(privateKey),
      privateKey,
      logger: defaultLogger()
    } as never)
    installGossipValidators(pubsub as never, hooks)
    const prevalidate = (pubsub as unknown as Required<ValidatingPubSub>).validateReceivedMessage
    return (source: PeerId, rpcMsg: ReceivedRpcMessage & Record<string, unknown>) => prevalidate(source, rpcMsg)
  }

  /** An RPC message claiming `author`, with a signature that fails any check. */
  const forgedRpc = (author: PeerId, topic: string, data: Uint8Array) => ({
    topic,
    data,
    from: author.toMultihash().bytes,
    seqno: new Uint8Array(8).fill(1),
    signature: new Uint8Array(64).fill(7)
  })

  it('refuses an oversized message on its size before gossipsub checks its signature, and reports its sender', async () => {
    const rejected: string[] = []
    const validate = await receiver({ onReject: (a, t, v) => rejected.push(`${a}|${t}|${v.reason}`) })
    const sender = await peer()
    const claimed = await peer()
    for (const [topic, max] of [
      [PRESENCE_TOPIC, MAX_PRESENCE_BYTES],
      [DISCOVERY_TOPIC, GOSSIP_LIMITS.maxDiscoveryBytes]
    ] as const) {
      // The signature is bad: refused as too-large (not as invalid_signature), nothing was verified first.
      const r = await validate(sender, forgedRpc(claimed, topic, new Uint8Array(max + 1)))
      expect(r).toEqual({ code: 'invalid', reason: 'reject' })
      // Within the size, gossipsub's own checks run as before: the bad signature is found.
      const within = await validate(sender, forgedRpc(claimed, topic, new Uint8Array(max)))
      expect(within).toMatchObject({ code: 'invalid', reason: 'error', error: 'invalid_signature' })
    }
    // The sender answers for it (its connection proves who it is), never the unproven `from`.
    expect(rejected).toEqual([`${sender}|${PRESENCE_TOPIC}|too-large`, `${sender}|${DISCOVERY_TOPIC}|too-large`])
  })

  it('reports nothing for a blocked sender and leaves other topics to gossipsub', async () => {
    const rejected: string[] = []
    const blocked = await peer()
    const validate = await receiver({ isBlocked: (a) => a === blocked.toString(), onReject: (a) => rejected.push(String(a)) })
    expect(await validate(blocked, forgedRpc(blocked, PRESENCE_TOPIC, new Uint8Array(MAX_PRESENCE_BYTES * 5)))).toEqual({ code: 'invalid', reason: 'reject' })
    expect(await validate(blocked, forgedRpc(blocked, 'another/topic', new Uint8Array(MAX_PRESENCE_BYTES * 5)))).toMatchObject({ error: 'invalid_signature' })
    expect(rejected).toEqual([])
  })

  it('is a no-op on a pubsub without gossipsub pre-validation (validators only)', () => {
    const pubsub: ValidatingPubSub = { topicValidators: new Map() }
    installGossipValidators(pubsub)
    expect(pubsub.validateReceivedMessage).toBeUndefined()
    // Presence, discovery and departure notices.
    expect([...pubsub.topicValidators.keys()].sort()).toEqual([DEPARTED_TOPIC, DISCOVERY_TOPIC, PRESENCE_TOPIC].sort())
  })
})
