/**
 * Donation policy: whether this tab runs agents for the mesh and with how many
 * workers, remembered per browser profile.
 */
import type { DonationState } from './api.ts'

/** Where the setting is remembered (`localStorage`'s shape). */
export interface DonationStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
}

/** Options of the donation service. */
export interface DonationInit {
  /** The storage key. Default `zerostate:donation`. */
  storageKey?: string
  /** Where the setting is saved. Default `globalThis.localStorage`; `null` saves nothing (Node). */
  storage?: DonationStorage | null
  /** The most workers the UI offers. Default `navigator.hardwareConcurrency`, else 2. */
  maxWorkers?: number
}

/** What the donation service drives and reads. */
export interface DonationComponents {
  runtime: { resize(workers: number): void; start(): Promise<void>; stats(): { workers: number } }
  /** `stats()['donor.completed']`: steps the donor service ran for other peers since it started. */
  orchestrator: { donate(enabled: boolean): Promise<void>; stats(): Record<string, number> }
  executor: { readonly busy: number }
  /** Tasks of this tab completed so far. */
  tasks: { readonly completed: number }
  /** Settles once the bundled agents are known: a donor advertises their capabilities. */
  bundled: Promise<unknown>
  presence: { setDonating(enabled: boolean): void }
  changes: { changed(): void }
}

/** Options of `donate()`. */
export interface DonateOptions {
  enabled: boolean
  workers?: number
}

/** The donation service. */
export interface Donation {
  /** Start or stop donating, resize the pool, save the setting, advertise it. */
  donate(opts: DonateOptions): Promise<void>
  state(): DonationState
  /** The saved setting, when there is a valid one. */
  saved(): DonateOptions | undefined
  /** Donate as `initial` says, else as saved; does nothing when neither enables it. */
  restore(initial?: DonateOptions): Promise<void>
}

/** `donation(init)(components)`. */
export function donation(init: DonationInit = {}): (components: DonationComponents) => Donation {
  const key = init.storageKey ?? 'zerostate:donation'
  const storage = (): DonationStorage | undefined => (init.storage === undefined ? globalThis.localStorage : (init.storage ?? undefined))
  return ({ runtime, orchestrator, executor, tasks, bundled, presence, changes }) => {
    let enabled = false
    /** Steps run for others by donor services already stopped (each start counts from 0). */
    let servedBefore = 0
    const servedNow = (): number => orchestrator.stats()['donor.completed'] ?? 0

    const saved = (): DonateOptions | undefined => {
      try {
        const raw = storage()?.getItem(key)
        const v: unknown = raw == null ? undefined : JSON.parse(raw)
        return typeof (v as { enabled?: unknown })?.enabled === 'boolean' ? (v as DonateOptions) : undefined
      } catch {
        return undefined
      }
    }

    async function donate(opts: DonateOptions): Promise<void> {
      if (opts.workers != null) runtime.resize(Math.max(1, Math.floor(opts.workers)))
      // The pool starts lazily; a donor must have its workers up to advertise them.
      if (opts.enabled) await runtime.start()
      enabled = opts.enabled
      const served = servedNow()
      await orchestrator.donate(opts.enabled)
      if (!opts.enabled) servedBefore += served
      try {
        storage()?.setItem(key, JSON.stringify({ enabled, workers: runtime.stats().workers }))
      } catch {
        // Storage full or denied (private mode): the setting holds for this page only.
      }
      await bundled
      presence.setDonating(enabled)
      changes.changed()
    }

    return {
      donate,
      saved,
      state: () => ({
        enabled,
        workers: runtime.stats().workers,
        maxWorkers: Math.max(1, init.maxWorkers ?? globalThis.navigator?.hardwareConcurrency ?? 2),
        busy: executor.busy,
        served: servedBefore + servedNow(),
        completed: tasks.completed
      }),
      async restore(initial) {
        const opts = initial ?? saved()
        if (opts?.enabled === true) await donate(opts)
      }
    }
  }
}
