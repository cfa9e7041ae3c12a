/**
 * Run a function at most once every `ms` (issue 11: a tab's presence announcements, which
 * peers now limit per author, GOSSIP_RATES). A call within `ms` of the last run is put off to
 * the end of that time, and the calls made meanwhile are that one run: announcements asked
 * for together (an address change, a newcomer, a new link) go out as one, with the state of
 * the moment it runs.
 */
export class Spaced {
  #last = Number.NEGATIVE_INFINITY
  #timer: ReturnType<typeof setTimeout> | undefined

  constructor(
    readonly ms: number,
    readonly fn: () => void,
    readonly now: () => number = Date.now
  ) {}

  /** Run now if the last run is `ms` old, else once at the end of that time. */
  run(): void {
    const wait = this.#last + this.ms - this.now()
    if (wait <= 0 && this.#timer === undefined) {
      this.#fire()
      return
    }
    this.#timer ??= setTimeout(() => this.#fire(), Math.max(0, wait))
  }

  /** Drop a run that waits (the owner stopped). */
  cancel(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #fire(): void {
    this.#timer = undefined
    this.#last = this.now()
    this.fn()
  }
}
