/**
 * A bounded ring buffer: the newest `capacity` items, oldest first when read; pushing past
 * the capacity overwrites the oldest and counts it. One per tab holds the log records.
 */
export class RingBuffer<T> {
  readonly capacity: number
  readonly #items: (T | undefined)[]
  #start = 0
  #size = 0
  /** Items overwritten because the buffer was full. */
  dropped = 0

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('a ring buffer holds at least one item')
    this.capacity = capacity
    this.#items = new Array<T | undefined>(capacity)
  }

  get size(): number {
    return this.#size
  }

  push(item: T): void {
    if (this.#size < this.capacity) {
      this.#items[(this.#start + this.#size) % this.capacity] = item
      this.#size++
      return
    }
    this.#items[this.#start] = item
    this.#start = (this.#start + 1) % this.capacity
    this.dropped++
  }

  /** The items, oldest first (a copy); with `filter`, only those it keeps. */
  toArray(filter?: (item: T) => boolean): T[] {
    const out: T[] = []
    for (let i = 0; i < this.#size; i++) {
      const item = this.#items[(this.#start + i) % this.capacity] as T
      if (filter == null || filter(item)) out.push(item)
    }
    return out
  }

  clear(): void {
    this.#items.fill(undefined)
    this.#start = 0
    this.#size = 0
  }
}
