/**
 * The simulator's shared verification cache reuses a verdict only for the same key, bytes
 * and signature: anything else is checked for real, so a forged or replayed signature fails
 * as it would in a tab.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { installVerifyCache, verifyCacheStats } from './verify-cache.ts'

describe('verification cache', () => {
  it('reuses a verdict for the same key, bytes and signature, and checks anything else for real', async () => {
    installVerifyCache()
    const alice = await generateKeyPair('Ed25519')
    const mallory = await generateKeyPair('Ed25519')
    const data = new TextEncoder().encode('presence of alice')
    const sig = await alice.sign(data)
    const s0 = { ...verifyCacheStats }
    expect(await alice.publicKey.verify(data, sig)).toBe(true)
    expect(verifyCacheStats.checked - s0.checked).toBe(1)
    // Another instance of the same key (another peer of the thread): the verdict is reused.
    const again = (await generateKeyPair('Ed25519')).publicKey
    Object.assign(again, { raw: alice.publicKey.raw })
    expect(await again.verify(data.slice(), sig.slice())).toBe(true)
    expect(verifyCacheStats.reused - s0.reused).toBe(1)
    // The same signature on other bytes, or under another key: checked, and refused.
    expect(await alice.publicKey.verify(new TextEncoder().encode('presence of mallory'), sig)).toBe(false)
    expect(await mallory.publicKey.verify(data, sig)).toBe(false)
    expect(verifyCacheStats.checked - s0.checked).toBe(3)
    // A refused verdict is not turned into an accepted one by the cache.
    expect(await mallory.publicKey.verify(data, sig)).toBe(false)
  })
})
