import 'fake-indexeddb/auto'
import { describe, expect, test } from 'vitest'
import {
  IndexedDbAgentStore,
  MemoryAgentStore,
  publishLocal,
  SignatureMismatchError,
  ForbiddenImportError,
  InvalidManifestError,
  type AgentStore
} from './index.ts'
import { testIdentity, testManifest, testPackage } from './test-helpers.ts'
import { capMemory, parseModule } from './wasm-binary.ts'
import { modules as rawModules } from '../../../test/fixtures/runtime-wat.mjs'

const modules = rawModules as Record<string, () => Uint8Array>
let n = 0
const stores: Array<[string, () => AgentStore]> = [
  ['MemoryAgentStore', () => new MemoryAgentStore()],
  ['IndexedDbAgentStore', () => new IndexedDbAgentStore(`agents-test-${n++}`)]
]

describe.each(stores)('%s conformance', (_name, make) => {
  test('put/get/has/list round-trip, filtered by capability', async () => {
    const store = make()
    const a = await testPackage(modules['wasiCat']!(), 'wasi-preview1', { name: 'cat', capabilities: ['text-copy'] })
    const b = await testPackage(modules['jsonEcho']!(), 'json-v1', { name: 'echo', capabilities: ['json-echo', 'text-copy'] })
    expect(await store.has(a.id)).toBe(false)
    const entry = await store.put(a.id, a.manifest, a.wasm)
    expect(entry).toMatchObject({ id: a.id, author: a.manifest.author, size: a.wasm.byteLength })
    await store.put(b.id, b.manifest, b.wasm)
    expect(await store.has(a.id)).toBe(true)
    const got = await store.get(a.id)
    expect(got?.manifest).toEqual(a.manifest)
    expect([...got!.wasm]).toEqual([...a.wasm])
    expect((await store.list()).map((e) => e.manifest.name)).toEqual(['cat', 'echo'])
    expect((await store.list({ capability: 'json-echo' })).map((e) => e.id)).toEqual([b.id])
    expect(await store.get('f'.repeat(64))).toBeUndefined()
  })
  test('put refuses a package whose bytes do not match its signature', async () => {
    const store = make()
    const a = await testPackage(modules['wasiCat']!(), 'wasi-preview1')
    await expect(store.put(a.id, a.manifest, modules['wasiTrap']!())).rejects.toBeInstanceOf(SignatureMismatchError)
    expect(await store.has(a.id)).toBe(false)
  })
  test('publishLocal validates, signs as the identity and stores', async () => {
    const store = make()
    const identity = await testIdentity()
    const entry = await publishLocal(store, identity, { manifest: testManifest('json-v1'), wasm: modules['jsonEcho']!() })
    expect(entry.author).toBe(identity.publicKey)
    expect(await store.has(entry.id)).toBe(true)
    await expect(publishLocal(store, identity, { manifest: testManifest('json-v1'), wasm: modules['forbiddenImport']!() })).rejects.toBeInstanceOf(
      ForbiddenImportError
    )
    await expect(
      publishLocal(store, identity, { manifest: { ...testManifest('json-v1'), capabilities: ['Not Kebab'] }, wasm: modules['jsonEcho']!() })
    ).rejects.toSatisfy(
      (e) =>
        e instanceof InvalidManifestError &&
        /Capability "Not Kebab" must be lowercase kebab-case/.test((e as Error).message) &&
        e.issues.some((i) => i.field === 'capabilities')
    )
  })
})

test('the same bytes always give the same id; any change gives another', async () => {
  const a = await testPackage(modules['wasiCat']!(), 'wasi-preview1')
  const b = await testPackage(modules['wasiCat']!(), 'wasi-preview1')
  const c = await testPackage(modules['wasiCat']!(), 'wasi-preview1', { price: 1 })
  expect(a.id).toBe(b.id)
  expect(a.id).toMatch(/^[0-9a-f]{64}$/)
  expect(c.id).not.toBe(a.id)
})

test('capMemory sets the maximum to the cap, lowers a larger one, keeps a smaller one', () => {
  for (const [name, expected] of [
    ['memoryBombNoMax', 2048],
    ['memoryBombOwnMax', 2048]
  ] as const) {
    const bytes = modules[name]!()
    const capped = capMemory(bytes, parseModule(bytes), 2048)
    expect(parseModule(capped).memories[0]).toMatchObject({ min: 1, max: expected })
    expect(WebAssembly.validate(capped as Uint8Array<ArrayBuffer>)).toBe(true)
  }
  const small = modules['memoryBombOwnMax']!()
  const once = capMemory(small, parseModule(small), 100)
  expect(parseModule(capMemory(once, parseModule(once), 2048)).memories[0]?.max).toBe(100)
})
