/** Helpers shared by this module's tests (not exported from index.ts). */
import { loadIdentity, MemoryKeyStore, seededRandom, type Identity } from '../core/index.ts'

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

/** Deterministic PRNG for randomized tests: core's seededRandom, by the name these tests know it. */
export const rng = seededRandom

/** A sha256-looking hex string. */
export function fakeSha(n: number): string {
  return n.toString(16).padStart(64, '0')
}

/**
 * A v1 update written by hand: one item under root map `root`, key `key`, whose
 * content is ContentJSON (`texts`, each a JSON text). Yjs itself no longer writes
 * ContentJSON, but it still reads it: issue 11 item 1's carrier.
 */
export function jsonContentUpdate(root: string, key: string, texts: string[], client = 4242, clock = 0): Uint8Array {
  const out: number[] = []
  const varUint = (n: number): void => {
    while (n >= 0x80) {
      out.push((n % 0x80) | 0x80)
      n = Math.floor(n / 0x80)
    }
    out.push(n)
  }
  const varString = (s: string): void => {
    const b = new TextEncoder().encode(s)
    varUint(b.length)
    for (const x of b) out.push(x)
  }
  varUint(1) // clients
  varUint(1) // structs
  varUint(client)
  varUint(clock)
  out.push(0x20 | 2) // no origins, parentSub, ContentJSON
  varUint(1) // parent is a root named by string
  varString(root)
  varString(key)
  varUint(texts.length)
  for (const t of texts) varString(t)
  varUint(0) // empty delete set
  return Uint8Array.from(out)
}

/** JSON text of `{"a":{"a":…}}` nested `depth` deep, built without recursion. */
export function nestedJson(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
}
