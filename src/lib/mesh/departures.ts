/**
 * Departure notices (issue 16, scale). A peer that left without a direct link to you stayed
 * listed until its presence went stale: three re-announcement intervals, ~10 min at 200 peers.
 * The relay a tab joined through sees it leave at once (its last connection there closes), so
 * the relay gossips the ids that left on DEPARTED_TOPIC, signed by its own key. A tab takes a
 * notice only from a relay it knows (its relay list, or a relay it is connected to) and forgets
 * each named peer it holds no direct link to. A peer that is still alive (it lost only its relay
 * link) is listed again by its next presence, which it sends soon after it reaches a relay again.
 */
import * as v from 'valibot'
import { DEPARTURES } from './constants.ts'
import { FrameTooLargeError, InvalidFrameError } from './errors.ts'

/** A notice: the peers that left the relay that signed it. Extra fields are ignored (a later version may add some). */
export const DepartureSchema = v.object({
  v: v.literal(1),
  peers: v.pipe(v.array(v.pipe(v.string(), v.minLength(10), v.maxLength(128))), v.minLength(1), v.maxLength(DEPARTURES.maxPeers)),
  /** When the relay sent it (its clock; shown, not compared). */
  ts: v.pipe(v.number(), v.integer(), v.minValue(0))
})

/** A departure notice. */
export type Departure = v.InferOutput<typeof DepartureSchema>

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Encode a notice (checked against its schema first). */
export function encodeDeparture(n: Departure): Uint8Array {
  return encoder.encode(JSON.stringify(v.parse(DepartureSchema, n)))
}

/** Decode a notice: size first, then UTF-8 JSON, then the schema. Throws FrameTooLargeError or InvalidFrameError. */
export function decodeDeparture(data: Uint8Array): Departure {
  if (data.byteLength > DEPARTURES.maxBytes) throw new FrameTooLargeError(`departure notice of ${data.byteLength} bytes exceeds ${DEPARTURES.maxBytes}`)
  let json: unknown
  try {
    json = JSON.parse(decoder.decode(data))
  } catch (err) {
    throw new InvalidFrameError('departure notice is not UTF-8 JSON', { cause: err })
  }
  const r = v.safeParse(DepartureSchema, json)
  if (!r.success) throw new InvalidFrameError(`departure notice does not match its schema: ${v.summarize(r.issues)}`)
  return r.output
}

/**
 * The relay's side: peers that left are gathered for `flushMs` and sent as notices of at most
 * `maxPeers` ids. A peer that comes back before its notice went out is taken off it.
 */
export class DepartureBatcher {
  readonly #publish: (data: Uint8Array) => Promise<unknown>
  readonly #flushMs: number
  readonly #maxPeers: number
  readonly #queue = new Set<string>()
  #timer: ReturnType<typeof setTimeout> | undefined
  #stopped = false
  /** Notices sent, and peers named in them. */
  readonly stats = { notices: 0, peers: 0, failed: 0 }

  constructor(publish: (data: Uint8Array) => Promise<unknown>, opts: { flushMs?: number; maxPeers?: number } = {}) {
    this.#publish = publish
    this.#flushMs = opts.flushMs ?? DEPARTURES.flushMs
    this.#maxPeers = Math.min(opts.maxPeers ?? DEPARTURES.maxPeers, DEPARTURES.maxPeers)
  }

  /** `peerId` left: it goes out with the next notice. */
  left(peerId: string): void {
    if (this.#stopped) return
    this.#queue.add(peerId)
    this.#timer ??= setTimeout(() => this.flush(), this.#flushMs)
    ;(this.#timer as { unref?: () => void }).unref?.()
  }

  /** `peerId` is back before its notice went out: it is not named. */
  returned(peerId: string): void {
    this.#queue.delete(peerId)
  }

  /** Send what is queued now, in notices of at most `maxPeers` ids. */
  flush(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const ids = [...this.#queue]
    this.#queue.clear()
    for (let i = 0; i < ids.length; i += this.#maxPeers) {
      const peers = ids.slice(i, i + this.#maxPeers)
      this.stats.notices++
      this.stats.peers += peers.length
      this.#publish(encodeDeparture({ v: 1, peers, ts: Date.now() })).catch(() => {
        this.stats.failed++
      })
    }
  }

  /** Stop for good: nothing queued is sent (a relay shutting down closes every link; those peers did not leave). */
  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#queue.clear()
  }
}
