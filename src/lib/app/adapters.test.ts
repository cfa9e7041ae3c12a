import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { closedWhileOpening, loadIdentity } from '../core/index.ts'
import { DEFAULT_LIMITS, Registry } from '../memory/index.ts'
import { sha256Hex, signPackage, type AgentManifest } from '../runtime/index.ts'
import { StreamAbortEvent, type Libp2p } from '@libp2p/interface'
import { AppCatalog, OutcomeStats, coerceInput, libp2pStreamHost, meshPeerDirectory } from './adapters.ts'
import type { MeshNode } from '../mesh/index.ts'

const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])
const until = async (fn: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !fn(); i++) await new Promise((r) => setTimeout(r, 5))
}

describe('AppCatalog', () => {
  it("lists a published agent only after checking its content id and the author's manifest signature", async () => {
    const alice = await loadIdentity()
    const registry = new Registry(new Y.Doc(), alice, DEFAULT_LIMITS)
    const catalog = new AppCatalog(registry, new OutcomeStats())
    const good = await signPackage(alice, { name: 'good', version: '1.0.0', description: 'ok', capabilities: ['testing'], abi: 'json-v1', price: 1 }, wasm)
    const moduleSha256 = await sha256Hex(wasm)
    await registry.publish({ id: good.id, manifest: good.manifest, moduleSha256, holders: [] })
    // Same manifest under a different id: the registry signature is valid, the content id is not.
    await registry.publish({ id: 'f'.repeat(64), manifest: good.manifest, moduleSha256, holders: [] })
    // A manifest whose author is someone else, published by alice.
    const bob = await loadIdentity()
    const bobs = await signPackage(bob, { name: 'bobs', version: '1.0.0', description: 'x', capabilities: ['testing'], abi: 'json-v1', price: 1 }, wasm)
    await registry.publish({ id: bobs.id, manifest: bobs.manifest, moduleSha256, holders: [] })
    await until(() => catalog.rejected >= 2)
    expect(catalog.agents().map((a) => a.id)).toEqual([good.id])
    expect(catalog.rejected).toBe(2)
    expect(catalog.list('testing').map((c) => c.name)).toEqual(['good'])
  })

  it('settled() resolves once the persisted registry entries a reloaded tab loads are verified into the list', async () => {
    const alice = await loadIdentity()
    const saved = new Y.Doc()
    const before = new Registry(saved, alice, DEFAULT_LIMITS)
    const pkg = await signPackage(alice, { name: 'kept', version: '1.0.0', description: '', capabilities: ['x'], abi: 'json-v1', price: 0 }, wasm)
    await before.publish({ id: pkg.id, manifest: pkg.manifest, moduleSha256: await sha256Hex(wasm), holders: [] })
    // The reload: a new doc loaded from what was saved, a new registry and catalog over it.
    const doc = new Y.Doc()
    const registry = new Registry(doc, alice, DEFAULT_LIMITS)
    const catalog = new AppCatalog(registry, new OutcomeStats())
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(saved))
    expect(catalog.agents()).toEqual([]) // not verified yet
    await catalog.settled()
    expect(catalog.agents().map((a) => a.id)).toEqual([pkg.id])
  })

  it('feeds outcomes into quality and mean time', async () => {
    const id = await loadIdentity()
    const registry = new Registry(new Y.Doc(), id, DEFAULT_LIMITS)
    const stats = new OutcomeStats()
    const catalog = new AppCatalog(registry, stats)
    const pkg = await signPackage(id, { name: 'a', version: '1.0.0', description: '', capabilities: ['x'], abi: 'json-v1', price: 0 }, wasm)
    await registry.publish({ id: pkg.id, manifest: pkg.manifest, moduleSha256: await sha256Hex(wasm), holders: [] })
    await until(() => catalog.agents().length === 1)
    const base = { taskId: 't', stepId: 's', agentId: pkg.id, peerId: 'p', capabilities: ['x'], attempt: 1, cost: 0, inputSize: 1, outputSize: 1, at: 0 }
    stats.record({ ...base, success: true, durationMs: 10 })
    stats.record({ ...base, success: true, durationMs: 30 })
    stats.record({ ...base, success: false, durationMs: 5 })
    const [c] = catalog.list('x')
    expect(c.avgMs).toBe(20)
    expect(c.quality).toBeCloseTo(3 / 5)
    expect(stats.agentReputation(pkg.id)).toBeCloseTo((5 * 3) / 5)
  })
})

describe('coerceInput', () => {
  const m = (input?: Record<string, unknown>) => ({ input }) as unknown as AgentManifest
  it('turns structured data into JSON text for string-input agents only', () => {
    expect(coerceInput(m({ type: 'string' }), { keywords: ['a'] })).toBe('{"keywords":["a"]}')
    expect(coerceInput(m({ type: 'string' }), 'text')).toBe('text')
    expect(coerceInput(m({ type: 'object' }), { a: 1 })).toEqual({ a: 1 })
    expect(coerceInput(m(), { a: 1 })).toEqual({ a: 1 })
  })
})

describe('meshPeerDirectory', () => {
  it("lists the mesh's peers without relays, and this peer as its own presence says (a loaded model included)", () => {
    const presence = { v: 1, capabilities: ['llm', 'llm-prompt', 'text-summarization'], donating: true, freeWorkers: 2, region: 'eu' }
    const mesh = {
      peerId: 'me',
      presence,
      peers: () => [
        { id: 'relay', relay: true, rttMs: 1, freeWorkers: 0, donating: false, capabilities: [] },
        { id: 'other', relay: false, rttMs: 4, freeWorkers: 1, region: 'us', donating: true, capabilities: ['hashing'] }
      ]
    } as unknown as MeshNode
    const dir = meshPeerDirectory(mesh)
    expect(dir.peers().map((p) => p.id)).toEqual(['other'])
    expect(dir.self?.()).toEqual({ id: 'me', rttMs: 0, freeWorkers: 2, region: 'eu', donating: true, capabilities: presence.capabilities })
    // It reads the presence as it is now (the app's presence publisher replaces it as a model loads or unloads).
    ;(mesh as unknown as { presence: typeof presence }).presence = { ...presence, capabilities: [], donating: false, freeWorkers: 0 }
    expect(dir.self?.()).toMatchObject({ donating: false, freeWorkers: 0, capabilities: [] })
  })
})

describe('libp2pStreamHost', () => {
  const peer = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf'
  /** A libp2p whose dialProtocol throws `thrown`, or returns `stream`. */
  const fakeNode = (thrown: unknown, stream?: unknown) =>
    ({
      peerId: { toString: () => 'self' },
      async dialProtocol() {
        if (stream != null) return stream
        throw thrown
      }
    }) as unknown as Libp2p

  it('turns the close event libp2p rejects with into an Error naming the protocol, the peer and the cause', async () => {
    // What libp2p rejects with when the stream's data channel closes before it opens.
    const err = await libp2pStreamHost(fakeNode(new StreamAbortEvent(new Error('datachannel closed'))))
      .openStream(peer, '/p/1')
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toBe(`the /p/1 stream to ${peer} closed before it opened: datachannel closed`)
    expect((err as Error).cause).toBeInstanceOf(StreamAbortEvent)
  })

  it('passes any other failure on as it is, and a stream through', async () => {
    const refused = new Error('protocol selection failed')
    await expect(libp2pStreamHost(fakeNode(refused)).openStream(peer, '/p/1')).rejects.toBe(refused)
    const stream = { protocol: '/p/1' }
    await expect(libp2pStreamHost(fakeNode(undefined, stream)).openStream(peer, '/p/1')).resolves.toBe(stream)
  })

  it('tells a close event from an Error or another event', () => {
    expect(closedWhileOpening(new StreamAbortEvent(new Error('x')))).toBe(true)
    expect(closedWhileOpening(new Event('message'))).toBe(false)
    expect(closedWhileOpening(new Error('close'))).toBe(false)
  })
})
