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
})
