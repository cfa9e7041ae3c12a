import { describe, expect, it } from 'vitest'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { freshPeerKey } from './peer-key.ts'

describe('freshPeerKey (WebCrypto Ed25519 for the libp2p node)', () => {
  it('makes a key whose signatures verify under its public key, and a new one each time', async () => {
    const a = await freshPeerKey()
    const b = await freshPeerKey()
    expect(a?.type).toBe('Ed25519')
    const msg = new TextEncoder().encode('join the mesh')
    const sig = await a!.sign(msg)
    // Verified from the public key's raw bytes alone: the pair really belongs together.
    expect(await publicKeyFromRaw(a!.publicKey.raw).verify(msg, sig)).toBe(true)
    expect(await b!.publicKey.verify(msg, sig)).toBe(false)
    expect(peerIdFromPrivateKey(a!).toString()).not.toBe(peerIdFromPrivateKey(b!).toString())
  })

  it('gives undefined (libp2p makes the key) where WebCrypto has no Ed25519', async () => {
    const subtle = { generateKey: () => Promise.reject(new Error('NotSupportedError')) } as unknown as SubtleCrypto
    expect(await freshPeerKey(subtle)).toBeUndefined()
    expect(await freshPeerKey(null)).toBeUndefined()
  })
})
