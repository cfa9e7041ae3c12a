import { type ICryptoInterface, pureJsCrypto } from '@chainsafe/libp2p-noise'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * Noise's X25519 by the platform's WebCrypto instead of JavaScript on the main thread
 * (issue 11, join time). In a new tab, noise's pure-JS curve (@noble/curves) made the
 * static key when libp2p was created (~100 ms cold, before the node could start) and, per
 * handshake, an ephemeral key and three shared secrets: the heaviest JavaScript of a
 * join's profile (315 ms of a newcomer's 3.7 s busy main thread at load 28, and the same
 * on each member answering it). Here keys are made ahead by WebCrypto (native code, off
 * the main thread): the static key before libp2p starts, ephemeral keys in a small pool
 * refilled in the background; shared secrets are WebCrypto's `deriveBits`, which the
 * handshake awaits (patches/@chainsafe+libp2p-noise: the handshake's DH may be async).
 * Where WebCrypto has no X25519, or the pool is empty, the pure-JS functions run as before.
 */
export interface WebCryptoNoise {
  /** The crypto to give `noise({ crypto })`. */
  readonly crypto: ICryptoInterface
  /** Resolves once the static key is made (or WebCrypto said no): libp2p may be created. */
  readonly ready: Promise<void>
  /** Resolves once the pool of ephemeral keys is full (or WebCrypto said no). */
  filled(): Promise<void>
  /** Keys and secrets made by WebCrypto or, as a fallback, in JavaScript. */
  readonly stats: { webCryptoKeys: number; jsKeys: number; webCryptoSecrets: number; jsSecrets: number }
}

/** Ephemeral key pairs kept ready: a join makes one per handshake (relay, then one per member dialled). */
export const NOISE_KEY_POOL = 4

interface KeyPair {
  publicKey: Uint8Array
  privateKey: Uint8Array
}

/** Noise's crypto with X25519 made by `subtle` (default: the platform's). */
export function webCryptoNoise(opts: { subtle?: SubtleCrypto | null; base?: ICryptoInterface; poolSize?: number } = {}): WebCryptoNoise {
  const subtle = opts.subtle === undefined ? (globalThis.crypto?.subtle ?? null) : opts.subtle
  const base = opts.base ?? pureJsCrypto
  const poolSize = opts.poolSize ?? NOISE_KEY_POOL
  const stats = { webCryptoKeys: 0, jsKeys: 0, webCryptoSecrets: 0, jsSecrets: 0 }
  // The CryptoKey behind each private key handed out: noise keeps the bytes, WebCrypto needs the key.
  const privateKeys = new WeakMap<Uint8Array, CryptoKey>()
  const pool: KeyPair[] = []
  let usable = subtle != null
  let filling: Promise<void> | undefined

  async function makePair(): Promise<KeyPair | undefined> {
    if (subtle == null || !usable) return undefined
    try {
      const pair = (await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits'])) as CryptoKeyPair
      const publicKey = new Uint8Array(await subtle.exportKey('raw', pair.publicKey))
      // PKCS #8 of an X25519 key: a 16-byte header, then the 32-byte private key.
      const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', pair.privateKey))
      const privateKey = pkcs8.slice(pkcs8.byteLength - 32)
      if (publicKey.byteLength !== 32 || privateKey.byteLength !== 32) throw new Error('unexpected X25519 key length')
      privateKeys.set(privateKey, pair.privateKey)
      return { publicKey, privateKey }
    } catch {
      // No X25519 in this WebCrypto (older browsers): JavaScript it is, from now on.
      usable = false
      return undefined
    }
  }

  /** Fill the pool: its missing keys made at once (WebCrypto works on them in parallel, off the main thread). */
  function refill(): Promise<void> {
    filling ??= (async () => {
      while (usable && pool.length < poolSize) {
        const made = await Promise.all(Array.from({ length: poolSize - pool.length }, makePair))
        if (made.some((pair) => pair == null)) break
        pool.push(...(made as KeyPair[]))
      }
    })().finally(() => {
      filling = undefined
    })
    return filling
  }

  // Ready with the first key (noise's static key, taken when libp2p is created); the rest follow.
  const ready = (async () => {
    const first = await makePair()
    if (first != null) pool.push(first)
    void refill()
  })()

  const crypto: ICryptoInterface = {
    ...base,
    generateX25519KeyPair(): KeyPair {
      const pair = pool.shift()
      void refill()
      if (pair != null) {
        stats.webCryptoKeys++
        return pair
      }
      stats.jsKeys++
      return base.generateX25519KeyPair()
    },
    // The handshake awaits it (the noise patch); the interface still says Uint8Array.
    generateX25519SharedKey(privateKey: Uint8Array | Uint8ArrayList, publicKey: Uint8Array | Uint8ArrayList): Uint8Array {
      const key = privateKey instanceof Uint8Array ? privateKeys.get(privateKey) : undefined
      if (key == null || subtle == null) {
        stats.jsSecrets++
        return base.generateX25519SharedKey(privateKey, publicKey)
      }
      stats.webCryptoSecrets++
      return sharedSecret(subtle, key, publicKey.subarray()) as unknown as Uint8Array
    }
  }
  return {
    crypto,
    ready,
    stats,
    filled: async () => {
      await ready
      await refill()
    }
  }
}

async function sharedSecret(subtle: SubtleCrypto, privateKey: CryptoKey, publicKey: Uint8Array): Promise<Uint8Array> {
  const pub = await subtle.importKey('raw', publicKey as BufferSource, { name: 'X25519' }, false, [])
  // Rejects, as the JavaScript curve throws, when the remote key gives an all-zero secret.
  return new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pub }, privateKey, 256))
}
