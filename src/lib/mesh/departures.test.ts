import { generateKeyPair } from '@libp2p/crypto/keys'
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { DEPARTED_TOPIC, DEPARTURES } from './constants.ts'
import { DepartureBatcher, decodeDeparture, encodeDeparture } from './departures.ts'
import { FrameTooLargeError, InvalidFrameError } from './errors.ts'
import { checkDeparture, gossipStrikeProtocol, installGossipValidators } from './gossip-validators.ts'
import { PeerBook } from './peer-book.ts'
import type { Presence } from './presence.ts'

async function peer(): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

function signed(from: PeerId, data: Uint8Array): Message {
  return { type: 'signed', from, topic: DEPARTED_TOPIC, data, sequenceNumber: 1n, signature: new Uint8Array(64), key: from.publicKey as never }
}

const id = (n: number): string => `12D3KooW${String(n).padStart(44, 'x')}`
const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))

describe('departure notices', () => {
  it('round-trip, and ignore fields a later version may add', () => {
    const n = { v: 1 as const, peers: [id(1), id(2)], ts: 5 }
    expect(decodeDeparture(encodeDeparture(n))).toEqual(n)
    expect(decodeDeparture(json({ ...n, reason: 'closed' }))).toEqual(n)
  })

  it('refuse what is not one, with a typed error: too large (before parsing), not JSON, no peers, too many, a bad id', () => {
    expect(() => decodeDeparture(new Uint8Array(DEPARTURES.maxBytes + 1).fill(0x7b))).toThrow(FrameTooLargeError)
    expect(() => decodeDeparture(Uint8Array.of(0xff, 0xfe))).toThrow(InvalidFrameError)
    expect(() => decodeDeparture(json({ v: 1, peers: [], ts: 1 }))).toThrow(/schema/)
    expect(() => decodeDeparture(json({ v: 1, peers: Array.from({ length: DEPARTURES.maxPeers + 1 }, (_, i) => id(i)), ts: 1 }))).toThrow(InvalidFrameError)
    expect(() => decodeDeparture(json({ v: 1, peers: ['short'], ts: 1 }))).toThrow(InvalidFrameError)
    expect(() => decodeDeparture(json({ v: 2, peers: [id(1)], ts: 1 }))).toThrow(InvalidFrameError)
    // A full notice of the longest ids fits the size cap.
    const full = encodeDeparture({ v: 1, peers: Array.from({ length: DEPARTURES.maxPeers }, (_, i) => id(i).padEnd(128, 'y')), ts: Date.now() })
    expect(full.byteLength).toBeLessThanOrEqual(DEPARTURES.maxBytes)
  })
})

describe('the relay side: DepartureBatcher', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('gathers the peers that left for flushMs into one notice, splits past maxPeers, and leaves out one that came back', async () => {
    vi.useFakeTimers()
    const sent: string[][] = []
    const b = new DepartureBatcher(async (data) => sent.push(decodeDeparture(data).peers), { flushMs: 1000, maxPeers: 3 })
    for (let i = 1; i <= 5; i++) b.left(id(i))
    b.returned(id(2))
    await vi.advanceTimersByTimeAsync(999)
    expect(sent).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(sent).toEqual([[id(1), id(3), id(4)], [id(5)]])
    expect(b.stats).toMatchObject({ notices: 2, peers: 4 })
    // A new departure starts a new window.
    b.left(id(6))
    await vi.advanceTimersByTimeAsync(1000)
    expect(sent.at(-1)).toEqual([id(6)])
  })

  it('sends nothing after stop (a relay shutting down closes every link: those peers did not leave), and counts a failed publish', async () => {
    vi.useFakeTimers()
    let calls = 0
    const b = new DepartureBatcher(
      async () => {
        calls++
        throw new Error('no peers subscribed')
      },
      { flushMs: 100 }
    )
    b.left(id(1))
    await vi.advanceTimersByTimeAsync(100)
    expect(calls).toBe(1)
    expect(b.stats.failed).toBe(1)
    b.left(id(2))
    b.stop()
    b.left(id(3))
    await vi.advanceTimersByTimeAsync(1000)
    expect(calls).toBe(1)
  })
})

describe('the validator: only a known relay may say who left', () => {
  it('takes a relay notice, refuses a non-relay author that sent it itself, ignores one forwarded (the forwarder is not blamed)', async () => {
    const [relay, tab, other] = [await peer(), await peer(), await peer()]
    const isRelay = (a: string): boolean => a === relay.toString()
    const good = encodeDeparture({ v: 1, peers: [id(1)], ts: 1 })
    expect(checkDeparture(signed(relay, good), other.toString(), isRelay)).toEqual({ ok: true })
    expect(checkDeparture(signed(tab, good), tab.toString(), isRelay)).toMatchObject({ ok: false, reason: 'forged' })
    expect(checkDeparture(signed(tab, good), other.toString(), isRelay)).toEqual({ ok: 'ignore', reason: 'not-relay' })
    expect(checkDeparture(signed(relay, json({ v: 1, peers: 'all', ts: 1 })), relay.toString(), isRelay)).toMatchObject({ ok: false, reason: 'malformed' })
    expect(checkDeparture(signed(relay, new Uint8Array(DEPARTURES.maxBytes + 1)), relay.toString(), isRelay)).toMatchObject({ ok: false, reason: 'too-large' })
    expect(checkDeparture({ type: 'unsigned', topic: DEPARTED_TOPIC, data: good }, relay.toString(), isRelay)).toMatchObject({ ok: false, reason: 'unsigned' })
    expect(gossipStrikeProtocol(DEPARTED_TOPIC)).toBe('departed')
  })

  it('installed: Accept, Reject with the author struck, or Ignore counted; without known relays nothing is accepted', async () => {
    const [relay, tab, forwarder] = [await peer(), await peer(), await peer()]
    const topicValidators = new Map<string, (p: PeerId, m: Message) => TopicValidatorResult | Promise<TopicValidatorResult>>()
    const rejected: string[] = []
    const ignored: string[] = []
    installGossipValidators(
      { topicValidators },
      {
        isRelay: (a) => a === relay.toString(),
        onReject: (a, t, v) => rejected.push(`${a}:${gossipStrikeProtocol(t)}:${v.reason}`),
        onIgnore: (a, t, r) => ignored.push(`${a}:${gossipStrikeProtocol(t)}:${r}`)
      }
    )
    const validate = topicValidators.get(DEPARTED_TOPIC)!
    const good = encodeDeparture({ v: 1, peers: [id(1)], ts: 1 })
    expect(await validate(forwarder, signed(relay, good))).toBe(TopicValidatorResult.Accept)
    expect(await validate(tab, signed(tab, good))).toBe(TopicValidatorResult.Reject)
    expect(await validate(forwarder, signed(tab, good))).toBe(TopicValidatorResult.Ignore)
    expect(rejected).toEqual([`${tab.toString()}:departed:forged`])
    expect(ignored).toEqual([`${tab.toString()}:departed:not-relay`])

    const none = new Map<string, (p: PeerId, m: Message) => TopicValidatorResult | Promise<TopicValidatorResult>>()
    installGossipValidators({ topicValidators: none })
    expect(await none.get(DEPARTED_TOPIC)!(forwarder, signed(relay, good))).toBe(TopicValidatorResult.Ignore)
  })
})

describe('PeerBook.depart', () => {
  const presence = (peerId: string, ts: number): Presence => ({ v: 1, peerId, capabilities: [], donating: false, freeWorkers: 0, region: 'unknown', ts })

  it('forgets a departed peer, refuses its same or older presence arriving late, and takes a newer one (it came back)', () => {
    const book = new PeerBook({ staleMs: 60_000 })
    expect(book.depart(id(1), 1000)).toBe(false) // nothing known: nothing to forget
    book.updatePresence(presence(id(1), 500), 1000)
    expect(book.depart(id(1), 2000)).toBe(true)
    expect(book.presenceOf(id(1), 2000)).toBeUndefined()
    // A neighbour's cache or a pull brings the last presence back: it stays gone.
    expect(book.updatePresence(presence(id(1), 500), 2100)).toBe(false)
    expect(book.updatePresence(presence(id(1), 400), 2100)).toBe(false)
    expect(book.presenceOf(id(1), 2100)).toBeUndefined()
    // Its next announcement: back.
    expect(book.updatePresence(presence(id(1), 501), 2200)).toBe(true)
    expect(book.presenceOf(id(1), 2200)?.ts).toBe(501)
  })
})
