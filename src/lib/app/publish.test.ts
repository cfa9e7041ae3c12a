import { describe, expect, it } from 'vitest'
import { loadIdentity } from '../core/index.ts'
import { InvalidModuleError, MemoryAgentStore, publishLocal, sha256Hex, type AgentManifest } from '../runtime/index.ts'
import type { CatalogAgent } from './adapters.ts'
import { agentListing } from './agent-listing.ts'
import { agentPublisher } from './publish.ts'

// The smallest valid json-v1 module is more than a header; a header alone must be refused.
const notAModule = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])
const manifest = { name: 'x', version: '1.0.0', description: 'd', capabilities: ['testing'], abi: 'json-v1' as const, price: 0 }

async function setup(listed: CatalogAgent[] = []) {
  const identity = await loadIdentity()
  const store = new MemoryAgentStore()
  const log: string[] = []
  const published: Array<{ id: string; moduleSha256: string; holders: string[] }> = []
  const catalog = { agents: () => listed, get: (id: string) => listed.find((a) => a.id === id) }
  const stored = {
    id: 'f'.repeat(64),
    manifest: { ...manifest, author: identity.publicKey, signature: 'sig' } as AgentManifest,
    author: identity.publicKey,
    publishedAt: 42
  }
  const publisher = agentPublisher()({
    packages: {
      publish: async (b) => {
        if (b.wasm === notAModule) return await publishLocal(store, identity, b)
        log.push('stored')
        return stored
      }
    },
    registry: {
      publish: async (input) => {
        published.push(input)
        log.push('registry')
      }
    },
    executor: { markLocal: (id) => log.push(`local ${id.slice(0, 4)}`) },
    catalog,
    listing: agentListing()({ catalog, stats: { of: () => undefined } }),
    bundled: Promise.resolve(),
    presence: { refresh: () => log.push('presence') },
    changes: { changed: () => log.push('changed') },
    peerId: 'peer-me'
  })
  return { publisher, log, published, stored }
}

describe('agentPublisher', () => {
  it('stores, marks local, announces with the module hash and this peer as holder, then refreshes presence and tells the UI', async () => {
    const { publisher, log, published, stored } = await setup()
    const wasm = new Uint8Array([1, 2, 3])
    const entry = await publisher.publish({ manifest, wasm })
    expect(log).toEqual(['stored', 'local ffff', 'registry', 'presence', 'changed'])
    expect(published).toEqual([{ id: stored.id, manifest: stored.manifest, moduleSha256: await sha256Hex(wasm), holders: ['peer-me'] }])
    // Not yet verified by the catalog: the entry is built from what was stored.
    expect(entry).toMatchObject({ id: stored.id, name: 'x', author: stored.author, bundled: false, holders: ['peer-me'], publishedAt: 42 })
  })

  it("returns the catalog's entry once the catalog lists it", async () => {
    const id = 'f'.repeat(64)
    const listed: CatalogAgent = {
      id,
      manifest: { ...manifest, author: 'a', signature: 's' } as AgentManifest,
      author: 'a',
      bundled: false,
      holders: ['peer-me', 'peer-2'],
      reputation: 0.7
    }
    const { publisher } = await setup([listed])
    const entry = await publisher.publish({ manifest, wasm: new Uint8Array([1]) })
    expect(entry).toMatchObject({ id, holders: ['peer-me', 'peer-2'], reputation: 0.7 })
  })

  it('announces nothing when the module is invalid', async () => {
    const { publisher, log, published } = await setup()
    await expect(publisher.publish({ manifest, wasm: notAModule })).rejects.toBeInstanceOf(InvalidModuleError)
    expect(published).toEqual([])
    expect(log).toEqual([])
  })
})
