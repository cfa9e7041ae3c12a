/**
 * The presence pull's codec, checks and bounds (issue 16): a record verifies exactly when
 * gossipsub's own StrictSign check would accept the message, a forged one strikes its sender,
 * a reply past the caps is refused, and a responder answers a few pulls per peer.
 */
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
// gossipsub's own signing and checking (not exported by the package): what a pulled record must agree with.
import { buildRawMessage, validateToRawMessage } from '../../../node_modules/@libp2p/gossipsub/dist/src/utils/buildRawMessage.js'
import { Counters, framed } from '../core/index.ts'
import { PRESENCE_PULL, PRESENCE_TOPIC } from './constants.ts'
import { encodePresence, type Presence } from './presence.ts'
import {
  type PullReply,
  PullPlanner,
  PullResponder,
  type PulledRecord,
  type SignedPresence,
  SignedPresenceStore,
  fromWire,
  presencePullProtocol,
  requestPull,
  takePulled,
  toWire,
  verifySignedPresence
} from './presence-pull.ts'
import { StrikePolicy } from './strikes.ts'

interface Author {
  key: PrivateKey
  id: PeerId
}

async function author(): Promise<Author> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key) }
}

function presence(id: PeerId | string, over: Partial<Presence> = {}): Uint8Array {
  return encodePresence({ v: 1, peerId: id.toString(), capabilities: [], donating: false, freeWorkers: 0, region: 'unknown', ts: Date.now(), ...over })
}

/** `data` published by `a` on `topic` as gossipsub signs it (StrictSign). */
async function published(a: Author, data: Uint8Array, topic = PRESENCE_TOPIC): Promise<SignedPresence> {
  const { raw } = await buildRawMessage({ type: 0, author: a.id, key: publicKeyToProtobuf(a.key.publicKey), privateKey: a.key } as never, topic, data, data)
  return { from: a.id.toString(), seqno: raw.seqno as Uint8Array, data: raw.data as Uint8Array, signature: raw.signature as Uint8Array, key: raw.key }
}

/** What gossipsub itself says of a record received as an RPC message. */
async function gossipsubAccepts(r: SignedPresence, topic = PRESENCE_TOPIC): Promise<boolean> {
  const res = await validateToRawMessage('StrictSign', {
    from: peerIdFromString(r.from).toMultihash().bytes,
    seqno: r.seqno,
    data: r.data,
    signature: r.signature,
    key: r.key,
    topic
  })
  return res.valid
}

async function rejection(p: Promise<unknown>): Promise<string> {
  return await p.then(
    () => 'accepted',
    (err: Error) => err.name
  )
}

describe('verifySignedPresence', () => {
  it("accepts a presence as gossipsub signed it, through the wire form, as gossipsub's own check does", async () => {
    const a = await author()
    const r = await published(a, presence(a.id, { donating: true, freeWorkers: 3 }))
    expect(await gossipsubAccepts(r)).toBe(true)
    const back = fromWire(toWire(r, 1200))
    expect(back.age).toBe(1200)
    const p = await verifySignedPresence(back)
    expect(p.peerId).toBe(a.id.toString())
    expect(p.donating).toBe(true)
    expect(p.freeWorkers).toBe(3)
  })

  it('refuses a presence of someone else signed by another key, as gossipsub does (no forging through the pull)', async () => {
    const a = await author()
    const mallory = await author()
    const honest = await published(a, presence(a.id))
    // Mallory signs A's presence under A's name with her own key, sending her key.
    const signedByMallory = await published(mallory, presence(a.id))
    const underAsName = { ...signedByMallory, from: a.id.toString() }
    expect(await gossipsubAccepts(underAsName)).toBe(false)
    expect(await rejection(verifySignedPresence(underAsName))).toBe('InvalidSignatureError')
    // The same without a key: A's peer id embeds A's key, which did not sign it.
    expect(await rejection(verifySignedPresence({ ...underAsName, key: undefined }))).toBe('InvalidSignatureError')
    // A's real signature over altered data (A now "donating").
    const altered = { ...honest, data: presence(a.id, { donating: true }) }
    expect(await gossipsubAccepts(altered)).toBe(false)
    expect(await rejection(verifySignedPresence(altered))).toBe('InvalidSignatureError')
    // Signed by Mallory under her own name but claiming to be A: the presence validator's rule.
    expect(await gossipsubAccepts(signedByMallory)).toBe(true)
    expect(await rejection(verifySignedPresence(signedByMallory))).toBe('InvalidFrameError')
    // A message A signed on another topic is no presence.
    const otherTopic = await published(a, presence(a.id), 'zerostate/other/1')
    expect(await rejection(verifySignedPresence(otherTopic))).toBe('InvalidSignatureError')
    // And the honest one still passes.
    expect((await verifySignedPresence(honest)).peerId).toBe(a.id.toString())
  })

  it('refuses an oversized presence before checking its signature, and a sequence number that is not 8 bytes', async () => {
    const a = await author()
    const big = await published(a, new Uint8Array(5000).fill(0x20))
    expect(await gossipsubAccepts(big)).toBe(true)
    expect(await rejection(verifySignedPresence(big))).toBe('FrameTooLargeError')
    const r = await published(a, presence(a.id))
    expect(await rejection(verifySignedPresence({ ...r, seqno: r.seqno.subarray(0, 4) }))).toBe('InvalidFrameError')
  })
})

/** A reply of `records` (ages in ms) that a responder holding `held` sent. */
function reply(records: Array<[SignedPresence, number]>, held = records.length): PullReply {
  return { records: records.map(([r, age]) => ({ ...r, age })), held }
}

function takeInto(accepted: Presence[], over: Partial<Parameters<typeof takePulled>[1]> = {}): Parameters<typeof takePulled>[1] {
  return {
    self: 'me',
    has: () => false,
    isBlocked: () => false,
    staleMs: (peers) => (peers > 8 ? 60_000 : 6000),
    known: 0,
    accept: (p) => {
      accepted.push(p)
      return true
    },
    onInvalid: () => {},
    ...over
  }
}

describe('takePulled', () => {
  it('strikes the responder for a forged record and drops the rest of its reply', async () => {
    const [a, c, d, mallory] = await Promise.all([author(), author(), author(), author()])
    const forged = { ...(await published(mallory, presence(c.id))), from: c.id.toString() }
    const counters = new Counters('mesh')
    const strikes = new StrikePolicy({ counters, hangUp: () => {} })
    const accepted: Presence[] = []
    const taken = await takePulled(
      reply([
        [await published(a, presence(a.id)), 10],
        [forged, 10],
        [await published(d, presence(d.id)), 10]
      ]),
      takeInto(accepted, { onInvalid: (err) => strikes.strike('responder', 'presence-pull', err.name), counters })
    )
    expect(taken).toBe(1)
    expect(accepted.map((p) => p.peerId)).toEqual([a.id.toString()])
    expect(counters.toRecord()['mesh.strikes.presence-pull.InvalidSignatureError']).toBe(1)
    expect(counters.toRecord()['mesh.presence.pull.invalid.InvalidSignatureError']).toBe(1)
  })

  it('sets aside presences past the staleness window (by the author clock or the responder age), without a strike', async () => {
    const [a, b, c] = await Promise.all([author(), author(), author()])
    const now = Date.now()
    const counters = new Counters('mesh')
    const accepted: Presence[] = []
    let invalid = 0
    const receivedAt: number[] = []
    const taken = await takePulled(
      // The responder holds 20: the window is that of a mesh of 20 here (60 s), not the asker's empty book's (6 s).
      reply(
        [
          [await published(a, presence(a.id, { ts: now - 30_000 })), 30_000],
          [await published(b, presence(b.id, { ts: now - 60_000 - 125_000 })), 1000],
          [await published(c, presence(c.id, { ts: now })), 60_000]
        ],
        20
      ),
      takeInto(accepted, {
        now: () => now,
        counters,
        onInvalid: () => invalid++,
        accept: (p, _r, at) => {
          accepted.push(p)
          receivedAt.push(at)
          return true
        }
      })
    )
    expect(taken).toBe(1)
    expect(accepted.map((p) => p.peerId)).toEqual([a.id.toString()])
    // Taken as received when the responder received it, not now.
    expect(receivedAt).toEqual([now - 30_000])
    expect(counters.toRecord()['mesh.presence.pull.stale']).toBe(2)
    expect(invalid).toBe(0)
  })

  it('skips our own presence, blocked authors and messages already held, unverified', async () => {
    const [a, b, c] = await Promise.all([author(), author(), author()])
    const ra = await published(a, presence(a.id))
    const rb = await published(b, presence(b.id))
    // Garbage signatures: were they verified, the reply would be refused.
    const bad = (r: SignedPresence): SignedPresence => ({ ...r, signature: new Uint8Array(64) })
    const rc = await published(c, presence(c.id))
    const accepted: Presence[] = []
    let invalid = 0
    await takePulled(
      reply([
        [bad(ra), 0],
        [bad(rb), 0],
        [bad(rc), 0]
      ]),
      takeInto(accepted, {
        self: a.id.toString(),
        isBlocked: (id) => id === b.id.toString(),
        has: (from, seqno) => from === c.id.toString() && seqno.every((x, i) => x === rc.seqno[i]),
        onInvalid: () => invalid++
      })
    )
    expect(accepted).toEqual([])
    expect(invalid).toBe(0)
  })
})

/** A fake record that passes the wire schema (not its signature). */
function fakeRecord(i: number, dataChars = 8): PulledRecord {
  return {
    from: `12D3KooW${String(i).replace(/0/g, 'z').padStart(44, 'A')}`,
    seqno: '0000000000000001',
    data: 'A'.repeat(dataChars),
    signature: 'A'.repeat(86),
    age: 0
  }
}

const conn = (id: PeerId): Connection => ({ remotePeer: id }) as Connection

/** An asker and a responder over one stream pair; `respond` plays the responder. */
async function pull(respond: (stream: Stream) => Promise<void>, onInvalid?: (err: Error) => void): Promise<PullReply> {
  const [a, b] = await streamPair()
  const asker = await author()
  // The responder's writes fail once the asker gives up: that is the point.
  respond(b).catch(() => {})
  return await requestPull({ dialProtocol: async () => a } as never, asker.id, { known: [], onInvalid })
}

describe('requestPull and PullResponder', () => {
  it('answers with what the store holds, donors first, without what the asker knows or itself, and says how many it holds', async () => {
    const [asker, a, b, c] = await Promise.all([author(), author(), author(), author()])
    const store = new SignedPresenceStore({ staleMs: () => 60_000 })
    for (const [x, donating] of [
      [a, false],
      [b, true],
      [c, false],
      [asker, false]
    ] as const)
      store.put(await published(x, presence(x.id, { donating })), { ts: Date.now(), donating })
    const responder = new PullResponder({ store, counters: new Counters('mesh') })
    const [s1, s2] = await streamPair()
    void responder.answer(s2, conn(asker.id))
    const got = await requestPull({ dialProtocol: async () => s1 } as never, asker.id, { known: [c.id.toString()] })
    expect(got.held).toBe(3)
    expect(got.records.map((r) => r.from)).toEqual([b.id.toString(), a.id.toString()])
    for (const r of got.records) expect((await verifySignedPresence(r)).peerId).toBe(r.from)
  })

  it('never sends more than PRESENCE_PULL.maxRecords records, nor one older than the staleness window', async () => {
    const store = new SignedPresenceStore({ staleMs: () => 60_000 })
    const now = Date.now()
    for (let i = 0; i < PRESENCE_PULL.maxRecords + 40; i++) store.put(fromWire(fakeRecord(i, 200)), { ts: now, donating: false }, now - 1000)
    store.put(fromWire(fakeRecord(9999)), { ts: now, donating: false }, now - 61_000)
    const { records, held } = store.select({ asker: 'someone', now })
    expect(records).toHaveLength(PRESENCE_PULL.maxRecords)
    expect(held).toBe(PRESENCE_PULL.maxRecords + 40)
    expect(records.some((r) => r.from === fakeRecord(9999).from)).toBe(false)
    // Through a stream, across several frames.
    const asker = await author()
    const responder = new PullResponder({ store })
    const [s1, s2] = await streamPair()
    void responder.answer(s2, conn(asker.id))
    const got = await requestPull({ dialProtocol: async () => s1 } as never, asker.id, { known: [] })
    expect(got.records).toHaveLength(PRESENCE_PULL.maxRecords)
  })

  it('keeps a record past the window while its author is alive (the relay: connected to it), and forgets it when not', async () => {
    const alive = new Set(['a'])
    const store = new SignedPresenceStore({ staleMs: () => 6000, alive: (id) => alive.has(id) })
    const now = Date.now()
    const rec = (from: string): SignedPresence => ({ ...fromWire(fakeRecord(1)), from })
    store.put(rec('a'), { ts: now, donating: false }, now - 60_000)
    store.put(rec('b'), { ts: now, donating: false }, now - 60_000)
    expect(store.select({ asker: 'x', now }).records.map((r) => r.from)).toEqual(['a'])
    alive.delete('a')
    expect(store.select({ asker: 'x', now }).held).toBe(0)
  })

  it('refuses a reply of more records than the cap, or more bytes, and tells onInvalid (a block at once)', async () => {
    const writeRecords = (frames: number, perFrame: number, dataChars: number) => async (stream: Stream) => {
      const f = framed(stream, presencePullProtocol)
      await f.read()
      for (let n = 0; n < frames; n++)
        await f.write({ type: 'records', records: Array.from({ length: perFrame }, (_, i) => fakeRecord(n * perFrame + i, dataChars)) })
      await f.write({ type: 'end', held: frames * perFrame })
    }
    const seen: string[] = []
    // 5 × 64 small records: 320 > 256.
    expect(await rejection(pull(writeRecords(5, 64, 8), (err) => seen.push(err.name)))).toBe('FrameTooLargeError')
    // 16 frames of 6 records of 5,400 characters: ~530 KB > 512 KB, under the record cap.
    expect(await rejection(pull(writeRecords(16, 6, 5400), (err) => seen.push(err.name)))).toBe('FrameTooLargeError')
    expect(seen).toEqual(['FrameTooLargeError', 'FrameTooLargeError'])
    // A frame that is no reply at all.
    const ask = async (stream: Stream) => {
      const f = framed(stream, presencePullProtocol)
      await f.read()
      await f.write({ type: 'pull', known: [] })
    }
    expect(await rejection(pull(ask, (err) => seen.push(err.name)))).toBe('InvalidFrameError')
  })

  it('answers PRESENCE_PULL.perPeer pulls per peer per window: more are refused, counted and struck; other peers are still answered', async () => {
    const [greedy, other, a] = await Promise.all([author(), author(), author()])
    const store = new SignedPresenceStore({ staleMs: () => 60_000 })
    store.put(await published(a, presence(a.id)), { ts: Date.now(), donating: false })
    const counters = new Counters('mesh')
    const strikes = new StrikePolicy({ counters, hangUp: () => {} })
    const responder = new PullResponder({ store, counters, strikes })
    const once = async (who: Author): Promise<string> => {
      const [s1, s2] = await streamPair()
      void responder.answer(s2, conn(who.id))
      return await requestPull({ dialProtocol: async () => s1 } as never, who.id, { known: [] }).then(
        (r) => `got ${r.records.length}`,
        (err: Error) => err.name
      )
    }
    for (let i = 0; i < PRESENCE_PULL.perPeer; i++) expect(await once(greedy)).toBe('got 1')
    expect(await once(greedy)).not.toBe('got 1')
    expect(await once(other)).toBe('got 1')
    const c = counters.toRecord()
    expect(c['mesh.presence.pull.refused']).toBe(1)
    expect(c['mesh.strikes.presence-pull.OverBudgetError']).toBe(1)
    expect(c['mesh.presence.pull.answered']).toBe(PRESENCE_PULL.perPeer + 1)
  })
})

describe('PullPlanner', () => {
  it('pulls from a relay and the first links, later only when far behind a claim, within its budget', () => {
    let now = 0
    const plan = new PullPlanner({ now: () => now })
    expect(plan.relay('relay')).toBe(true)
    expect(plan.link('p1', 0)).toBe(true)
    plan.answered(40)
    // The first two links pull whatever is known (their replies leave it out).
    expect(plan.link('p2', 39)).toBe(true)
    // Later links only while fewer than half of the 40 held are known.
    expect(plan.link('p3', 39)).toBe(false)
    expect(plan.link('p4', 10)).toBe(true)
    expect(plan.link('p5', 10)).toBe(true)
    expect(plan.relay('relay')).toBe(true)
    // Six asks in the window: no more, from anyone.
    expect(plan.link('p6', 0)).toBe(false)
    now += PRESENCE_PULL.windowS * 1000
    expect(plan.relay('relay')).toBe(true)
    expect(plan.relay('relay')).toBe(true)
    // At most twice from one peer per window.
    expect(plan.relay('relay')).toBe(false)
  })
})
