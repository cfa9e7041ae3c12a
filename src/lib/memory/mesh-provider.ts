/**
 * A Yjs provider in y-indexeddb's shape that syncs one doc with every mesh peer:
 * on each new channel both sides send their state vector (sync step 1) and answer
 * with only what the other lacks (step 2); afterwards local updates go out as
 * incremental updates on the same open channels. Remote updates are size-capped,
 * walked by the structural guard, tried in the check worker when large, and
 * applied with `origin === this` so they are never echoed. A periodic step 1
 * (anti-entropy) repairs anything lost while peers were apart.
 */
import * as Y from 'yjs'
import { Counters } from '../core/index.ts'
import { logger } from '../core/index.ts'
import { RejectedUpdateError } from './errors.ts'
import { checkStateVector, checkUpdate } from './update-guard.ts'
import type { UpdateChecker } from './update-checker.ts'
import { fromB64, payloadMessages, toB64, type SyncMessage } from './sync-protocol.ts'
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
  /** Shared counters (`sync.*`); default: the provider's own. */
  counters?: Counters
  /** Called when a peer's update is refused (after counting); the provider hangs up after `maxStrikes`. */
  onReject?: (peer: string, error: Error) => void
  /** Shared per-peer strike counts across the provider's docs. */
  strikes?: Map<string, number>
  /** Open a channel to every peer connected at construction, not only as the smaller peer id (a doc opened on demand, which peers do not open for us). */
  offer?: boolean
}

interface Partial_ {
  kind: 'step2' | 'update'
  text: string
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
  readonly #strikes: Map<string, number>
  readonly #resolveSynced: (p: MeshProvider) => void
  readonly #unhandle: () => void
  readonly #unpeer: () => void
  readonly #timer: ReturnType<typeof setInterval> | undefined
  #destroyed = false
  readonly #reopens = new Map<string, number>()
  #outbox: Uint8Array[] = []

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
      this.#timer = setInterval(() => this.resync(), this.#limits.resyncIntervalMs)
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
    this.#send(ch, { type: 'step1', sv: toB64(Y.encodeStateVector(this.doc)) })
    void this.#run(ch)
  }

  #send(ch: SyncChannel, msg: SyncMessage): void {
    ch.send(msg).catch((err) => {
      log('send on %s to %s failed: %s', this.name, ch.peer, (err as Error)?.message)
    })
  }

  async #run(ch: SyncChannel): Promise<void> {
    let partial: Partial_ | undefined
    let chain = Promise.resolve()
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
          // Answer after earlier updates from this peer are applied, so nothing is sent twice needlessly.
          chain = chain.then(() => {
            const diff = Y.encodeStateAsUpdate(this.doc, sv)
            this.counters.inc('bytesSent', diff.byteLength)
            for (const m of payloadMessages('step2', diff)) this.#send(ch, m)
          })
          continue
        }
        if (msg.type !== 'step2' && msg.type !== 'update') continue
        const cap = msg.type === 'step2' ? this.#limits.maxSyncBytes : this.#limits.maxUpdateBytes
        if (partial != null && partial.kind !== msg.type) {
          this.#reject(ch.peer, new RejectedUpdateError('interleaved partial payloads'))
          partial = undefined
          continue
        }
        const text = (partial?.text ?? '') + msg.data
        if (text.length * 0.75 > cap) {
          this.#reject(ch.peer, new RejectedUpdateError(`a ${msg.type} payload over the ${cap}-byte cap`))
          partial = undefined
          continue
        }
        if (msg.more) {
          partial = { kind: msg.type, text }
          continue
        }
        partial = undefined
        const kind = msg.type
        chain = chain.then(() => this.#receive(ch.peer, text, kind))
      }
    } finally {
      await chain
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

  async #receive(peer: string, text: string, kind: 'step2' | 'update'): Promise<void> {
    let bytes: Uint8Array
    try {
      bytes = fromB64(text)
      this.counters.inc('bytesReceived', bytes.byteLength)
      checkUpdate(bytes, this.#opts.allowedRoots)
      if (this.#opts.checker != null && bytes.byteLength > this.#limits.workerCheckAboveBytes) {
        await this.#opts.checker.check(bytes, { deadlineMs: this.#limits.checkDeadlineMs })
      }
      if (this.#destroyed) return
      Y.applyUpdate(this.doc, bytes, this)
      this.counters.inc('updatesApplied')
    } catch (err) {
      this.#reject(peer, err instanceof RejectedUpdateError ? err : new RejectedUpdateError('the update failed to apply', { cause: err }))
      return
    }
    if (kind === 'step2' && !this.syncedPeers.has(peer)) {
      this.syncedPeers.add(peer)
      this.#resolveSynced(this)
    }
  }

  #reject(peer: string, err: Error): void {
    this.counters.inc('rejectedUpdates')
    log('refused an update on %s from %s: %s', this.name, peer, err.message)
    const strikes = (this.#strikes.get(peer) ?? 0) + 1
    this.#strikes.set(peer, strikes)
    try {
      this.#opts.onReject?.(peer, err)
    } catch {
      this.counters.inc('listenerErrors')
    }
    if (strikes >= this.#limits.maxStrikes) {
      this.#strikes.delete(peer)
      this.counters.inc('peersDisconnected')
      void this.transport.hangUp(peer, `${strikes} refused updates`).catch(() => {})
    }
  }

  readonly #onUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this || this.#destroyed || this.#channels.size === 0) return
    // Updates made in one task go out as one merged frame (a burst of 2,000 writes
    // is one message per peer, not 2,000). Merging our own updates is safe: they
    // come from this doc, not from the network.
    this.#outbox.push(update)
    if (this.#outbox.length === 1) setTimeout(this.#flushOutbox, 0)
  }

  readonly #flushOutbox = (): void => {
    const batch = this.#outbox
    this.#outbox = []
    if (batch.length === 0 || this.#destroyed) return
    const update = batch.length === 1 ? batch[0]! : Y.mergeUpdates(batch)
    const msgs = payloadMessages('update', update)
    for (const ch of this.#channels.values()) for (const m of msgs) this.#send(ch, m)
    this.counters.inc('bytesSent', update.byteLength * this.#channels.size)
    this.counters.inc('updatesSent')
  }

  /** Run the state-vector exchange again on every channel (anti-entropy). */
  resync(): void {
    const sv = toB64(Y.encodeStateVector(this.doc))
    for (const ch of this.#channels.values()) this.#send(ch, { type: 'step1', sv })
  }

  /** Stop syncing; called by `doc.destroy()` too. Idempotent. */
  destroy(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    if (this.#timer != null) clearInterval(this.#timer)
    this.doc.off('update', this.#onUpdate)
    this.doc.off('destroy', this.#onDocDestroy)
    this.#unhandle()
    this.#unpeer()
    for (const ch of this.#channels.values()) ch.close()
    this.#channels.clear()
  }
}
