/**
 * A Yjs provider in y-indexeddb's shape that syncs one doc with every mesh peer:
 * on each new channel both sides send their state vector (sync step 1) and answer
 * with only what the other lacks (step 2); afterwards local updates go out as
 * incremental updates on the same open channels. Updates travel as core payloads
 * (inline up to 45 KiB, else a descriptor and its chunks, assembled by
 * `PayloadAssembler` with the size capped before buffering and the sha-256
 * checked at the end). Remote updates are size-capped, walked by the structural guard, tried in the check worker when large, and
 * applied with `origin === this` so they are never echoed. What a remote update changed here
 * is passed on to the other linked peers (`relayed`, FORWARD_MAX_BYTES), so a change
 * reaches peers not linked to its author in a few hops (issue 16). A periodic step 1
 * (anti-entropy) repairs anything lost while peers were apart; on an idle doc it backs off
 * (RESYNC_BACKOFF_MAX).
 */
import * as Y from 'yjs'
import {
  Counters,
  PayloadAssembler,
  PayloadError,
  PayloadIntegrityError,
  PayloadTooLargeError,
  describePayload,
  logger,
  pick,
  sendPayloadChunks,
  settledWithin
} from '../core/index.ts'
import { RejectedUpdateError, SyncRequestOverBudgetError, provesHostile } from './errors.ts'
import { UpdateKeyScanner, checkStateVector, checkUpdate, type UpdatePolicy, type UpdateShape } from './update-guard.ts'
import type { UpdateChecker } from './update-checker.ts'
import { fromB64, toB64, type SyncMessage, type SyncPayloadMessage } from './sync-protocol.ts'
import type { PeerEvent, SyncChannel, SyncTransport } from './sync-transport.ts'
import { DEFAULT_LIMITS, type MemoryLimits } from './constants.ts'

const log = logger('memory:sync')

/** Options of {@link MeshProvider}. */
export interface MeshProviderOptions {
  limits?: Partial<MemoryLimits>
  /** Tries large updates off the main thread with a deadline. */
  checker?: UpdateChecker
  /** Root type names this doc may contain; updates naming others are refused. */
  allowedRoots?: ReadonlySet<string>
  /** The guard's whole policy for this doc (bounds of every value, forbidden content); its roots win over `allowedRoots`. */
  policy?: UpdatePolicy
  /**
   * The doc's own admission, after the structural walk and before anything is applied:
   * throw a {@link RejectedUpdateError} to refuse the update (counted, the sender struck).
   */
  admit?: (shape: UpdateShape, kind: 'step2' | 'update') => void
  /**
   * The doc's admission key by key, for a large update while its chunks arrive (an
   * {@link UpdateKeyScanner} reads them): the returned function throws a
   * {@link RejectedUpdateError} to refuse the update there. The provider then counts and
   * strikes as for any refusal, and closes the channel, so the rest of the transfer is never
   * read. `admit` still judges the whole update.
   */
  admitKeys?: (kind: 'step2' | 'update') => (root: string, key: string, live: boolean) => void
  /** Shared counters (`sync.*`); default: the provider's own. */
  counters?: Counters
  /**
   * Called when a peer's update is refused (after counting). At `maxStrikes` refusals within
   * STRIKE_FORGET_MS the provider hangs up through its transport, which blocks the peer where
   * the transport has a strike policy (Libp2pSyncTransport).
   */
  onReject?: (peer: string, error: Error) => void
  /** Shared per-peer strike counts across the provider's docs. */
  strikes?: Map<string, ProviderStrikes>
  /** Open a channel to every peer connected at construction, not only as the smaller peer id (a doc opened on demand, which peers do not open for us). */
  offer?: boolean
  /**
   * Resolves once what this doc holds is verified and pruned (the registry's, the namespace
   * index's own checks). A step 2 answer waits for it, at most {@link SETTLE_WAIT_MS}: an
   * answer must never carry what this tab has not pruned yet (a second partition's entries of
   * an author already at the quota here, records stored before a check existed), which the
   * asking peer refuses as a hostile update and blocks this honest tab for.
   */
  settled?: () => Promise<void>
  /**
   * Pass on what a remote update changed here to the other linked peers (default true; false
   * is the old behaviour, kept for A/B measurements): the change the doc emits (re-encoded by
   * this doc, not the network's bytes) goes out marked `relayed`, never back to its source; a
   * small one to every other open channel, a large one to FORWARD_LARGE_FANOUT of them, one
   * learnt from a step 2 answer to synced peers only. Yjs ends the flood: an update that
   * changes nothing emits nothing.
   */
  forward?: boolean
}

/**
 * The largest change passed on to every other linked peer. Flooding costs each link one copy,
 * so a peer with 16 links receives a change up to 16 times; above this size (where receivers
 * also check each copy in the worker, `workerCheckAboveBytes`) a change goes to at most
 * FORWARD_LARGE_FANOUT peers picked at random, and anti-entropy, which pulls what a peer lacks
 * once, brings it to the few a random push missed.
 */
export const FORWARD_MAX_BYTES = 64 * 1024

/** Peers a change larger than FORWARD_MAX_BYTES is passed on to (push gossip with fanout 3 reaches ~94% of a large mesh in one wave). */
export const FORWARD_LARGE_FANOUT = 3

/**
 * Changes to pass on are sent at most once per this many ms (the first after a quiet spell at
 * once): a stream of writes arriving one message at a time goes on as one merged frame per
 * window, not one frame per write on every link of the mesh.
 */
export const FORWARD_WINDOW_MS = 50

/**
 * Frames of passed-on changes one doc sends per second (a burst of as many, then this rate):
 * a peer streaming writes (or one hostile peer's spam) is not multiplied across the mesh past
 * it. Over it, changes are not passed on (counted `forwardsOverBudget`): the peers that lack
 * them pull them at their next anti-entropy round, at the base rate since their doc changed too.
 */
export const FORWARD_FRAMES_PER_SECOND = 50

/** The longest a step 2 answer waits for the doc's own checks to settle (then it goes anyway). */
export const SETTLE_WAIT_MS = 3000

/** Refused updates of one peer, and when the last one came. */
export interface ProviderStrikes {
  n: number
  at: number
}

/** The offence a block for one hostile update is recorded under (`sync.HostileUpdate` in strikes and the audit log). */
export const HOSTILE_UPDATE_OFFENCE = 'HostileUpdate'

/** Refused updates older than this are forgiven (an honest peer's rare refusal never adds up to a block). */
export const STRIKE_FORGET_MS = 10 * 60_000

/**
 * How long a peer that holds nothing from any peer yet waits for its first exchange before it
 * asks the other peers anyway (the first may be slow or gone without closing).
 */
export const FIRST_SYNC_WAIT_MS = 5_000

/**
 * Anti-entropy of an idle doc backs off (issue 16, scale): each round on a channel doubles
 * that channel's wait, up to this many times `resyncIntervalMs` (15 s → 4 min); a change to
 * the doc (local or from any peer) brings every channel back to `resyncIntervalMs`. A round
 * is a step 1 and its step 2 answer on each channel: at the fixed 15 s, two docs over 32
 * links cost an idle peer ~17 messages a second, for documents that had not changed in
 * minutes. A new channel exchanges state at once, as before.
 */
export const RESYNC_BACKOFF_MAX = 16

/** When a channel's next anti-entropy round is due, its current wait, and when its last round went out. */
interface ResyncState {
  every: number
  at: number
  last: number
}

/** A large payload being assembled on one channel. */
interface Incoming {
  id: number
  kind: 'step2' | 'update'
  relayed: boolean
  assembler: PayloadAssembler
}

/** A change a remote update made here, to pass on to other channels; `from` is the peer it came from, `kind` how. */
interface Relay {
  update: Uint8Array
  from: string
  kind: 'step2' | 'update'
}

/** Syncs `doc` under `name` with every peer `transport` offers. */
export class MeshProvider {
  readonly name: string
  readonly doc: Y.Doc
  readonly transport: SyncTransport
  /** Resolves once state was exchanged with at least one peer. */
  readonly whenSynced: Promise<MeshProvider>
  /** Peers this doc has finished its first exchange with. */
  readonly syncedPeers = new Set<string>()
  readonly counters: Counters
  readonly #limits: MemoryLimits
  readonly #opts: MeshProviderOptions
  readonly #channels = new Map<string, SyncChannel>()
  readonly #strikes: Map<string, ProviderStrikes>
  /** Peers hung up on for a hostile update, until they join again (a block ends). */
  readonly #hostile = new Set<string>()
  readonly #resolveSynced: (p: MeshProvider) => void
  readonly #unhandle: () => void
  readonly #unpeer: () => void
  readonly #timer: ReturnType<typeof setInterval> | undefined
  #destroyed = false
  readonly #reopens = new Map<string, number>()
  #outbox: Uint8Array[] = []
  /** Small changes from peers' own `update` messages to pass on, merged with the outbox. */
  #relays: Relay[] = []
  /** Changes to pass on in frames of their own: relayed ones, from step 2 answers (to synced peers only), large ones (FORWARD_MAX_BYTES). */
  #relayedApart: Relay[] = []
  /** The outbox's flush timer and when it fires; when changes were last passed on (FORWARD_WINDOW_MS). */
  #flushTimer: ReturnType<typeof setTimeout> | undefined
  #flushAt = 0
  #relayedAt = Number.NEGATIVE_INFINITY
  /** FORWARD_FRAMES_PER_SECOND as a token bucket. */
  readonly #forwardBudget = { tokens: FORWARD_FRAMES_PER_SECOND, at: Date.now() }
  /** The peer and message of the remote update being applied (Yjs emits its 'update' synchronously inside applyUpdate). */
  #applying: { peer: string; kind: 'step2' | 'update'; relayed: boolean } | undefined
  /** Local changes not yet written to any peer, and who waits for them to be (`delivered()`). */
  #undelivered = false
  #deliveredWaiters: Array<() => void> = []
  /** Per channel: the next transfer id, and the chain that sends large payloads one after another. */
  readonly #outgoing = new WeakMap<SyncChannel, { id: number; large: Promise<void> }>()
  /** The one channel asked for state before any exchange completed, and the release of the channels waiting for it. */
  #first: { ch: SyncChannel; done: Promise<void>; release: () => void } | undefined
  /** Per channel: its anti-entropy schedule (RESYNC_BACKOFF_MAX). */
  readonly #resyncs = new WeakMap<SyncChannel, ResyncState>()
  /** When the doc last changed (any origin): channels resync at the base rate after a change. */
  #changedAt = 0

  constructor(name: string, doc: Y.Doc, transport: SyncTransport, opts: MeshProviderOptions = {}) {
    this.name = name
    this.doc = doc
    this.transport = transport
    this.#opts = opts
    this.#limits = { ...DEFAULT_LIMITS, ...opts.limits }
    this.counters = opts.counters ?? new Counters('sync')
    this.#strikes = opts.strikes ?? new Map()
    const { promise, resolve } = Promise.withResolvers<MeshProvider>()
    this.whenSynced = promise
    this.#resolveSynced = resolve
    doc.on('update', this.#onUpdate)
    doc.on('destroy', this.#onDocDestroy)
    this.#unhandle = transport.handle(name, (ch) => this.#attach(ch))
    this.#unpeer = transport.onPeer(this.#onPeer)
    // A doc opened on demand (`offer`) offers itself to every connected peer: one that has it open
    // takes the channel, others refuse it. Otherwise, and for later joins, the one-opener rule holds.
    for (const peer of transport.peers()) {
      if (opts.offer === true) void this.#open(peer)
      else this.#onPeer({ type: 'join', peer })
    }
    if (this.#limits.resyncIntervalMs > 0) {
      this.#timer = setInterval(() => this.#resyncDue(), this.#limits.resyncIntervalMs)
      ;(this.#timer as { unref?: () => void }).unref?.()
    }
  }

  /** Peers with an open channel for this doc. */
  get peers(): string[] {
    return [...this.#channels.keys()]
  }

  readonly #onDocDestroy = (): void => {
    this.destroy()
  }

  readonly #onPeer = (e: PeerEvent): void => {
    if (this.#destroyed) return
    if (e.type === 'leave') {
      this.#channels.get(e.peer)?.close()
      this.#channels.delete(e.peer)
      return
    }
    this.#hostile.delete(e.peer)
    // One side opens, so a pair shares one stream per doc (FIELD-NOTES: "let only one side dial").
    if (this.transport.localPeer < e.peer) void this.#open(e.peer)
  }

  async #open(peer: string, attempt = 0): Promise<void> {
    try {
      const ch = await this.transport.open(peer, this.name)
      if (this.#destroyed) {
        ch.close()
        return
      }
      this.#attach(ch)
    } catch (err) {
      this.counters.inc('openFailures')
      log('opening %s to %s failed: %s', this.name, peer, (err as Error)?.message)
      if (attempt < 3 && this.transport.peers().includes(peer)) {
        setTimeout(
          () => {
            if (!this.#destroyed && !this.#channels.has(peer)) void this.#open(peer, attempt + 1)
          },
          200 * 2 ** attempt
        )
      }
    }
  }

  /** Take an inbound channel the transport could not route by itself (a doc opened on demand). */
  accept(ch: SyncChannel): void {
    this.#attach(ch)
  }

  #attach(ch: SyncChannel): void {
    if (this.#destroyed) {
      ch.close()
      return
    }
    const old = this.#channels.get(ch.peer)
    if (old != null && old !== ch) old.close()
    this.#channels.set(ch.peer, ch)
    const now = Date.now()
    this.#resyncs.set(ch, { every: this.#limits.resyncIntervalMs, at: now + this.#limits.resyncIntervalMs, last: now })
    void this.#askState(ch)
    void this.#run(ch)
  }

  /**
   * Our sync step 1 on a new channel. Before any exchange has completed, one peer is asked
   * and the others wait for its answer (or its channel's end, or FIRST_SYNC_WAIT_MS): a
   * newcomer's empty state vector sent to every peer at once pulled the whole doc from each
   * of them (the 1,000-agent registry once per peer: 11 MB from 10 peers instead of 1.1).
   * Asked afterwards with the new state vector, the others send only what the first lacked.
   */
  async #askState(ch: SyncChannel): Promise<void> {
    if (this.syncedPeers.size === 0) {
      if (this.#first == null || this.#first.ch.closed) {
        const { promise, resolve } = Promise.withResolvers<void>()
        const timer = setTimeout(resolve, FIRST_SYNC_WAIT_MS)
        ;(timer as { unref?: () => void }).unref?.()
        const first = { ch, done: promise, release: resolve }
        this.#first = first
        void promise.then(() => {
          clearTimeout(timer)
          if (this.#first === first) this.#first = undefined
        })
      } else {
        this.counters.inc('step1Deferred')
        await this.#first.done
        if (this.#destroyed || ch.closed || this.#channels.get(ch.peer) !== ch) return
      }
    }
    void this.#send(ch, { type: 'step1', sv: toB64(Y.encodeStateVector(this.doc)) })
  }

  /** Send without waiting; resolves true once written, false (logged) when the send failed. */
  #send(ch: SyncChannel, msg: SyncMessage): Promise<boolean> {
    return ch.send(msg).then(
      () => true,
      (err) => {
        log('send on %s to %s failed: %s', this.name, ch.peer, (err as Error)?.message)
        return false
      }
    )
  }

  async #run(ch: SyncChannel): Promise<void> {
    let incoming: Incoming | undefined
    let lastLargeId = -1
    let chain = Promise.resolve()
    // Step-1 answers: one at a time per channel (a step 1 that comes while one is being sent
    // waits, and only the newest waiting one is answered), within a budget per minute. Each
    // answer is the doc's whole state the asker lacks: ten bytes of empty state vector asked
    // for the 1.1 MB registry, and a peer repeating it had every answer encoded at once and
    // held in memory until its turn to be sent.
    const answers = { busy: false, next: undefined as Uint8Array | undefined }
    const budget = { tokens: this.#limits.maxStep1PerMinute, at: Date.now() }
    const withinBudget = (): boolean => {
      const now = Date.now()
      const per = this.#limits.maxStep1PerMinute
      budget.tokens = Math.min(per, budget.tokens + ((now - budget.at) * per) / 60_000)
      budget.at = now
      if (budget.tokens < 1) return false
      budget.tokens -= 1
      return true
    }
    const answer = (sv: Uint8Array): void => {
      answers.busy = true
      // After earlier updates from this peer are applied, so nothing is sent twice needlessly,
      // and after this doc's own checks settled.
      chain = chain.then(async () => {
        let sent: Promise<unknown> = Promise.resolve()
        try {
          await this.#settled()
          if (this.#destroyed || ch.closed) return
          const diff = Y.encodeStateAsUpdate(this.doc, sv)
          this.counters.inc('bytesSent', diff.byteLength)
          sent = this.#sendPayload(ch, 'step2', diff, describePayload({ kind: 'bytes', bytes: diff }))
        } finally {
          // The next waiting step 1 is answered once this answer is written (not in `chain`:
          // applying this peer's updates does not wait for our answer to leave).
          void sent.finally(() => {
            const next = answers.next
            answers.next = undefined
            if (next !== undefined && !ch.closed && !this.#destroyed) answer(next)
            else answers.busy = false
          })
        }
      })
    }
    try {
      for await (const msg of ch) {
        if (this.#destroyed) break
        if (msg.type === 'step1') {
          let sv: Uint8Array
          try {
            sv = fromB64(msg.sv)
            checkStateVector(sv)
          } catch (err) {
            this.#reject(ch.peer, err as Error)
            continue
          }
          this.counters.inc('step1Received')
          if (!withinBudget()) {
            this.counters.inc('step1OverBudget')
            this.#reject(
              ch.peer,
              new SyncRequestOverBudgetError(`${ch.peer} asked for ${this.name}'s state over ${this.#limits.maxStep1PerMinute} times a minute`)
            )
            continue
          }
          if (answers.busy) {
            if (answers.next !== undefined) this.counters.inc('step1Coalesced')
            answers.next = sv
          } else answer(sv)
          continue
        }
        if (msg.type === 'chunk') {
          if (incoming == null || incoming.id !== msg.id) {
            // Chunks of a refused transfer (or of none): dropped without strike, they cost no memory.
            this.counters.inc('strayChunks')
            continue
          }
          const current = incoming
          try {
            if (!current.assembler.push(msg)) continue
            if (!current.assembler.complete) continue
            incoming = undefined
            chain = this.#afterFinish(chain, ch.peer, current.assembler, current.kind, true, current.relayed)
          } catch (err) {
            incoming = undefined
            if (err instanceof RejectedUpdateError) {
              // Refused by the doc's admission mid-transfer: the channel is reset, so the rest of
              // it is never read, nor even received past what is already in flight.
              this.counters.inc('refusedMidTransfer')
              ch.close({ reset: true })
              this.#reject(ch.peer, err)
              break
            }
            // A transfer that broke its descriptor: its remaining chunks would only be stray.
            this.#refusePayload(ch.peer, err)
            ch.close({ reset: true })
            break
          }
          continue
        }
        if (msg.type !== 'step2' && msg.type !== 'update') continue
        const kind = msg.type
        // Relayed content is a third party's, as in a step 2 answer: judged by the same cap and
        // admission, so a refusal that depends on what this tab holds (a quota) never strikes a
        // forwarder for it (the update guard's state-independent checks still do).
        const relayed = msg.type === 'update' && msg.relayed === true
        const cap = kind === 'step2' || relayed ? this.#limits.maxSyncBytes : this.#limits.maxUpdateBytes
        const admitAs = relayed ? 'step2' : kind
        if (msg.payload.inline == null) {
          // A duplicated announcement (the network may deliver twice): the transfer is under way or done.
          if (msg.id <= lastLargeId) continue
          lastLargeId = msg.id
          if (incoming != null) {
            incoming = undefined
            this.#refusePayload(ch.peer, new PayloadIntegrityError('a second large payload was announced before the first ended'))
            continue
          }
        }
        try {
          // Checks the announced size against the cap before a byte is buffered.
          const admitKey = msg.payload.inline == null ? this.#opts.admitKeys?.(admitAs) : undefined
          const scanner = admitKey == null ? undefined : new UpdateKeyScanner(admitKey, this.#opts.policy)
          const assembler = new PayloadAssembler(msg.payload, { maxBytes: cap, onChunk: scanner == null ? undefined : (b) => scanner.push(b) })
          if (msg.payload.inline == null) {
            incoming = { id: msg.id, kind, relayed, assembler }
            continue
          }
          chain = this.#afterFinish(chain, ch.peer, assembler, kind, false, relayed)
        } catch (err) {
          this.#refusePayload(ch.peer, err)
          if (msg.payload.inline == null) {
            // Refused at its announcement (over the cap): what follows is its chunks, every one of
            // which would be read and parsed only to be dropped. The channel is reset instead.
            ch.close({ reset: true })
            break
          }
        }
      }
    } finally {
      await chain
      if (this.#first?.ch === ch) this.#first.release()
      const current = this.#channels.get(ch.peer) === ch
      if (current) this.#channels.delete(ch.peer)
      ch.close()
      // The other side may have refused a doc it was still loading: the opener tries again.
      if (current && !this.#destroyed && this.transport.localPeer < ch.peer && this.transport.peers().includes(ch.peer)) {
        const n = (this.#reopens.get(ch.peer) ?? 0) + 1
        this.#reopens.set(ch.peer, n)
        if (n <= 5)
          setTimeout(
            () => {
              if (!this.#destroyed && !this.#channels.has(ch.peer)) void this.#open(ch.peer)
            },
            100 * 2 ** n
          )
      }
    }
  }

  /**
   * Check a complete payload's hash now (WebCrypto, off the main thread) and apply it after
   * the updates before it: returns the channel's new chain. A payload that fails its hash
   * is refused (typed, counted, struck) in its turn.
   */
  #afterFinish(chain: Promise<void>, peer: string, assembler: PayloadAssembler, kind: 'step2' | 'update', chunked: boolean, relayed: boolean): Promise<void> {
    const finished = assembler.finish().then(
      (bytes) => ({ bytes: bytes as Uint8Array }),
      (err: unknown) => ({ err })
    )
    return chain.then(async () => {
      const r = await finished
      if ('err' in r) {
        this.#refusePayload(peer, r.err)
        return
      }
      if (chunked) this.counters.inc('payloadsReceived')
      await this.#receive(peer, r.bytes, kind, relayed)
    })
  }

  async #receive(peer: string, bytes: Uint8Array, kind: 'step2' | 'update', relayed = false): Promise<void> {
    if (this.#hostile.has(peer)) {
      this.counters.inc('droppedFromHostile')
      return
    }
    try {
      this.counters.inc('bytesReceived', bytes.byteLength)
      const shape = checkUpdate(bytes, this.#opts.policy ?? { allowedRoots: this.#opts.allowedRoots })
      this.#opts.admit?.(shape, relayed ? 'step2' : kind)
      if (this.#opts.checker != null && bytes.byteLength > this.#limits.workerCheckAboveBytes) {
        await this.#opts.checker.check(bytes, { deadlineMs: this.#limits.checkDeadlineMs })
      }
      if (this.#destroyed) return
      this.#applying = { peer, kind, relayed }
      try {
        Y.applyUpdate(this.doc, bytes, this)
      } finally {
        this.#applying = undefined
      }
      this.counters.inc('updatesApplied')
    } catch (err) {
      this.#reject(peer, err instanceof RejectedUpdateError ? err : new RejectedUpdateError('the update failed to apply', { cause: err }))
      return
    }
    if (kind === 'step2' && !this.syncedPeers.has(peer)) {
      this.syncedPeers.add(peer)
      this.#resolveSynced(this)
      this.#first?.release()
    }
  }

  /** A payload that broke its descriptor (size, hash, chunk order) or the cap: typed, counted, struck. */
  #refusePayload(peer: string, err: unknown): void {
    if (err instanceof PayloadTooLargeError) this.counters.inc('payloadsTooLarge')
    else if (err instanceof PayloadIntegrityError) this.counters.inc('payloadIntegrityErrors')
    this.#reject(peer, err instanceof PayloadError ? err : new PayloadIntegrityError('a payload could not be read', { cause: err }))
  }

  /**
   * Send a step 2 or an update: inline in one message when it fits a chunk, else its
   * descriptor and chunks, one chunk per write (small messages queued meanwhile go out
   * between chunks). Large payloads on one channel go one after another. Resolves once
   * written (or failed, logged). `carriesLocal`: the payload holds every local change so far
   * (it counts for `delivered()`); `relayed`: it holds changes passed on from other peers.
   */
  #sendPayload(
    ch: SyncChannel,
    type: 'step2' | 'update',
    bytes: Uint8Array,
    payload: ReturnType<typeof describePayload>,
    { carriesLocal = true, relayed = false }: { carriesLocal?: boolean; relayed?: boolean } = {}
  ): Promise<void> {
    let out = this.#outgoing.get(ch)
    if (out == null) {
      out = { id: 0, large: Promise.resolve() }
      this.#outgoing.set(ch, out)
    }
    const msg: SyncPayloadMessage = { type, id: out.id++, payload: { ...payload, kind: 'bytes' } }
    if (relayed && msg.type === 'update') msg.relayed = true
    // Everything local so far is in this message: once written, it has been delivered.
    const wasUndelivered = carriesLocal && this.#undelivered && this.#outbox.length === 0
    if (payload.inline != null) {
      return this.#send(ch, msg).then((sent) => {
        if (sent && wasUndelivered) this.#markDelivered()
      })
    }
    out.large = out.large.then(async () => {
      if (ch.closed || this.#destroyed) return
      try {
        await ch.send(msg)
        await sendPayloadChunks(bytes, (chunk) => ch.send({ type: 'chunk', id: msg.id, ...chunk }))
        this.counters.inc('payloadsSent')
        if (wasUndelivered) this.#markDelivered()
      } catch (err) {
        log('sending a %d-byte %s on %s to %s failed: %s', bytes.byteLength, type, this.name, ch.peer, (err as Error)?.message)
      }
    })
    return out.large
  }

  /** Waits for the doc's own checks ({@link MeshProviderOptions.settled}), at most SETTLE_WAIT_MS. */
  async #settled(): Promise<void> {
    const settled = this.#opts.settled?.()
    if (settled != null && !(await settledWithin(settled, SETTLE_WAIT_MS))) this.counters.inc('answeredUnsettled')
  }

  /**
   * A refused update: counted (per refusal kind too), reported, and a strike. A refusal that
   * proves its sender hostile ({@link provesHostile}: the update breaks a bound on its own, which
   * no honest peer running this code can send, as it runs this guard on everything it stores)
   * hangs up at once, which blocks where the transport has a strike policy; one an honest peer
   * can relay (over a quota only with what this tab holds, a deadline on a busy machine) hangs
   * up at `maxStrikes` within STRIKE_FORGET_MS, as before (issue 11).
   */
  #reject(peer: string, err: Error): void {
    // What it sent after a hostile update (already in flight) is dropped unread, not struck again.
    if (this.#hostile.has(peer)) return
    this.counters.inc('rejectedUpdates')
    const hostile = provesHostile(err)
    if (err instanceof RejectedUpdateError) this.counters.inc(`refused.${err.refusal}`)
    log('refused an update on %s from %s: %s', this.name, peer, err.message)
    const now = Date.now()
    const prev = this.#strikes.get(peer)
    const strikes = (prev != null && now - prev.at < STRIKE_FORGET_MS ? prev.n : 0) + 1
    this.#strikes.set(peer, { n: strikes, at: now })
    try {
      this.#opts.onReject?.(peer, err)
    } catch {
      this.counters.inc('listenerErrors')
    }
    if (hostile) this.#hostile.add(peer)
    if (hostile || strikes >= this.#limits.maxStrikes) {
      this.#strikes.delete(peer)
      this.counters.inc('peersDisconnected')
      const why = hostile ? `a hostile update (${(err as RejectedUpdateError).refusal})` : `${strikes} refused updates`
      void this.transport.hangUp(peer, why, hostile ? HOSTILE_UPDATE_OFFENCE : undefined).catch(() => {})
    }
  }

  #markDelivered(): void {
    if (this.#outbox.length > 0) return
    this.#undelivered = false
    for (const resolve of this.#deliveredWaiters.splice(0)) resolve()
  }

  /**
   * Resolves once every change made here so far has been written to at least one peer: at
   * once when none is waiting, else after the next write of the outbox to an open channel or
   * of the state a newly met peer asks for. A process about to exit (the terminal peer after
   * `publish`) awaits it; rejects with AbortError when `signal` aborts first.
   */
  delivered(signal?: AbortSignal): Promise<void> {
    if (!this.#undelivered) return Promise.resolve()
    if (signal?.aborted === true) return Promise.reject(signal.reason)
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    const waiter = (): void => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }
    // An abandoned wait leaves the list at once (a caller polling with timeouts does not pile up waiters).
    const onAbort = (): void => {
      this.#deliveredWaiters = this.#deliveredWaiters.filter((w) => w !== waiter)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    this.#deliveredWaiters.push(waiter)
    return promise
  }

  readonly #onUpdate = (update: Uint8Array, origin: unknown): void => {
    this.#changedAt = Date.now()
    if (this.#destroyed) return
    if (origin === this) {
      // A remote update changed the doc: `update` is what changed, as this doc encodes it.
      const from = this.#applying
      if (from != null && this.#forward) this.#relay(update, from)
      return
    }
    this.#undelivered = true
    if (this.#channels.size === 0) return
    // Updates made in one task go out as one merged frame (a burst of 2,000 writes
    // is one message per peer, not 2,000). Merging our own updates is safe: they
    // come from this doc, not from the network.
    this.#outbox.push(update)
    this.#queueFlush(false)
  }

  get #forward(): boolean {
    return this.#opts.forward !== false
  }

  /**
   * Pass on a change a peer's message made here, never to that peer. A small one from a peer's
   * own `update` goes with the outbox's next frame to every other channel, merged with what else
   * came in this task turn: each was admitted here as an update, so together they hold no more of
   * one author than the quota. One from a relayed update or a step 2 answer was admitted as an
   * answer (within the quota alone): it goes in a frame of its own, since two merged could hold
   * more of one author than the quota, which proves its sender hostile. One from a step 2 answer
   * goes only to peers already synced with (a newcomer's first answer, the whole doc, goes
   * nowhere: its other peers hold it). One larger than FORWARD_MAX_BYTES goes to
   * FORWARD_LARGE_FANOUT peers at most.
   */
  #relay(update: Uint8Array, from: { peer: string; kind: 'step2' | 'update'; relayed: boolean }): void {
    const r: Relay = { update, from: from.peer, kind: from.kind }
    if (from.kind === 'update' && !from.relayed && update.byteLength <= FORWARD_MAX_BYTES) this.#relays.push(r)
    else this.#relayedApart.push(r)
    this.#queueFlush(true)
  }

  /** Flush at the next task turn; changes to pass on alone wait for the end of FORWARD_WINDOW_MS after the last ones. */
  #queueFlush(relay: boolean): void {
    const now = Date.now()
    const at = relay ? Math.max(now, this.#relayedAt + FORWARD_WINDOW_MS) : now
    if (this.#flushTimer != null) {
      if (this.#flushAt <= at) return
      clearTimeout(this.#flushTimer)
    }
    this.#flushAt = at
    this.#flushTimer = setTimeout(this.#flushOutbox, at - now)
  }

  /** One frame of passed-on changes within FORWARD_FRAMES_PER_SECOND, or false (counted). */
  #forwardToken(): boolean {
    const b = this.#forwardBudget
    const now = Date.now()
    b.tokens = Math.min(FORWARD_FRAMES_PER_SECOND, b.tokens + ((now - b.at) * FORWARD_FRAMES_PER_SECOND) / 1000)
    b.at = now
    if (b.tokens < 1) {
      this.counters.inc('forwardsOverBudget')
      return false
    }
    b.tokens -= 1
    return true
  }

  readonly #flushOutbox = (): void => {
    this.#flushTimer = undefined
    const local = this.#outbox
    let relays = this.#relays
    const apart = this.#relayedApart
    this.#outbox = []
    this.#relays = []
    this.#relayedApart = []
    if (this.#destroyed) return
    if (relays.length > 0 || apart.length > 0) this.#relayedAt = Date.now()
    if (relays.length > 0 && !this.#forwardToken()) relays = []
    if (local.length > 0 || relays.length > 0) this.#sendFrames(local, relays)
    for (const r of apart) {
      let targets = [...this.#channels.values()].filter((ch) => ch.peer !== r.from && (r.kind === 'update' || this.syncedPeers.has(ch.peer)))
      if (r.update.byteLength > FORWARD_MAX_BYTES && targets.length > FORWARD_LARGE_FANOUT) {
        this.counters.inc('forwardsCapped', targets.length - FORWARD_LARGE_FANOUT)
        targets = pick(targets, FORWARD_LARGE_FANOUT)
      }
      if (targets.length === 0 || !this.#forwardToken()) continue
      const payload = describePayload({ kind: 'bytes', bytes: r.update })
      for (const ch of targets) void this.#sendPayload(ch, 'update', r.update, payload, { carriesLocal: false, relayed: true })
      this.counters.inc('bytesSent', r.update.byteLength * targets.length)
      this.counters.inc('bytesForwarded', r.update.byteLength * targets.length)
      this.counters.inc('updatesForwarded')
    }
  }

  /**
   * One frame per channel: this task turn's local updates and the changes to pass on, except
   * those that came from that channel's peer (never sent back where they came from). Channels
   * that get the same set share one merge and one hash.
   */
  #sendFrames(local: Uint8Array[], relays: Relay[]): void {
    const frames = new Map<string, { update: Uint8Array; payload: ReturnType<typeof describePayload>; relayed: boolean }>()
    const sources = new Set(relays.map((r) => r.from))
    let sent = false
    for (const ch of this.#channels.values()) {
      // The frame's key: the source it leaves out ('' for none).
      const key = sources.has(ch.peer) ? ch.peer : ''
      let frame = frames.get(key)
      if (frame == null) {
        const passed = relays.filter((r) => r.from !== ch.peer).map((r) => r.update)
        const parts = [...local, ...passed]
        if (parts.length === 0) continue
        const update = parts.length === 1 ? parts[0]! : Y.mergeUpdates(parts)
        frame = { update, payload: describePayload({ kind: 'bytes', bytes: update }), relayed: passed.length > 0 }
        frames.set(key, frame)
      }
      void this.#sendPayload(ch, 'update', frame.update, frame.payload, { carriesLocal: local.length > 0, relayed: frame.relayed })
      this.counters.inc('bytesSent', frame.update.byteLength)
      if (frame.relayed) this.counters.inc('bytesForwarded', frame.update.byteLength)
      sent = true
    }
    if (!sent) return
    if (local.length > 0) this.counters.inc('updatesSent')
    if (relays.length > 0) this.counters.inc('updatesForwarded')
  }

  /** Run the state-vector exchange again on every channel (anti-entropy), due or not. */
  resync(): void {
    const sv = toB64(Y.encodeStateVector(this.doc))
    for (const ch of this.#channels.values()) void this.#send(ch, { type: 'step1', sv })
  }

  /** The periodic anti-entropy: a round on each channel that is due (RESYNC_BACKOFF_MAX). */
  #resyncDue(): void {
    const base = this.#limits.resyncIntervalMs
    const now = Date.now()
    let sv: string | undefined
    for (const ch of this.#channels.values()) {
      const s = this.#resyncs.get(ch)
      if (s == null) continue
      // The doc changed since this channel's last round: not idle, back to the base rate.
      if (this.#changedAt > s.last) {
        s.every = base
        s.at = Math.min(s.at, s.last + base)
      }
      // Timers drift: a round due within half a period goes now rather than a whole period late.
      if (now < s.at - base / 2) continue
      sv ??= toB64(Y.encodeStateVector(this.doc))
      void this.#send(ch, { type: 'step1', sv })
      this.counters.inc('resyncs')
      s.last = now
      s.every = Math.min(s.every * 2, base * RESYNC_BACKOFF_MAX)
      s.at = now + s.every
    }
  }

  /** Stop syncing; called by `doc.destroy()` too. Idempotent. */
  destroy(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    if (this.#timer != null) clearInterval(this.#timer)
    if (this.#flushTimer != null) clearTimeout(this.#flushTimer)
    this.#first?.release()
    this.doc.off('update', this.#onUpdate)
    this.doc.off('destroy', this.#onDocDestroy)
    this.#unhandle()
    this.#unpeer()
    for (const ch of this.#channels.values()) ch.close()
    this.#channels.clear()
  }
}
