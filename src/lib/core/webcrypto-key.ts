import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { fromString } from 'uint8arrays/from-string'

/**
 * A fresh Ed25519 key made by the platform's WebCrypto, as a libp2p private key. In
 * JavaScript (@noble/curves, what libp2p's `generateKeyPair` runs in a browser) one cost
 * ~25 ms warm and ~115 ms cold on a new tab's main thread (the curve's tables are built
 * first), on the join's critical path (issue 11): the tab's peer key and a new profile's
 * signing key are both made here. Undefined where WebCrypto has no Ed25519 (the caller
 * then makes one in JavaScript).
 */
export async function webCryptoEd25519(subtle: SubtleCrypto | null = globalThis.crypto?.subtle ?? null): Promise<PrivateKey | undefined> {
  if (subtle == null) return undefined
  try {
    const pair = (await subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair
    const jwk = await subtle.exportKey('jwk', pair.privateKey)
    if (jwk.d == null || jwk.x == null) return undefined
    const seed = fromString(jwk.d, 'base64url')
    const pub = fromString(jwk.x, 'base64url')
    if (seed.byteLength !== 32 || pub.byteLength !== 32) return undefined
    // libp2p's raw Ed25519 private key is the seed followed by the public key.
    const raw = new Uint8Array(64)
    raw.set(seed, 0)
    raw.set(pub, 32)
    return privateKeyFromRaw(raw)
  } catch {
    return undefined
  }
}
