/**
 * Presence: what a peer gossips about itself on PRESENCE_TOPIC. Validated on
 * receipt; anything malformed is dropped and counted by the caller.
 */
import * as v from 'valibot'
import { MAX_PRESENCE_BYTES } from './constants.ts'
import { FrameTooLargeError, InvalidFrameError } from './errors.ts'
import { UNKNOWN_REGION, regionOfTimeZone } from './regions.ts'

const Capability = v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9.-]{0,63}$/), v.maxLength(64))

/** Most free call slots a presence may claim. */
export const MAX_PRESENCE_FREE_SLOTS = 1024
/**
 * Most workers a presence may claim: a donor of this code offers 8 call slots per worker and
 * may claim at most {@link MAX_PRESENCE_FREE_SLOTS}, so a claim of more workers is one no peer
 * of this code sends (issue 11 item 6: a donor announced 1,024 workers to win load-balanced
 * routing). Refused, the claim is a strike against its sender, as any invalid presence.
 */
export const MAX_PRESENCE_WORKERS = 128

/** Schema of a presence announcement (version 1). */
export const PresenceSchema = v.strictObject({
  v: v.literal(1),
  peerId: v.pipe(v.string(), v.minLength(10), v.maxLength(128)),
  capabilities: v.pipe(v.array(Capability), v.maxLength(64)),
  donating: v.boolean(),
  /** Free call slots: calls it accepts now (each worker queues a few, so this exceeds `workers`). */
  freeWorkers: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_PRESENCE_FREE_SLOTS)),
  /** Workers it runs agents on (its Settings' count) while donating. Optional: older peers do not send it. */
  workers: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_PRESENCE_WORKERS))),
  /** A region id of `regions.ts`' REGIONS, or "unknown"; kept a string so a newer vocabulary does not drop peers. */
  region: v.pipe(v.string(), v.maxLength(32)),
  /** The author's long-lived signing key, so results and receipts can be attributed. */
  publicKey: v.optional(v.pipe(v.string(), v.maxLength(80))),
  /** Proof that this peer holds `publicKey`: its signature over {kind 'zerostate/peer-key/1', peerId} (issue 12; checked by the app's trust wiring). */
  keyProof: v.optional(v.pipe(v.string(), v.maxLength(100))),
  /** Its WebRTC (circuit) addresses, so peers can dial at once instead of waiting for discovery. */
  addrs: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(400))), v.maxLength(8))),
  ts: v.pipe(v.number(), v.integer(), v.minValue(0))
})

/** A peer's presence announcement. */
export type Presence = v.InferOutput<typeof PresenceSchema>

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Encode presence for gossip. Throws FrameTooLargeError over MAX_PRESENCE_BYTES: every
 * peer (and the relay) would reject it and strike its author (a valid presence can reach
 * ~7 KB with 64 long capabilities and 8 addresses); see {@link fitPresence}.
 */
export function encodePresence(p: Presence): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(v.parse(PresenceSchema, p)))
  if (bytes.byteLength > MAX_PRESENCE_BYTES) throw new FrameTooLargeError(`presence of ${bytes.byteLength} bytes exceeds ${MAX_PRESENCE_BYTES}`)
  return bytes
}

/**
 * Encode presence within MAX_PRESENCE_BYTES: when it does not fit, capabilities are
 * dropped from the end (then addresses) until it does. `trimmed` says how many were.
 */
export function fitPresence(p: Presence): { bytes: Uint8Array; trimmed: number } {
  const caps = [...p.capabilities]
  const addrs = [...(p.addrs ?? [])]
  let trimmed = 0
  for (;;) {
    try {
      return { bytes: encodePresence({ ...p, capabilities: caps, ...(p.addrs == null ? {} : { addrs }) }), trimmed }
    } catch (err) {
      if (!(err instanceof FrameTooLargeError) || (caps.length === 0 && addrs.length === 0)) throw err
      if (caps.length > 0) caps.pop()
      else addrs.pop()
      trimmed++
    }
  }
}

/**
 * Decode a gossiped presence message. `from` is the gossip author (gossipsub
 * signs messages), which must match the claimed peer id.
 */
export function decodePresence(data: Uint8Array, from: string): Presence {
  if (data.byteLength > MAX_PRESENCE_BYTES) throw new FrameTooLargeError(`presence of ${data.byteLength} bytes exceeds ${MAX_PRESENCE_BYTES}`)
  let json: unknown
  try {
    json = JSON.parse(decoder.decode(data))
  } catch (err) {
    throw new InvalidFrameError('presence is not UTF-8 JSON', { cause: err })
  }
  const r = v.safeParse(PresenceSchema, json)
  if (!r.success) throw new InvalidFrameError(`presence does not match its schema: ${v.summarize(r.issues)}`)
  if (r.output.peerId !== from) throw new InvalidFrameError(`presence claims to be ${r.output.peerId} but was published by ${from}`)
  return r.output
}

/**
 * The region hint from this browser's time zone (e.g. "Europe/Paris" → "europe"),
 * or "unknown" (UTC, Etc/…); the user may choose one in Settings.
 */
export function defaultRegion(): string {
  try {
    return regionOfTimeZone(localTimeZone()) ?? UNKNOWN_REGION
  } catch {
    return UNKNOWN_REGION
  }
}

/**
 * This browser's time zone: Temporal's where there is one. A tab's first
 * `Intl.DateTimeFormat` loads ICU's formatting data, 35-75 ms of a cold tab's main thread
 * measured here (Chromium 156), while its mesh node is being built (join time, issue 11);
 * `Temporal.Now.timeZoneId()` took 0.1 ms.
 */
function localTimeZone(): string {
  const temporal = (globalThis as { Temporal?: { Now?: { timeZoneId?: () => string } } }).Temporal
  return temporal?.Now?.timeZoneId?.() ?? Intl.DateTimeFormat().resolvedOptions().timeZone
}
