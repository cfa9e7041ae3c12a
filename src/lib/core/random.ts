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
