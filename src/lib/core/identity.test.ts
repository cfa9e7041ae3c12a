import { describe, expect, it } from 'vitest'
import { MemoryKeyStore, loadIdentity, signJson, verifyJson, toPublicKeyString } from './identity.ts'

describe('identity', () => {
  it('keeps one key per store across loads', async () => {
    const store = new MemoryKeyStore()
    const a = await loadIdentity(store)
    const b = await loadIdentity(store)
    expect(a.publicKey).toBe(b.publicKey)
    expect((await loadIdentity(new MemoryKeyStore())).publicKey).not.toBe(a.publicKey)
  })

  it('signs JSON independently of key order and detects tampering', async () => {
    const id = await loadIdentity()
    const sig = await signJson(id, { b: 1, a: [1, 2] })
    expect(await verifyJson(id.publicKey, { a: [1, 2], b: 1 }, sig)).toBe(true)
    expect(await verifyJson(id.publicKey, { a: [1, 2], b: 2 }, sig)).toBe(false)
    const other = await loadIdentity()
    expect(await verifyJson(other.publicKey, { a: [1, 2], b: 1 }, sig)).toBe(false)
  })

  it('treats malformed keys and signatures as invalid, not as crashes', async () => {
    expect(await verifyJson('nonsense', {}, 'abc')).toBe(false)
    expect(await verifyJson('ed25519:AAAA', {}, '!!')).toBe(false)
    expect(() => toPublicKeyString('ed25519:AAAA')).toThrow(/32 bytes/)
  })

  it("makes a new profile's key by WebCrypto (join time), kept and reloaded like any other", async () => {
    const real = globalThis.crypto.subtle
    const asked: string[] = []
    const subtle = {
      generateKey: (alg: { name: string }, ...rest: [boolean, KeyUsage[]]) => {
        asked.push(alg.name)
        return real.generateKey(alg, ...rest)
      },
      exportKey: (f: 'jwk', k: CryptoKey) => real.exportKey(f, k)
    } as unknown as SubtleCrypto
    const store = new MemoryKeyStore()
    const made = await loadIdentity(store, { subtle })
    expect(asked).toEqual(['Ed25519'])
    const sig = await signJson(made, { join: 1 })
    expect(await verifyJson(made.publicKey, { join: 1 }, sig)).toBe(true)
    // Loaded from the store, not made again: the same key signs for the same public key.
    const again = await loadIdentity(store, { subtle })
    expect(asked).toHaveLength(1)
    expect(again.publicKey).toBe(made.publicKey)
    expect(await verifyJson(made.publicKey, { join: 2 }, await signJson(again, { join: 2 }))).toBe(true)
  })

  it('makes the key in JavaScript where WebCrypto has no Ed25519', async () => {
    const subtle = { generateKey: () => Promise.reject(new Error('NotSupportedError')) } as unknown as SubtleCrypto
    const id = await loadIdentity(new MemoryKeyStore(), { subtle })
    expect(await verifyJson(id.publicKey, { a: 1 }, await signJson(id, { a: 1 }))).toBe(true)
  })
})
