/**
 * The presence pull (issue 16): a peer that joins asks its relay and its first direct links
 * for the presences they hold, instead of hearing each member only at its next periodic
 * re-announcement (presenceIntervalMs: ~44 s apart at 50 peers, ~94 s at 100; the simulator's
 * newcomer took 47 s to hold every presence at 50).
 *
 * `/zerostate/presence-pull/1.0.0`: the asker writes `{ type: 'pull', known }` (the peer ids
 * whose presence it holds); the responder writes `{ type: 'records', records }` frames and
 * `{ type: 'end', held }` (how many presences it holds), then closes. Each record is a
 * presence as its author published it on PRESENCE_TOPIC: the gossipsub message's author,
 * sequence number, data, signature and key, so the asker checks the author's signature as
 * gossipsub's StrictSign does (the library's message codec and @libp2p/crypto's key, over
 * `libp2p-pubsub:` + the message without signature and key). A responder cannot forge or
 * alter anyone's presence, only withhold some or replay one already published; replays are
 * bounded by the staleness window (the author's `ts`) and by the peer book's rule that an
 * older presence never replaces a newer one.
 *
 * Bounds (issue 11): a reply holds at most PRESENCE_PULL.maxRecords records and
 * maxReplyBytes (a responder stops there; an asker that gets more blocks the sender), a pull
 * has a deadline at both ends (PRESENCE_PULL.timeoutMs), a responder answers a few pulls per peer per minute
 * (PeerBudget: more are refused, counted and struck) and a few dozen in all, and an asker
 * asks each peer at most twice a minute. A record that fails its checks strikes the peer
 * that sent it, and the rest of its reply is dropped.
 */
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { SignedMessage } from '@libp2p/gossipsub'
import { RPC } from '@libp2p/gossipsub/message'
import type { Connection, Libp2p, PeerId, PublicKey, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { RateLimiter } from '@libp2p/utils'
import { concat, fromString, toString as bytesToString } from 'uint8arrays'
import * as v from 'valibot'
import { type Counters, defineProtocol, framed } from '../core/index.ts'
import { OverBudgetError, PeerBudget } from './budgets.ts'
import { MAX_PRESENCE_BYTES, PRESENCE_PULL, PRESENCE_TOPIC } from './constants.ts'
import { FrameTooLargeError, InvalidFrameError, InvalidSignatureError } from './errors.ts'
import { checkGossipSize } from './gossip-validators.ts'
import { CLOCK_STEP_MS } from './peer-book.ts'
import { decodePresence, type Presence } from './presence.ts'
import type { StrikeSink } from './strikes.ts'

export const PRESENCE_PULL_PROTOCOL_ID = '/zerostate/presence-pull/1.0.0'
/** What strikes and budget refusals of this protocol are counted under (`strikes.presence-pull.<reason>`). */
export const PRESENCE_PULL_STRIKES = 'presence-pull'

/** gossipsub's signature prefix (its `SignPrefix`, not exported by the package): a signature covers `libp2p-pubsub:` + the message. */
const SIGN_PREFIX = fromString('libp2p-pubsub:')
/** Records per frame at most (each ≤ ~5.8 KB as JSON: a 4 KB presence in base64 and its signature). */
const RECORDS_PER_FRAME = 64
/** Bytes of records a responder puts in one frame before starting another (the frame cap is PRESENCE_PULL.frameBytes). */
const FRAME_FILL_BYTES = 40 * 1024

/** A peer id as text (base58btc); checked again by peerIdFromString. */
const PeerIdText = v.pipe(v.string(), v.minLength(16), v.maxLength(128), v.regex(/^[1-9A-HJ-NP-Za-km-z]+$/))
/** Unpadded base64 (uint8arrays' `base64`), at most `max` characters. */
const Base64 = (max: number) => v.pipe(v.string(), v.maxLength(max), v.regex(/^[A-Za-z0-9+/]*$/))

/** One presence as its author signed it, on the wire. `age`: ms since the responder received it. */
export const PulledRecordSchema = v.strictObject({
  from: PeerIdText,
  seqno: v.pipe(v.string(), v.regex(/^[0-9a-f]{16}$/)),
  data: Base64(Math.ceil((MAX_PRESENCE_BYTES * 4) / 3)),
  signature: Base64(1024),
  key: v.optional(Base64(1024)),
  age: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(2 ** 31))
})
export type PulledRecord = v.InferOutput<typeof PulledRecordSchema>

/** The protocol's messages: the ask, records, and the end of the reply. */
export const PullMessageSchema = v.variant('type', [
  v.strictObject({ type: v.literal('pull'), known: v.pipe(v.array(PeerIdText), v.maxLength(PRESENCE_PULL.maxRecords)) }),
  v.strictObject({ type: v.literal('records'), records: v.pipe(v.array(PulledRecordSchema), v.maxLength(RECORDS_PER_FRAME)) }),
  v.strictObject({ type: v.literal('end'), held: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1_000_000)) })
])
export type PullMessage = v.InferOutput<typeof PullMessageSchema>

export const presencePullProtocol = defineProtocol(PRESENCE_PULL_PROTOCOL_ID, PullMessageSchema, { maxFrameBytes: PRESENCE_PULL.frameBytes })

/** A presence message as its author published it (the fields its signature covers, and the signature). */
export interface SignedPresence {
  /** The author's peer id. */
  from: string
  /** gossipsub's 8-byte sequence number. */
  seqno: Uint8Array
  data: Uint8Array
  signature: Uint8Array
  /** The author's public key (protobuf), as gossipsub sends it. */
  key?: Uint8Array
}

/** The bytes a record counts for against PRESENCE_PULL.maxReplyBytes (its fields as sent, and room for the JSON around them). */
export function recordWireBytes(r: PulledRecord): number {
  return r.from.length + r.seqno.length + r.data.length + r.signature.length + (r.key?.length ?? 0) + 80
}

function seqnoBytes(n: bigint): Uint8Array {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, n), false)
  return out
}

/** A gossiped presence as this peer received it (gossipsub checked its signature), kept to answer pulls. */
export function signedPresenceOf(msg: SignedMessage): SignedPresence {
  return { from: msg.from.toString(), seqno: seqnoBytes(msg.sequenceNumber), data: msg.data, signature: msg.signature, key: publicKeyToProtobuf(msg.key) }
}

/** A record for the wire. */
export function toWire(r: SignedPresence, age: number): PulledRecord {
  return {
    from: r.from,
    seqno: bytesToString(r.seqno, 'base16'),
    data: bytesToString(r.data, 'base64'),
    signature: bytesToString(r.signature, 'base64'),
    ...(r.key != null ? { key: bytesToString(r.key, 'base64') } : {}),
    age: Math.max(0, Math.round(age))
  }
}

/** A record off the wire (its schema already checked). Throws InvalidFrameError on base64 that does not decode. */
export function fromWire(r: PulledRecord): SignedPresence & { age: number } {
  try {
    return {
      from: r.from,
      seqno: fromString(r.seqno, 'base16'),
      data: fromString(r.data, 'base64'),
      signature: fromString(r.signature, 'base64'),
      ...(r.key != null ? { key: fromString(r.key, 'base64') } : {}),
      age: r.age
    }
  } catch (err) {
    throw new InvalidFrameError(`a pulled presence of ${r.from} is not valid base64`, { cause: err })
  }
}

/**
 * Check a pulled record as gossipsub (StrictSign) and the presence validator check a gossiped
 * presence: size first, then the author's signature over the message (the key must be the
 * author's), then the presence itself (schema, claimed peer id = author). Throws
 * FrameTooLargeError, InvalidSignatureError or InvalidFrameError; returns the presence.
 */
export async function verifySignedPresence(r: SignedPresence): Promise<Presence> {
  const size = checkGossipSize(PRESENCE_TOPIC, r.data.byteLength)
  if (!size.ok) throw new FrameTooLargeError(size.message)
  if (r.seqno.byteLength !== 8) throw new InvalidFrameError(`a pulled presence of ${r.from} has a sequence number of ${r.seqno.byteLength} bytes, not 8`)
  let author: PeerId
  try {
    author = peerIdFromString(r.from)
  } catch (err) {
    throw new InvalidFrameError(`a pulled presence names an author that is no peer id: ${r.from}`, { cause: err })
  }
  let key: PublicKey | undefined
  if (r.key != null) {
    try {
      key = publicKeyFromProtobuf(r.key)
    } catch (err) {
      throw new InvalidSignatureError(`a pulled presence of ${r.from} carries a key that does not parse`, { cause: err })
    }
    if (!author.equals(key.toMultihash().bytes)) throw new InvalidSignatureError(`a pulled presence of ${r.from} carries another peer's key`)
  } else key = author.publicKey
  if (key == null) throw new InvalidSignatureError(`a pulled presence of ${r.from} carries no key, and its peer id embeds none`)
  const signed = concat([
    SIGN_PREFIX,
    RPC.Message.encode({ from: author.toMultihash().bytes, data: r.data, seqno: r.seqno, topic: PRESENCE_TOPIC, signature: undefined, key: undefined })
  ])
  let valid = false
  try {
    valid = await key.verify(signed, r.signature)
  } catch {
    valid = false
  }
  if (!valid) throw new InvalidSignatureError(`a pulled presence of ${r.from} does not carry its author's signature`)
  return decodePresence(r.data, r.from)
}

interface Held {
  record: SignedPresence
  ts: number
  donating: boolean
  receivedAt: number
}

/**
 * The presences this peer can answer pulls with, as their authors signed them: the newest of
 * each author, at most `max` authors, each for as long as the peer book keeps its presence
 * (`staleMs` after it was received), or while `alive` says its author is (the relay: connected to it).
 */
export class SignedPresenceStore {
  readonly #held = new Map<string, Held>()
  readonly #staleMs: () => number
  readonly #alive: (author: string) => boolean
  readonly #max: number

  constructor(opts: { staleMs: () => number; alive?: (author: string) => boolean; max?: number }) {
    this.#staleMs = opts.staleMs
    this.#alive = opts.alive ?? (() => false)
    this.#max = opts.max ?? 4096
  }

  get size(): number {
    return this.#held.size
  }

  /** Keep `record` (its presence `p`, checked), unless an newer one of its author is held. */
  put(record: SignedPresence, p: Pick<Presence, 'ts' | 'donating'>, receivedAt = Date.now()): void {
    const old = this.#held.get(record.from)
    // As PeerBook.isOutdated: older is kept out unless the author's clock stepped back.
    if (old != null && p.ts < old.ts && old.ts - p.ts < CLOCK_STEP_MS) return
    if (old == null && this.#held.size >= this.#max) {
      this.#prune(Date.now())
      if (this.#held.size >= this.#max) return
    }
    this.#held.set(record.from, { record, ts: p.ts, donating: p.donating, receivedAt })
  }

  /** Whether this very message (author and sequence number) is held. */
  has(from: string, seqno: Uint8Array): boolean {
    const h = this.#held.get(from)?.record.seqno
    return h != null && h.byteLength === seqno.byteLength && h.every((b, i) => b === seqno[i])
  }

  delete(peerId: string): void {
    this.#held.delete(peerId)
  }

  #prune(now: number): void {
    const stale = this.#staleMs()
    for (const [id, h] of this.#held) if (now - h.receivedAt >= stale && !this.#alive(id)) this.#held.delete(id)
  }

  /**
   * What to answer `asker` with: the fresh records of authors other than the asker, those in
   * `known` and those `skip` names, donors first (a newcomer's tasks need them), then the most
   * recently received, within PRESENCE_PULL.maxRecords and maxReplyBytes. `held`: fresh records
   * held of authors other than the asker (what the asker may compare with what it knows).
   */
  select(opts: { asker: string; known?: ReadonlySet<string>; skip?: (author: string) => boolean; now?: number }): { records: PulledRecord[]; held: number } {
    const now = opts.now ?? Date.now()
    const stale = this.#staleMs()
    const fresh: Held[] = []
    let held = 0
    for (const h of this.#held.values()) {
      if ((now - h.receivedAt >= stale && !this.#alive(h.record.from)) || h.record.from === opts.asker) continue
      held++
      if (opts.known?.has(h.record.from) === true || opts.skip?.(h.record.from) === true) continue
      fresh.push(h)
    }
    fresh.sort((a, b) => Number(b.donating) - Number(a.donating) || b.receivedAt - a.receivedAt)
    const records: PulledRecord[] = []
    let bytes = 0
    for (const h of fresh) {
      if (records.length >= PRESENCE_PULL.maxRecords) break
      const r = toWire(h.record, now - h.receivedAt)
      const size = recordWireBytes(r)
      if (bytes + size > PRESENCE_PULL.maxReplyBytes) break
      bytes += size
      records.push(r)
    }
    return { records, held }
  }
}

/** What a responder reports to. */
export interface PullResponderComponents {
  store: SignedPresenceStore
  strikes?: StrikeSink
  counters?: Counters
  /** Askers refused outright, and authors left out of replies (blocked peers). */
  isBlocked?: (peer: string) => boolean
}

/**
 * Answers pulls from `store` (a tab's MeshNode, the relay). Each peer may pull
 * PRESENCE_PULL.perPeer times per window and everyone together PRESENCE_PULL.total; more
 * are refused (the stream reset) and counted as `presence.pull.refused`, a peer's own excess
 * struck as OverBudgetError (an honest asker asks a peer at most twice per window).
 */
export class PullResponder {
  readonly #c: PullResponderComponents
  readonly #budget: PeerBudget
  readonly #total: RateLimiter

  /** `total`: pulls answered per window from everyone (default PRESENCE_PULL.total; the relay answers every newcomer). */
  constructor(components: PullResponderComponents, init: { total?: number } = {}) {
    this.#c = components
    this.#budget = new PeerBudget(
      PRESENCE_PULL_STRIKES,
      { strikes: components.strikes, counters: components.counters },
      { requests: PRESENCE_PULL.perPeer, bytes: PRESENCE_PULL.perPeer * PRESENCE_PULL.maxReplyBytes, windowS: PRESENCE_PULL.windowS }
    )
    this.#total = new RateLimiter({ points: init.total ?? PRESENCE_PULL.total, duration: PRESENCE_PULL.windowS, keyPrefix: 'presence-pull:all' })
  }

  /** Answer one pull stream (a libp2p protocol handler). Never throws. */
  async answer(stream: Stream, connection: Connection): Promise<void> {
    const asker = connection.remotePeer.toString()
    const counters = this.#c.counters
    const refuse = (err: Error): void => {
      counters?.inc('presence.pull.refused')
      stream.abort(err)
    }
    if (this.#c.isBlocked?.(asker) === true) return refuse(new OverBudgetError(`${asker} is blocked`))
    const over = this.#budget.request(asker)
    if (over != null) return refuse(over)
    try {
      this.#total.consume('all')
    } catch {
      return refuse(new OverBudgetError('this peer answers no more presence pulls for now; try again later'))
    }
    const signal = AbortSignal.timeout(PRESENCE_PULL.timeoutMs)
    const f = framed(stream, presencePullProtocol, {
      frameTimeoutMs: PRESENCE_PULL.timeoutMs,
      onInvalid: (err) => this.#c.strikes?.strike(asker, PRESENCE_PULL_STRIKES, err.name)
    })
    try {
      const ask = await f.read({ signal })
      if (ask.type !== 'pull') {
        const err = new InvalidFrameError(`a presence pull must begin with a pull, not ${ask.type}`)
        this.#c.strikes?.strike(asker, PRESENCE_PULL_STRIKES, err.name)
        throw err
      }
      const { records, held } = this.#c.store.select({ asker, known: new Set(ask.known), skip: this.#c.isBlocked })
      let batch: PulledRecord[] = []
      let bytes = 0
      for (const r of records) {
        const size = recordWireBytes(r)
        if (batch.length > 0 && (batch.length >= RECORDS_PER_FRAME || bytes + size > FRAME_FILL_BYTES)) {
          await f.write({ type: 'records', records: batch }, { signal })
          batch = []
          bytes = 0
        }
        batch.push(r)
        bytes += size
      }
      if (batch.length > 0) await f.write({ type: 'records', records: batch }, { signal })
      await f.write({ type: 'end', held }, { signal })
      counters?.inc('presence.pull.answered')
      counters?.inc('presence.pull.sent', records.length)
      await stream.close({ signal })
    } catch (err) {
      counters?.inc('presence.pull.answerFailed')
      stream.abort(err as Error)
    }
  }
}

/** A reply to a pull: its records (schema checked, not yet verified) and how many presences the responder said it held. */
export interface PullReply {
  records: Array<SignedPresence & { age: number }>
  held: number
}

/**
 * Pull from `peer` (connected): ask, read the reply within PRESENCE_PULL's caps and deadline.
 * `known`: the peer ids whose presence we hold (the responder leaves them out). A reply over
 * the caps, a frame that breaks the schema or the framing, or an ask answered by anything
 * but records and an end, throw an InvalidFrameError subclass, told to `onInvalid` first
 * (the caller strikes the responder). Records are checked later, one by one
 * ({@link verifySignedPresence}).
 */
export async function requestPull(
  node: Pick<Libp2p, 'dialProtocol'>,
  peer: PeerId,
  opts: { known: Iterable<string>; signal?: AbortSignal; onInvalid?: (err: InvalidFrameError) => void }
): Promise<PullReply> {
  const deadline = AbortSignal.timeout(PRESENCE_PULL.timeoutMs)
  const signal = opts.signal == null ? deadline : AbortSignal.any([opts.signal, deadline])
  const invalid = (err: InvalidFrameError): InvalidFrameError => {
    opts.onInvalid?.(err)
    return err
  }
  const stream = await node.dialProtocol(peer, PRESENCE_PULL_PROTOCOL_ID, { signal })
  const f = framed(stream, presencePullProtocol, { frameTimeoutMs: PRESENCE_PULL.timeoutMs, onInvalid: opts.onInvalid })
  try {
    const known: string[] = []
    for (const id of opts.known) {
      if (known.length >= PRESENCE_PULL.maxRecords) break
      known.push(id)
    }
    await f.write({ type: 'pull', known }, { signal })
    const records: PullReply['records'] = []
    let bytes = 0
    for (;;) {
      const m = await f.read({ signal })
      if (m.type === 'end') return { records, held: m.held }
      if (m.type !== 'records') throw invalid(new InvalidFrameError(`a presence pull was answered with ${m.type}`))
      if (records.length + m.records.length > PRESENCE_PULL.maxRecords)
        throw invalid(new FrameTooLargeError(`a presence pull reply holds more than ${PRESENCE_PULL.maxRecords} records`))
      for (const r of m.records) {
        bytes += recordWireBytes(r)
        if (bytes > PRESENCE_PULL.maxReplyBytes) throw invalid(new FrameTooLargeError(`a presence pull reply runs past ${PRESENCE_PULL.maxReplyBytes} bytes`))
        try {
          records.push(fromWire(r))
        } catch (err) {
          throw invalid(err as InvalidFrameError)
        }
      }
    }
  } finally {
    if (stream.status === 'open') stream.abort(new Error('presence pull: done'))
  }
}

/** What {@link takePulled} needs from the asker. */
export interface TakePulledInit {
  /** The asker's own peer id (its own presence is never taken from a reply). */
  self: string
  /** Whether this very message (author and sequence number) is held already: skipped unverified. */
  has(from: string, seqno: Uint8Array): boolean
  /** Authors whose records are skipped (blocked peers). */
  isBlocked(author: string): boolean
  /** The staleness window in a mesh of `peers` (3 re-announcement intervals). */
  staleMs(peers: number): number
  /** Presences the asker holds: with the responder's `held`, the mesh size the window is judged by. */
  known: number
  /** Take a verified presence as a gossiped one (received `receivedAt`); false if it was outdated. */
  accept(p: Presence, record: SignedPresence, receivedAt: number): boolean
  /** A record failed its checks (strike its sender): the rest of the reply is dropped. */
  onInvalid(err: Error): void
  counters?: Counters
  now?: () => number
}

/**
 * Take a pull's records one by one: skip our own, blocked authors' and those already held;
 * verify the rest ({@link verifySignedPresence}); set aside (counted `presence.pull.stale`)
 * any older than the staleness window by its author's clock, with CLOCK_STEP_MS of leeway,
 * or by the responder's age; hand the others to `accept`. The first record that fails its
 * checks goes to `onInvalid` and ends the reply. Returns how many were taken.
 */
export async function takePulled(reply: PullReply, init: TakePulledInit): Promise<number> {
  // The window of the mesh the responder sees: a newcomer's own book is near empty (at 100
  // peers presences are ~94 s apart, not its 2 s); at most PRESENCE_MAX_INTERVAL_MS × 3.
  const staleMs = init.staleMs(Math.max(init.known, reply.held))
  let taken = 0
  for (const r of reply.records) {
    if (r.from === init.self || init.isBlocked(r.from) || init.has(r.from, r.seqno)) continue
    let p: Presence
    try {
      p = await verifySignedPresence(r)
    } catch (err) {
      init.counters?.inc(`presence.pull.invalid.${(err as Error).name}`)
      init.onInvalid(err as Error)
      break
    }
    const now = (init.now ?? Date.now)()
    if (now - p.ts > staleMs + CLOCK_STEP_MS || r.age >= staleMs) {
      init.counters?.inc('presence.pull.stale')
      continue
    }
    // The responder's `age` only makes a presence older than now, and within the window.
    if (init.accept(p, r, now - r.age)) taken++
  }
  return taken
}

/**
 * When an asker pulls (issue 16): from a relay as it connects, from its first
 * PRESENCE_PULL.firstLinks direct links (what the relay missed or held as stale: a reply
 * leaves out what the asker knows, so it is small when the relay's was whole), and from any
 * later link while it knows fewer than half the presences a responder said it held; never more
 * than PRESENCE_PULL.asksPerWindow times per window, nor more than twice from one peer (a
 * responder answers PRESENCE_PULL.perPeer).
 */
export class PullPlanner {
  readonly #now: () => number
  #asks: Array<{ peer: string; at: number }> = []
  #links = 0
  #claimed = 0

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now
  }

  /** Whether to pull from a relay that just connected. */
  relay(peer: string): boolean {
    return this.#take(peer)
  }

  /** Whether to pull from a new direct link to `peer`, holding `known` presences. */
  link(peer: string, known: number): boolean {
    this.#links++
    const wanted = this.#links <= PRESENCE_PULL.firstLinks || known < this.#claimed / 2
    return wanted && this.#take(peer)
  }

  /** A responder answered, saying it held `held` presences. */
  answered(held: number): void {
    this.#claimed = Math.max(this.#claimed, held)
  }

  #take(peer: string): boolean {
    const now = this.#now()
    this.#asks = this.#asks.filter((a) => now - a.at < PRESENCE_PULL.windowS * 1000)
    if (this.#asks.length >= PRESENCE_PULL.asksPerWindow) return false
    if (this.#asks.filter((a) => a.peer === peer).length >= 2) return false
    this.#asks.push({ peer, at: now })
    return true
  }
}
