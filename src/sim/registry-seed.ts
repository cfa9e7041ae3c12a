/**
 * A registry of many agents for the simulator, and a seeding peer that holds it. Each
 * record is what `registry.publish` writes (signed payload + 16 bits of publishing work),
 * minted once and cached on disk: the work costs ~0.1-0.6 s per record (2^16 hashes), which
 * is the publisher's cost, paid once per agent, and not what a newcomer's sync measures.
 * The seeder is the mesh node and memory layer `createZeroState` composes (mesh + memory,
 * no orchestrator), with the records written into its registry doc.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { MemoryKeyStore, loadIdentity, signJson } from '../lib/core/index.ts'
import {
  DEFAULT_LIMITS,
  DEFAULT_PUBLISH_WORK_BITS,
  Libp2pSyncTransport,
  REGISTRY_DOC,
  createMemoryLayer,
  entryKey,
  hasWork,
  type EntryRecord,
  type MemoryLayer
} from '../lib/memory/index.ts'
import { MeshNode } from '../lib/mesh/index.ts'
import { type LinkShape, simLink } from './link.ts'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'

/** A registry entry record as stored in the registry doc (the memory layer's own type). */
export type SeedRecord = EntryRecord

/** The stamp search of publish-work.ts with Node's SHA-256 (same hash, same check; ~10x faster than in JS). */
function mintFast(signature: string, bits: number): string {
  for (let n = 0; ; n++) {
    const stamp = n.toString(36)
    const h = createHash('sha256').update(`${signature}:${stamp}`).digest()
    let zeros = 0
    for (const byte of h) {
      if (byte === 0) {
        zeros += 8
        continue
      }
      zeros += Math.clz32(byte) - 24
      break
    }
    if (zeros >= bits) return stamp
  }
}

/**
 * `count` entry records from ceil(count / perAuthor) authors (the registry keeps at most
 * DEFAULT_LIMITS.maxEntriesPerAuthor per author), read from `cacheFile` when it holds as many.
 */
export async function seedRecords(count: number, cacheFile: string, perAuthor = Math.min(250, DEFAULT_LIMITS.maxEntriesPerAuthor)): Promise<SeedRecord[]> {
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as SeedRecord[]
    if (Array.isArray(cached) && cached.length >= count) return cached.slice(0, count)
  } catch {
    /* none cached yet */
  }
  const out: SeedRecord[] = []
  const publishedAt = Date.now()
  while (out.length < count) {
    const identity = await loadIdentity(new MemoryKeyStore())
    for (let i = 0; i < perAuthor && out.length < count; i++) {
      const n = out.length
      const body = {
        kind: 'zerostate/registry-entry/1' as const,
        id: `sim-agent-${n}`,
        author: identity.publicKey,
        manifest: { name: `sim-agent-${n}`, version: '1.0.0', description: `simulated agent ${n}`, capabilities: [`sim.cap${n % 50}`], abi: 'json-v1' },
        moduleSha256: createHash('sha256').update(`sim-module-${n}`).digest('hex'),
        version: 1,
        publishedAt
      }
      const signature = await signJson(identity, body)
      const work = mintFast(signature, DEFAULT_PUBLISH_WORK_BITS)
      if (!hasWork(signature, work, DEFAULT_PUBLISH_WORK_BITS)) throw new Error('minted work does not check')
      out.push({ ...body, signature, work })
    }
  }
  await mkdir(dirname(cacheFile), { recursive: true })
  await writeFile(cacheFile, JSON.stringify(out))
  return out
}

/** A peer holding the seeded registry. */
export interface Seeder {
  id: string
  layer: MemoryLayer
  stop(): Promise<void>
}

/** Start a seeding peer on the simulated mesh with `records` in its registry doc. */
export async function startSeeder(init: { relay: string; link?: LinkShape }, records: readonly SeedRecord[]): Promise<Seeder> {
  const mesh = new MeshNode({
    relays: [init.relay],
    allowPrivateAddresses: true,
    transports: [simLink({ relay: init.relay, ...init.link }), circuitRelayTransport()]
  })
  const [identity] = await Promise.all([loadIdentity(new MemoryKeyStore()), mesh.start()])
  const layer = createMemoryLayer({ identity, transport: new Libp2pSyncTransport(mesh.libp2p, { strikes: mesh.strikes }), persistence: 'none' })
  await layer.start()
  const doc = layer.doc(REGISTRY_DOC)
  if (doc == null) throw new Error('the registry doc is not open')
  const entries = doc.getMap('entries')
  doc.transact(() => {
    for (const r of records) entries.set(entryKey(r.author, r.id), r)
  })
  await layer.registry.settled()
  const listed = layer.registry.list().length
  if (listed < records.length) throw new Error(`the seeder's registry lists ${listed} of ${records.length} seeded agents`)
  return {
    id: mesh.peerId,
    layer,
    async stop() {
      await layer.stop()
      await mesh.stop()
    }
  }
}
