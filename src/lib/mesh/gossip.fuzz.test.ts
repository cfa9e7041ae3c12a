/**
 * Property-based fuzzing of what tabs read from gossip (issue 11, beyond the list):
 * presence and discovery records. Decoders return a valid value or throw their typed
 * error (InvalidFrameError; FrameTooLargeError over the cap); the topic validators never
 * throw at all, only give a verdict.
 */
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Message } from '@libp2p/gossipsub'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FrameTooLargeError, InvalidFrameError } from '../core/index.ts'
import { GOSSIP_LIMITS, MAX_PRESENCE_BYTES } from './constants.ts'
import { checkDiscovery, checkPresence, decodeDiscoveryRecord } from './gossip-validators.ts'
import { MAX_PRESENCE_WORKERS, PresenceSchema, decodePresence, encodePresence, fitPresence } from './presence.ts'
import * as v from 'valibot'

const key = await generateKeyPair('Ed25519')
const me = peerIdFromPrivateKey(key)
const enc = new TextEncoder()

/** Presence-like JSON: valid ones, each field mutated, and arbitrary JSON. */
const presenceLike = fc.oneof(
  fc.record(
    {
      v: fc.oneof(fc.constant(1), fc.integer()),
      peerId: fc.oneof(fc.constant(me.toString()), fc.string({ maxLength: 60 })),
      capabilities: fc.array(fc.oneof(fc.constantFrom('llm', 'word-count'), fc.string({ maxLength: 70 })), { maxLength: 40 }),
      donating: fc.oneof(fc.boolean(), fc.string()),
      freeWorkers: fc.oneof(fc.nat({ max: 64 }), fc.integer(), fc.double()),
      region: fc.oneof(fc.constantFrom('europe', 'unknown'), fc.string({ maxLength: 40 })),
      addrs: fc.array(fc.string({ maxLength: 120 }), { maxLength: 12 }),
      ts: fc.oneof(fc.nat(), fc.double())
    },
    { requiredKeys: ['v', 'peerId'] }
  ),
  fc.jsonValue({ maxDepth: 5 })
)

const signed = (data: Uint8Array): Message =>
  ({ type: 'signed', from: me, data, topic: 't', sequenceNumber: 1n, signature: new Uint8Array(64), key: me.publicKey }) as unknown as Message

function onlyTyped(fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    if (!(err instanceof InvalidFrameError)) throw new Error(`untyped ${(err as Error)?.name}: ${(err as Error)?.message}`)
  }
}

describe('gossip decoders under fuzzing', () => {
  it('decodePresence: any bytes give a valid presence of its author or an InvalidFrameError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 5000 }),
          presenceLike.map((p) => enc.encode(JSON.stringify(p)))
        ),
        (bytes) => {
          onlyTyped(() => {
            const p = decodePresence(bytes, me.toString())
            expect(p.peerId).toBe(me.toString())
            expect(v.safeParse(PresenceSchema, p).success).toBe(true)
          })
          if (bytes.byteLength > MAX_PRESENCE_BYTES) expect(() => decodePresence(bytes, me.toString())).toThrow(FrameTooLargeError)
        }
      ),
      { numRuns: 1000 }
    )
  })

  it('a valid presence encodes and decodes back, or is refused at encode when over the cap (never sent to be struck for)', () => {
    const capability = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,63}$/)
    const valid = fc.record(
      {
        v: fc.constant(1 as const),
        peerId: fc.constant(me.toString()),
        capabilities: fc.oneof(fc.array(capability, { maxLength: 64 }), fc.array(capability, { maxLength: 64, size: 'max' })),
        donating: fc.boolean(),
        freeWorkers: fc.nat({ max: 1024 }),
        workers: fc.nat({ max: MAX_PRESENCE_WORKERS }),
        region: fc.string({ maxLength: 32 }),
        publicKey: fc.string({ maxLength: 80 }),
        addrs: fc.array(fc.string({ maxLength: 400, size: 'max' }), { maxLength: 8 }),
        ts: fc.nat()
      },
      { requiredKeys: ['v', 'peerId', 'capabilities', 'donating', 'freeWorkers', 'region', 'ts'] }
    )
    fc.assert(
      fc.property(valid, (p) => {
        let bytes: Uint8Array
        try {
          bytes = encodePresence(p)
        } catch (err) {
          expect(err).toBeInstanceOf(FrameTooLargeError)
          expect(enc.encode(JSON.stringify(p)).byteLength).toBeGreaterThan(MAX_PRESENCE_BYTES)
          return
        }
        expect(decodePresence(bytes, me.toString())).toEqual(JSON.parse(JSON.stringify(p)))
      }),
      { numRuns: 1000 }
    )
  })

  it('the largest valid presence (64 long capabilities, 8 long addresses) is refused at encode, and fitPresence trims it to fit', () => {
    const p = {
      v: 1 as const,
      peerId: me.toString(),
      capabilities: Array.from({ length: 64 }, (_, i) => `c${'x'.repeat(60)}${i}`),
      donating: true,
      freeWorkers: 1,
      region: 'europe',
      addrs: Array.from({ length: 8 }, () => 'a'.repeat(400)),
      ts: 1
    }
    expect(() => encodePresence(p)).toThrow(FrameTooLargeError)
    const { bytes, trimmed } = fitPresence(p)
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_PRESENCE_BYTES)
    expect(trimmed).toBeGreaterThan(0)
    const back = decodePresence(bytes, me.toString())
    expect(back.capabilities).toEqual(p.capabilities.slice(0, back.capabilities.length))
    expect(checkPresence(signed(bytes)).ok).toBe(true)
  })

  it('decodeDiscoveryRecord: any bytes give a bounded record or an InvalidFrameError', () => {
    const field = (tag: number, bytes: Uint8Array) => [tag, ...varint(bytes.byteLength), ...bytes]
    const recordish = fc
      .array(
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }).map((b) => field(10, b)),
          fc.uint8Array({ maxLength: 40 }).map((b) => field(18, b)),
          fc.tuple(fc.nat({ max: 255 }), fc.uint8Array({ maxLength: 40 })).map(([t, b]) => field(t, b)),
          fc.uint8Array({ maxLength: 8 }).map((b) => [...b])
        ),
        { maxLength: 24 }
      )
      .map((parts) => Uint8Array.from(parts.flat()))
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 3000 }), recordish), (bytes) => {
        onlyTyped(() => {
          const r = decodeDiscoveryRecord(bytes)
          expect(r.addrs.length).toBeLessThanOrEqual(GOSSIP_LIMITS.maxDiscoveryAddrs)
          expect(r.addrs.reduce((n, a) => n + a.byteLength, r.publicKey.byteLength)).toBeLessThanOrEqual(bytes.byteLength)
        })
      }),
      { numRuns: 1000 }
    )
  })

  it('the topic validators never throw: any message gets a verdict, and only its author key passes discovery', () => {
    const ownKey = publicKeyToProtobuf(me.publicKey)
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 6000 }),
          presenceLike.map((p) => enc.encode(JSON.stringify(p))),
          fc
            .array(fc.uint8Array({ maxLength: 30 }), { maxLength: 20 })
            .map((addrs) => Uint8Array.from([10, ...varint(ownKey.byteLength), ...ownKey, ...addrs.flatMap((a) => [18, ...varint(a.byteLength), ...a])]))
        ),
        fc.boolean(),
        (data, isSigned) => {
          const msg = isSigned ? signed(data) : ({ type: 'unsigned', data, topic: 't' } as unknown as Message)
          const p = checkPresence(msg)
          const d = checkDiscovery(msg)
          for (const verdict of [p, d]) expect(typeof verdict.ok).toBe('boolean')
          if (!isSigned) expect(p.ok || d.ok).toBe(false)
        }
      ),
      { numRuns: 1000 }
    )
  })
})

function varint(n: number): number[] {
  const out: number[] = []
  let x = n
  while (x >= 0x80) {
    out.push((x & 0x7f) | 0x80)
    x >>>= 7
  }
  out.push(x)
  return out
}
