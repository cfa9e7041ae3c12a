/**
 * The submitter's side of signed spans: bundles donors sent with their results wait here
 * until a seal from the same peer covers them, and are verified when their trace is read or
 * when the tab is idle, never on the task's path. A seal's signature is checked once and the
 * answer cached for every bundle it covers. Everything is bounded; what fails is dropped
 * and counted by the tracer.
 */
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { PublicKey } from '@libp2p/interface'
import { fromString } from 'uint8arrays'
import * as v from 'valibot'
import { bundleDigest, type SpanBundle, SpanBundleSchema, type SpanEnvelope, type SpanSeal, sealBytes } from './wire.ts'

/** Why a bundle of foreign spans was dropped. */
export type SpanRejection = 'signature' | 'unknown-trace' | 'orphan' | 'duplicate' | 'malformed' | 'wrong-signer' | 'unsealed' | 'overflow'

/** A bundle with no seal this long after it came is dropped as 'unsealed'. */
export const SEAL_WAIT_MS = 10_000
/** Bundles waiting for verification, over all traces. */
const MAX_PENDING = 4096
/** Seals kept per peer (a seal goes once every bundle it covers is verified), and peers whose seals are kept. */
const MAX_SEALS_PER_PEER = 256
const MAX_SEAL_PEERS = 256

interface Pending {
  from: string
  bundle: SpanEnvelope
  expectKey: string | undefined
  at: number
}
interface SealEntry {
  seal: SpanSeal
  valid?: Promise<boolean>
  /** Positions of the bundles it covers that were verified and kept (the seal goes when all were). */
  kept: Set<number>
}

/** What the verifier needs of its tracer. */
export interface ForeignSpansHost {
  /** This peer's id (seals name their recipient). */
  self(): string
  /** Store a verified bundle (the tracer's structural checks); why not, or undefined. */
  adopt(from: string, bundle: SpanBundle, key: string): SpanRejection | undefined
  accepted(): void
  rejected(why: SpanRejection): void
}

const keys = new Map<string, PublicKey | null>()
function publicKey(text: string): PublicKey | null {
  let key = keys.get(text)
  if (key === undefined) {
    try {
      key = text.startsWith('ed25519:') ? publicKeyFromRaw(fromString(text.slice(8), 'base64url')) : null
    } catch {
      key = null
    }
    if (keys.size >= 256) keys.delete(keys.keys().next().value!)
    keys.set(text, key)
  }
  return key
}

/**
 * Longest a background verification waits for an idle moment: a busy tab (tasks in flight)
 * verifies after its burst, not during it; sooner when many bundles wait (BACKLOG).
 */
const IDLE_TIMEOUT_MS = 10_000
const BACKLOG_TIMEOUT_MS = 1000
const BACKLOG = MAX_PENDING / 4
/** Work per slice when the page never went idle (the timeout fired), and in Node; more when the backlog is large. */
const BUSY_SLICE_MS = 4
const BACKLOG_SLICE_MS = 16
/** Run a slice of background work: `fn(budgetMs)` does at most about that much, then yields. */
type IdleWork = (budgetMs: number) => void
/**
 * Run `fn` when the page is idle (requestIdleCallback, with the idle period's time left as its
 * budget). Where there is no idle callback (Node), a timer stands in: one that fired late means
 * the event loop is busy, so it waits again, until the loop is quiet or the timeout.
 */
const whenIdle: (fn: IdleWork, backlog: boolean) => void =
  typeof requestIdleCallback === 'function'
    ? (fn, backlog) =>
        void requestIdleCallback((d) => fn(d.didTimeout ? (backlog ? BACKLOG_SLICE_MS : BUSY_SLICE_MS) : Math.max(1, d.timeRemaining())), {
          timeout: backlog ? BACKLOG_TIMEOUT_MS : IDLE_TIMEOUT_MS
        })
    : (fn, backlog) => {
        const deadline = Date.now() + (backlog ? BACKLOG_TIMEOUT_MS : IDLE_TIMEOUT_MS)
        const probe = (): void => {
          const at = performance.now()
          setTimeout(() => {
            if (performance.now() - at > 20 && Date.now() < deadline) probe()
            else fn(backlog ? BACKLOG_SLICE_MS : 2 * BUSY_SLICE_MS)
          }, 10)
        }
        probe()
      }

/** Bundles of foreign spans waiting for their seal and verification. */
export class ForeignSpans {
  readonly #host: ForeignSpansHost
  readonly #pending = new Map<string, Pending[]>()
  #count = 0
  readonly #seals = new Map<string, SealEntry[]>()
  #sealArrived = Promise.withResolvers<void>()
  #chain: Promise<void> = Promise.resolve()
  #idleQueued = false

  constructor(host: ForeignSpansHost) {
    this.#host = host
  }

  /** Keep a bundle for later verification; 'overflow' when too many wait. */
  add(from: string, bundle: SpanEnvelope, expectKey: string | undefined): 'overflow' | undefined {
    if (this.#count >= MAX_PENDING) return 'overflow'
    let list = this.#pending.get(bundle.traceId)
    if (list == null) {
      list = []
      this.#pending.set(bundle.traceId, list)
    }
    list.push({ from, bundle, expectKey, at: Date.now() })
    this.#count++
    return undefined
  }

  addSeal(from: string, seal: SpanSeal): void {
    let list = this.#seals.get(from)
    if (list == null) {
      list = []
      if (this.#seals.size >= MAX_SEAL_PEERS) this.#seals.delete(this.#seals.keys().next().value!)
      this.#seals.set(from, list)
    }
    list.push({ seal, kept: new Set() })
    if (list.length > MAX_SEALS_PER_PEER) list.shift()
    this.#sealArrived.resolve()
    this.#sealArrived = Promise.withResolvers<void>()
    this.#queueIdle()
  }

  /** Verify in the background, a slice at a time, while anything sealed waits. */
  #queueIdle(): void {
    if (this.#idleQueued) return
    this.#idleQueued = true
    whenIdle((budgetMs) => {
      this.#idleQueued = false
      void this.settle(undefined, 0, budgetMs).then((more) => {
        if (more) this.#queueIdle()
      })
    }, this.#count > BACKLOG)
  }

  pending(traceId?: string): number {
    return traceId == null ? this.#count : (this.#pending.get(traceId)?.length ?? 0)
  }

  /**
   * Verify what waits (one trace or all), waiting up to `waitMs` for missing seals; one settle at
   * a time. With `budgetMs`, stop after about that long (a background slice); resolves true when
   * work was left for the next slice.
   */
  settle(traceId: string | undefined, waitMs: number, budgetMs?: number): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      // The wait and the budget count from when this settle's turn comes, not from its call.
      const deadline = Date.now() + waitMs
      const until = budgetMs != null ? performance.now() + budgetMs : undefined
      for (;;) {
        const { unsealed, more } = await this.#pass(traceId, until)
        if (more) return true
        const left = deadline - Date.now()
        if (unsealed === 0 || left <= 0) return false
        let timer: ReturnType<typeof setTimeout> | undefined
        await Promise.race([this.#sealArrived.promise, new Promise<void>((r) => (timer = setTimeout(r, left)))])
        clearTimeout(timer)
      }
    }
    const next = this.#chain.then(run)
    this.#chain = next.then(
      () => {},
      () => {}
    )
    return next
  }

  /**
   * One pass over the waiting bundles: how many still wait for a seal, and whether the pass
   * stopped at `until` (performance.now()) with bundles left unlooked-at.
   */
  async #pass(traceId: string | undefined, until?: number): Promise<{ unsealed: number; more: boolean }> {
    const ids = traceId != null ? [traceId] : [...this.#pending.keys()]
    let unsealed = 0
    let more = false
    let looked = 0
    for (const id of ids) {
      const list = this.#pending.get(id)
      if (list == null) continue
      this.#pending.delete(id)
      this.#count -= list.length
      const keep: Pending[] = []
      let i = 0
      for (; i < list.length; i++) {
        // At least one bundle per slice, so a slice always makes progress.
        if (until != null && looked > 0 && performance.now() >= until) {
          more = true
          break
        }
        looked++
        const p = list[i] as Pending
        const entry = this.#sealOf(p)
        const at = entry != null ? p.bundle.seq - entry.seal.first : -1
        const why = entry?.kept.has(at) === true ? 'duplicate' : await this.#verify(p, entry)
        if (why === 'wait') {
          if (Date.now() - p.at < SEAL_WAIT_MS) {
            keep.push(p)
            unsealed++
            continue
          }
          this.#host.rejected('unsealed')
          continue
        }
        let rejected: SpanRejection | undefined = why
        if (rejected == null && entry != null) {
          // Genuine, so now worth checking field by field (the protocol checked only its outline).
          const parsed = v.safeParse(SpanBundleSchema, p.bundle)
          rejected = parsed.success ? this.#host.adopt(p.from, parsed.output, entry.seal.key) : 'malformed'
        }
        if (rejected != null) this.#host.rejected(rejected)
        else {
          entry?.kept.add(at)
          this.#host.accepted()
        }
      }
      // Bundles not looked at this slice wait for the next one, in their order.
      for (; i < list.length; i++) keep.push(list[i] as Pending)
      if (keep.length > 0) {
        const now = this.#pending.get(id)
        this.#pending.set(id, now != null ? [...keep, ...now] : keep)
        this.#count += keep.length
      }
      if (more) break
    }
    // Seals whose every bundle is kept are done with.
    for (const [from, seals] of this.#seals) {
      const open = seals.filter((e) => e.kept.size < e.seal.digests.length)
      if (open.length === 0) this.#seals.delete(from)
      else if (open.length < seals.length) this.#seals.set(from, open)
    }
    return { unsealed, more }
  }

  #sealOf(p: Pending): SealEntry | undefined {
    const seq = p.bundle.seq
    return this.#seals.get(p.from)?.find((e) => seq >= e.seal.first && seq < e.seal.first + e.seal.digests.length)
  }

  async #verify(p: Pending, entry: SealEntry | undefined): Promise<SpanRejection | 'wait' | undefined> {
    if (entry == null) return 'wait'
    const { seal } = entry
    if (p.expectKey != null && p.expectKey !== seal.key) return 'wrong-signer'
    entry.valid ??= (async () => {
      const key = publicKey(seal.key)
      if (key == null) return false
      try {
        return await key.verify(sealBytes(p.from, this.#host.self(), seal), fromString(seal.sig, 'base64url'))
      } catch {
        return false
      }
    })()
    if (!(await entry.valid)) return 'signature'
    return bundleDigest(p.from, p.bundle) === seal.digests[p.bundle.seq - seal.first] ? undefined : 'signature'
  }
}
