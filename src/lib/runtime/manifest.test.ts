import { describe, expect, test } from 'vitest'
import { InvalidManifestError } from './errors.ts'
import { agentIdOf, checkManifest, parseManifest, signPackage, verifyPackage } from './manifest.ts'
import { testIdentity } from './test-helpers.ts'

const good = { name: 'free-agent', version: '1.0.0', description: 'does a thing', capabilities: ['testing'], abi: 'json-v1' as const }
const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])

describe('manifest validation', () => {
  test('every failing field gets its own sentence, price included, and no raw schema text', () => {
    const issues = checkManifest({
      ...good,
      name: '',
      version: 'one',
      capabilities: ['Bad Cap', 'ok', 'Also_Bad'],
      abi: 'native',
      price: -3,
      limits: { memoryMiB: 0 }
    })
    expect(issues.map((i) => i.field)).toEqual(['name', 'version', 'capabilities', 'abi', 'price', 'limits.memoryMiB'])
    const by = Object.fromEntries(issues.map((i) => [i.field, i.message]))
    expect(by.name).toBe('Give the agent a name: lowercase letters, digits and dashes, e.g. text-summarizer.')
    expect(by.price).toBe('The price cannot be negative: give the credits per call, or 0 (or nothing) for a free agent.')
    expect(by.capabilities).toContain('Capability "Bad Cap" must be lowercase kebab-case')
    expect(by.capabilities).toContain('Capability "Also_Bad" must be lowercase kebab-case')
    for (const i of issues) expect(i.message).not.toMatch(/Invalid (length|type|value)|Expected|received/)
  })

  test('the error a publisher sees carries the issues and names all of them in its message', async () => {
    const identity = await testIdentity()
    const err = await signPackage(identity, { ...good, name: '', capabilities: [], price: -3 }, wasm).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidManifestError)
    const e = err as InvalidManifestError
    expect(e.issues.map((i) => i.field)).toEqual(['name', 'capabilities', 'price'])
    expect(e.message).toMatch(/^the manifest is not valid\. Give the agent a name.*Give at least one capability.*The price cannot be negative/)
  })

  test('price is optional: a free agent need not say so, and signs as price 0', async () => {
    expect(checkManifest(good)).toEqual([])
    const identity = await testIdentity()
    const { id, manifest } = await signPackage(identity, good, wasm)
    expect(manifest.price).toBe(0)
    expect(await verifyPackage(manifest, wasm, id)).toBe(id)
    // The same manifest written with price 0 is the same content, so the same id.
    expect(await agentIdOf({ ...manifest, price: 0 }, wasm)).toBe(id)
    const { price: _p, ...withoutPrice } = manifest
    expect(parseManifest(withoutPrice).price).toBe(0)
  })
})
