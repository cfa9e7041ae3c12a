/**
 * Ed25519 verification of signed JSON with one imported key per author.
 * `verifyJson` (mesh/identity) imports the public key on every call; a registry
 * of 10,000 entries from a few hundred authors spends most of its time there.
 * WebCrypto Ed25519 (Chromium, Node ≥ 20) lets us import each author once; where
 * it is missing we fall back to `verifyJson`. Same bytes are verified either way
 * (RFC 8785 canonical JSON, base64url signature).
 */
import { fromString } from 'uint8arrays'
import { canonicalBytes, verifyJson } from '../core/index.ts'

const PREFIX = 'ed25519:'
const MAX_KEYS = 10_000

/** Verifies signatures, caching imported public keys. */
export class SignatureVerifier {
  readonly #keys = new Map<string, Promise<CryptoKey | null>>()

  #key(publicKey: string): Promise<CryptoKey | null> {
    let key = this.#keys.get(publicKey)
    if (key == null) {
      if (this.#keys.size >= MAX_KEYS) this.#keys.clear()
      key = (async () => {
        try {
          if (!publicKey.startsWith(PREFIX) || globalThis.crypto?.subtle == null) return null
          const raw = fromString(publicKey.slice(PREFIX.length), 'base64url')
          if (raw.byteLength !== 32) return null
          return await crypto.subtle.importKey('raw', raw as Uint8Array<ArrayBuffer>, { name: 'Ed25519' }, false, ['verify'])
        } catch {
          return null // no WebCrypto Ed25519 here: fall back per call
        }
      })()
      this.#keys.set(publicKey, key)
    }
    return key
  }

  /** True only if `signature` (base64url) is `publicKey`'s signature over canonical `value`. */
  async verify(publicKey: string, value: unknown, signature: string): Promise<boolean> {
    let bytes: Uint8Array
    try {
      bytes = canonicalBytes(value)
    } catch {
      return false
    }
    return await this.verifyBytes(publicKey, bytes, signature, value)
  }

  /** The same, over bytes already canonicalized (`canonicalBytes(value)`). */
  async verifyBytes(publicKey: string, bytes: Uint8Array, signature: string, value?: unknown): Promise<boolean> {
    const key = await this.#key(publicKey)
    if (key == null) return await verifyJson(publicKey, value ?? JSON.parse(new TextDecoder().decode(bytes)), signature)
    try {
      const sig = fromString(signature, 'base64url')
      if (sig.byteLength !== 64) return false
      return await crypto.subtle.verify({ name: 'Ed25519' }, key, sig as Uint8Array<ArrayBuffer>, bytes as Uint8Array<ArrayBuffer>)
    } catch {
      return false
    }
  }
}
