/**
 * The donor's side of signed spans: number each bundle sent to a submitter, and sign the
 * bundles sent to it in one seal shortly after (`wire.ts` says why). A bundle goes out at
 * once with its result; its seal follows within `delayMs`, or as soon as MAX_SEAL_DIGESTS
 * bundles wait.
 */
import { toString as bytesToString } from 'uint8arrays'
import type { Identity } from '../identity.ts'
import { bundleDigest, MAX_SEAL_DIGESTS, type SpanBundle, type SpanSeal, sealBytes } from './wire.ts'

/** Where a seal goes: the caller's send to that submitter. */
export type SealDelivery = (seal: SpanSeal) => void

interface Batch {
  bundles: SpanBundle[]
  deliver: SealDelivery
  timer: ReturnType<typeof setTimeout>
}

/** Submitters a sealer keeps numbering for (the oldest is forgotten past this). */
const MAX_PEERS = 4096

/** Numbers and seals the bundles one peer sends. */
export class SpanSealer {
  readonly #identity: Identity
  readonly #self: () => string
  readonly #delayMs: number
  readonly #next = new Map<string, number>()
  readonly #batches = new Map<string, Batch>()
  readonly #onSealed: () => void
  readonly #onError: (err: unknown) => void

  constructor(identity: Identity, self: () => string, opts: { delayMs: number; onSealed: () => void; onError: (err: unknown) => void }) {
    this.#identity = identity
    this.#self = self
    this.#delayMs = opts.delayMs
    this.#onSealed = opts.onSealed
    this.#onError = opts.onError
  }

  get publicKey(): string {
    return this.#identity.publicKey
  }

  /** Number a bundle for `to` and queue it for the next seal to `to`. */
  bundle(to: string, traceId: string, spans: SpanBundle['spans'], deliver: SealDelivery): SpanBundle {
    // Numbering starts at the clock (ms) so a peer forgotten and met again gets numbers it has not had.
    let seq = this.#next.get(to)
    if (seq == null) {
      seq = Date.now()
      if (this.#next.size >= MAX_PEERS) this.#next.delete(this.#next.keys().next().value!)
    }
    this.#next.set(to, seq + 1)
    const bundle: SpanBundle = { traceId, seq, spans }
    let batch = this.#batches.get(to)
    if (batch == null) {
      batch = { bundles: [], deliver, timer: setTimeout(() => this.#flush(to), this.#delayMs) }
      this.#batches.set(to, batch)
    }
    batch.deliver = deliver
    batch.bundles.push(bundle)
    if (batch.bundles.length >= MAX_SEAL_DIGESTS) this.#flush(to)
    return bundle
  }

  /** Seal whatever waits, now (a stopping donor). */
  flushAll(): void {
    for (const to of [...this.#batches.keys()]) this.#flush(to)
  }

  #flush(to: string): void {
    const batch = this.#batches.get(to)
    if (batch == null) return
    this.#batches.delete(to)
    clearTimeout(batch.timer)
    const self = this.#self()
    const body = { first: batch.bundles[0].seq, digests: batch.bundles.map((b) => bundleDigest(self, b)) }
    void this.#identity.sign(sealBytes(self, to, body)).then(
      (sig) => {
        this.#onSealed()
        batch.deliver({ key: this.#identity.publicKey, sig: bytesToString(sig, 'base64url'), ...body })
      },
      (err: unknown) => this.#onError(err)
    )
  }
}
