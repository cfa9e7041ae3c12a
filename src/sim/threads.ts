/**
 * Where the simulator's peers run: in this thread (one PeerGroup) or spread over worker
 * threads (one PeerGroup each), every thread's links joined to every other's by a
 * MessagePort (link.ts), the relay and the seeder staying in the main thread.
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads'
import { type GroupCommand, PeerGroup } from './group.ts'
import { joinThreads } from './link.ts'
import { installVerifyCache } from './verify-cache.ts'

/** Young generation of a simulator thread (see WorkerGroup). */
const SIM_YOUNG_GENERATION_MB = 192

/** A group of peers in some thread. */
export interface GroupHandle {
  readonly name: string
  /** Peers this group runs (kept by the caller). */
  size: number
  run(cmd: GroupCommand): Promise<unknown>
  close(): Promise<void>
}

class LocalGroup implements GroupHandle {
  readonly name = 'main'
  size = 0
  readonly #group = new PeerGroup()
  run(cmd: GroupCommand): Promise<unknown> {
    return this.#group.run(cmd)
  }
  async close(): Promise<void> {
    await this.#group.run({ op: 'stop' })
  }
}

class WorkerGroup implements GroupHandle {
  size = 0
  readonly #worker: Worker
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  readonly ready: Promise<void>
  #n = 0

  constructor(
    readonly name: string,
    ports: MessagePort[],
    opts: ThreadOptions
  ) {
    // worker-entry.mjs loads worker.ts through tsx (under node --import tsx and under vitest alike).
    // A peer holds ~15-20 MB of heap: 100 peers in a thread pass V8's default old space.
    this.#worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), {
      workerData: { thread: name, ports, ...opts },
      transferList: ports,
      // A young generation of 192 MB (64 MB semi-spaces) for ~100 peers: each tab has its own
      // isolate and young generation, and ~100 peers allocating into V8's default 16 MB semi-space
      // scavenged so often that GC took 14-16 % of the thread (A/B at 40 peers: idle CPU per peer
      // -20 %). The main thread (--workers 0) gets the same from `npm run sim`'s --max-semi-space-size.
      resourceLimits: { maxOldGenerationSizeMb: 8192, maxYoungGenerationSizeMb: SIM_YOUNG_GENERATION_MB }
    })
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    this.ready = promise
    this.#worker.on('message', (msg: { ready?: true; n: number; value?: unknown; error?: string }) => {
      if (msg.ready) return resolve()
      const p = this.#pending.get(msg.n)
      this.#pending.delete(msg.n)
      if (msg.error != null) p?.reject(new Error(`${name}: ${msg.error}`))
      else p?.resolve(msg.value)
    })
    this.#worker.on('error', (err: Error) => {
      reject(err)
      for (const p of this.#pending.values()) p.reject(err)
      this.#pending.clear()
    })
  }

  run(cmd: GroupCommand): Promise<unknown> {
    const { promise, resolve, reject } = Promise.withResolvers<unknown>()
    const n = this.#n++
    this.#pending.set(n, { resolve, reject })
    this.#worker.postMessage({ n, cmd })
    return promise
  }

  async close(): Promise<void> {
    await this.run({ op: 'stop' }).catch(() => {})
    await this.#worker.terminate()
  }
}

/** How every thread of peers is set up. */
export interface ThreadOptions {
  /** Share Ed25519 verdicts between the peers of a thread (verify-cache.ts, a simulation shortcut). */
  verifyCache: boolean
}

/** Groups for `workers` worker threads (0: one group in this thread), their links joined to this thread's. */
export async function startGroups(workers: number, opts: ThreadOptions = { verifyCache: true }): Promise<GroupHandle[]> {
  if (opts.verifyCache) installVerifyCache()
  if (workers <= 0) return [new LocalGroup()]
  const names = ['main', ...Array.from({ length: workers }, (_, i) => `w${i}`)]
  const ports: MessagePort[][] = names.map(() => [])
  for (let i = 0; i < names.length; i++)
    for (let j = i + 1; j < names.length; j++) {
      const { port1, port2 } = new MessageChannel()
      ports[i]?.push(port1)
      ports[j]?.push(port2)
    }
  joinThreads('main', ports[0] as MessagePort[])
  const groups = names.slice(1).map((name, i) => new WorkerGroup(name, ports[i + 1] as MessagePort[], opts))
  await Promise.all(groups.map((g) => g.ready))
  return groups
}
