/** Helpers shared by this module's tests (not exported from index.ts). */
import { loadIdentity, MemoryKeyStore, type Identity } from '../core/index.ts'

/** Poll `cond` until true or fail after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** A fresh in-memory identity. */
export async function newIdentity(): Promise<Identity> {
  return await loadIdentity(new MemoryKeyStore())
}

/** Deterministic PRNG (mulberry32) for randomized tests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A sha256-looking hex string. */
export function fakeSha(n: number): string {
  return n.toString(16).padStart(64, '0')
}
