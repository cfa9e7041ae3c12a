/** Named counters, read as a plain record by `window.zerostate.metrics()`. */
export class Counters {
  readonly #values = new Map<string, number>()
  readonly #prefix: string
  constructor(prefix: string) {
    this.#prefix = prefix
  }
  /** Add `by` (default 1) to counter `name`. */
  inc(name: string, by = 1): void {
    const key = `${this.#prefix}.${name}`
    this.#values.set(key, (this.#values.get(key) ?? 0) + by)
  }
  /** Set a gauge. */
  set(name: string, value: number): void {
    this.#values.set(`${this.#prefix}.${name}`, value)
  }
  get(name: string): number {
    return this.#values.get(`${this.#prefix}.${name}`) ?? 0
  }
  toRecord(): Record<string, number> {
    return Object.fromEntries(this.#values)
  }
}
