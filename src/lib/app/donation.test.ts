import { describe, expect, it } from 'vitest'
import { donation, type DonationStorage } from './donation.ts'

class MapStorage implements DonationStorage {
  readonly map = new Map<string, string>()
  getItem(k: string): string | null {
    return this.map.get(k) ?? null
  }
  setItem(k: string, v: string): void {
    this.map.set(k, v)
  }
}

function setup(storage: DonationStorage | null = new MapStorage()) {
  const log: string[] = []
  let workers = 3
  /** What the orchestrator's current donor service has run for others (a new one starts from 0). */
  const donor = { completed: 0, running: false }
  let releaseBundled: () => void = () => {}
  const bundled = new Promise<void>((r) => {
    releaseBundled = r
  })
  const svc = donation({ storage, storageKey: 'k', maxWorkers: 4 })({
    runtime: {
      resize: (n) => {
        workers = n
        log.push(`resize ${n}`)
      },
      start: async () => {
        log.push('start')
      },
      stats: () => ({ workers })
    },
    orchestrator: {
      donate: async (on) => {
        log.push(`orchestrator ${on}`)
        if (on !== donor.running) donor.completed = 0
        donor.running = on
      },
      stats: (): Record<string, number> => (donor.running ? { 'dispatch.offers': 4, 'donor.completed': donor.completed } : { 'dispatch.offers': 4 })
    },
    executor: { busy: 2 },
    tasks: { completed: 9 },
    bundled,
    presence: { setDonating: (on) => log.push(`presence ${on}`) },
    changes: { changed: () => log.push('changed') }
  })
  return { svc, log, storage, releaseBundled, donor }
}

describe('donation', () => {
  it('starts the pool, serves offers, saves the setting, then advertises once bundled agents are known', async () => {
    const { svc, log, storage, releaseBundled } = setup()
    let resolved = false
    const p = svc.donate({ enabled: true, workers: 2.7 }).then(() => {
      resolved = true
    })
    await new Promise((r) => setTimeout(r, 0))
    expect(resolved).toBe(false) // waits for the bundled agents before advertising
    expect(svc.state().enabled).toBe(true)
    releaseBundled()
    await p
    expect(log).toEqual(['resize 2', 'start', 'orchestrator true', 'presence true', 'changed'])
    expect(JSON.parse(storage?.getItem('k') ?? 'null')).toEqual({ enabled: true, workers: 2 })
    expect(svc.state()).toEqual({ enabled: true, workers: 2, maxWorkers: 4, busy: 2, served: 0, completed: 9 })
  })

  it('counts steps served for other peers apart from its own tasks, across stopping and restarting', async () => {
    const { svc, releaseBundled, donor } = setup()
    releaseBundled()
    expect(svc.state()).toMatchObject({ served: 0, completed: 9 })
    await svc.donate({ enabled: true })
    donor.completed = 3
    expect(svc.state()).toMatchObject({ served: 3, completed: 9 })
    await svc.donate({ enabled: false })
    expect(svc.state()).toMatchObject({ enabled: false, served: 3 })
    await svc.donate({ enabled: true })
    donor.completed = 2
    expect(svc.state().served).toBe(5)
    // Changing the worker count while donating keeps the same donor service.
    await svc.donate({ enabled: true, workers: 1 })
    expect(svc.state().served).toBe(5)
  })

  it('stopping does not start the pool; workers below 1 become 1', async () => {
    const { svc, log, releaseBundled } = setup()
    releaseBundled()
    await svc.donate({ enabled: false, workers: 0 })
    expect(log).toEqual(['resize 1', 'orchestrator false', 'presence false', 'changed'])
    expect(svc.state().enabled).toBe(false)
  })

  it('restores the saved setting, the option first; ignores invalid saved values', async () => {
    const storage = new MapStorage()
    storage.setItem('k', JSON.stringify({ enabled: true, workers: 5 }))
    const a = setup(storage)
    a.releaseBundled()
    expect(a.svc.saved()).toEqual({ enabled: true, workers: 5 })
    await a.svc.restore()
    expect(a.log).toContain('resize 5')
    expect(a.svc.state().enabled).toBe(true)

    const b = setup(storage)
    b.releaseBundled()
    await b.svc.restore({ enabled: false })
    expect(b.log).toEqual([])

    for (const bad of ['{not json', '{"enabled":"yes"}', 'null']) {
      storage.setItem('k', bad)
      const c = setup(storage)
      expect(c.svc.saved()).toBeUndefined()
      await c.svc.restore()
      expect(c.log).toEqual([])
    }
  })

  it('works without storage, and when storage throws', async () => {
    const none = setup(null)
    none.releaseBundled()
    await none.svc.donate({ enabled: true })
    expect(none.svc.saved()).toBeUndefined()
    const throwing = setup({
      getItem: () => {
        throw new Error('denied')
      },
      setItem: () => {
        throw new Error('quota')
      }
    })
    throwing.releaseBundled()
    await throwing.svc.donate({ enabled: true })
    expect(throwing.svc.state().enabled).toBe(true)
    expect(throwing.svc.saved()).toBeUndefined()
  })
})
