/**
 * The cost of publishing (issue 11 item 4): a hashcash stamp over a signed
 * registry entry. The stamp is a short nonce such that
 * sha-256(`<signature>:<stamp>`) starts with `bits` zero bits; the signature
 * covers the whole entry, so a stamp is good for that one entry only and cannot
 * be reused. Minting takes about 2^bits hashes; checking takes one, before the
 * Ed25519 signature is verified (so junk costs its sender more than its readers).
 */
import { sha256 } from '@noble/hashes/sha2.js'

/** Default difficulty: 2^16 hashes on average (about 0.1–0.5 s in a tab), one hash to check. */
export const DEFAULT_PUBLISH_WORK_BITS = 16
/** Highest difficulty a peer may demand (a misconfiguration must not make publishing impossible). */
export const MAX_PUBLISH_WORK_BITS = 28

const encoder = new TextEncoder()

/** Leading zero bits of sha-256(`signature:stamp`). */
export function workBits(signature: string, stamp: string): number {
  return leadingZeroBits(sha256(encoder.encode(`${signature}:${stamp}`)))
}

/** Whether `stamp` carries at least `bits` of work for `signature`. */
export function hasWork(signature: string, stamp: string | undefined, bits: number): boolean {
  if (bits <= 0) return true
  return stamp !== undefined && workBits(signature, stamp) >= bits
}

/**
 * Find a stamp with `bits` of work for `signature`, yielding to the event loop
 * every `sliceMs` so the page stays responsive while it searches.
 */
export async function mintWork(signature: string, bits: number, opts: { sliceMs?: number; signal?: AbortSignal } = {}): Promise<string> {
  const target = Math.min(Math.max(0, Math.floor(bits)), MAX_PUBLISH_WORK_BITS)
  const sliceMs = opts.sliceMs ?? 8
  const prefix = encoder.encode(`${signature}:`)
  const buf = new Uint8Array(prefix.length + 16)
  buf.set(prefix)
  let n = 0
  for (;;) {
    opts.signal?.throwIfAborted()
    const end = performance.now() + sliceMs
    do {
      const stamp = n.toString(36)
      for (let i = 0; i < stamp.length; i++) buf[prefix.length + i] = stamp.charCodeAt(i)
      const h = sha256(buf.subarray(0, prefix.length + stamp.length))
      if (leadingZeroBits(h) >= target) return stamp
      n++
    } while ((n & 255) !== 0 || performance.now() < end)
    await new Promise((resolve) => setTimeout(resolve, 0))
  }
}

function leadingZeroBits(h: Uint8Array): number {
  let bits = 0
  for (const byte of h) {
    if (byte === 0) {
      bits += 8
      continue
    }
    return bits + Math.clz32(byte) - 24
  }
  return bits
}
