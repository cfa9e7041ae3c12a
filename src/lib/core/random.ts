/** Random order for the layers that spread work or traffic over peers (not for anything secret). */

/** Fisher–Yates, in place. */
export function shuffle<T>(a: T[]): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[a[i], a[j]] = [a[j]!, a[i]!]
  }
}

/** `n` of `items` picked at random (a partial Fisher–Yates shuffle of a copy). */
export function pick<T>(items: readonly T[], n: number): T[] {
  const a = [...items]
  for (let i = 0; i < n && i < a.length; i++) {
    const j = i + Math.floor(Math.random() * (a.length - i))
    ;[a[i], a[j]] = [a[j]!, a[i]!]
  }
  return a.slice(0, n)
}

/**
 * A seeded uniform source in [0, 1) (mulberry32): the same seed gives the same sequence.
 * For tests and models that must draw the same on every run; not for anything secret.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
