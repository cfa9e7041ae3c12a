/**
 * The user's long-lived signing identity: one Ed25519 key per browser profile,
 * kept in IndexedDB, used to sign agents, registry entries, results and receipts.
 * It is distinct from the libp2p peer key, which is new for every tab.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf, publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import canonicalize from 'canonicalize'
import { fromString, toString as bytesToString } from 'uint8arrays'
import { InvalidSignatureError } from './errors.ts'
import { webCryptoEd25519 } from './webcrypto-key.ts'

/** A public key as text: `ed25519:` + base64url of the 32 raw bytes. */
export type PublicKeyString = string & { readonly __brand: 'PublicKeyString' }

const PREFIX = 'ed25519:'

/** Validate and brand a public key string. */
export function toPublicKeyString(value: string): PublicKeyString {
  if (!value.startsWith(PREFIX)) throw new InvalidSignatureError(`a public key must start with "${PREFIX}"`)
  let raw: Uint8Array
  try {
    raw = fromString(value.slice(PREFIX.length), 'base64url')
  } catch (err) {
    throw new InvalidSignatureError('the public key is not valid base64url', { cause: err })
  }
  if (raw.byteLength !== 32) throw new InvalidSignatureError('an Ed25519 public key has 32 bytes')
  return value as PublicKeyString
}

/** Something that signs on the user's behalf. */
export interface Identity {
  readonly publicKey: PublicKeyString
  sign(data: Uint8Array): Promise<Uint8Array>
}

/** Where an identity's private key is kept. */
export interface KeyStore {
  load(): Promise<Uint8Array | undefined>
  save(bytes: Uint8Array): Promise<void>
}

/** Keeps the key in memory only (Node, tests). */
export class MemoryKeyStore implements KeyStore {
  #bytes: Uint8Array | undefined
  async load(): Promise<Uint8Array | undefined> {
    return this.#bytes
  }
  async save(bytes: Uint8Array): Promise<void> {
    this.#bytes = bytes
  }
}

/** Keeps the key in this browser profile's IndexedDB. */
export class IndexedDbKeyStore implements KeyStore {
  readonly #dbName: string
  constructor(dbName = 'zerostate-identity') {
    this.#dbName = dbName
  }

  #open(): Promise<IDBDatabase> {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(this.#dbName, 1)
      req.onupgradeneeded = () => req.result.createObjectStore('keys')
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error)
    })
  }

  async load(): Promise<Uint8Array | undefined> {
    const db = await this.#open()
    try {
      return await new Promise((resolve, reject) => {
        const req = db.transaction('keys', 'readonly').objectStore('keys').get('signing')
        req.onsuccess = () => resolve(req.result instanceof Uint8Array ? req.result : undefined)
        req.onerror = () => reject(req.error)
      })
    } finally {
      db.close()
    }
  }

  async save(bytes: Uint8Array): Promise<void> {
    const db = await this.#open()
    try {
      await new Promise<void>((resolve, reject) => {
        const tx = db.transaction('keys', 'readwrite')
        tx.objectStore('keys').put(bytes, 'signing')
        tx.oncomplete = () => resolve()
        tx.onerror = () => reject(tx.error)
      })
    } finally {
      db.close()
    }
  }
}

class KeyIdentity implements Identity {
  readonly publicKey: PublicKeyString
  readonly #key: PrivateKey
  constructor(key: PrivateKey) {
    this.#key = key
    this.publicKey = (PREFIX + bytesToString(key.publicKey.raw, 'base64url')) as PublicKeyString
  }
  async sign(data: Uint8Array): Promise<Uint8Array> {
    return await this.#key.sign(data)
  }
}

/**
 * Load the profile's identity from `store`, creating and saving one the first time: made by
 * WebCrypto (`subtle`, default the platform's) where it has Ed25519, else in JavaScript.
 */
export async function loadIdentity(store: KeyStore = new MemoryKeyStore(), opts: { subtle?: SubtleCrypto | null } = {}): Promise<Identity> {
  const saved = await store.load()
  if (saved != null) {
    try {
      return new KeyIdentity(privateKeyFromProtobuf(saved))
    } catch {
      // A corrupt stored key cannot be recovered; a new identity is better than none.
    }
  }
  // A new profile's key is made beside the tab's join (createZeroState starts both at once):
  // by WebCrypto, not ~100 ms of JavaScript on the main thread the join needs (issue 11).
  const key = (await webCryptoEd25519(opts.subtle)) ?? (await generateKeyPair('Ed25519'))
  await store.save(privateKeyToProtobuf(key))
  return new KeyIdentity(key)
}

const encoder = new TextEncoder()

/** Deterministic bytes of a JSON value (RFC 8785), so signatures do not depend on key order. */
export function canonicalBytes(value: unknown): Uint8Array {
  const text = canonicalize(value)
  if (text === undefined) throw new TypeError('value cannot be canonicalized as JSON')
  return encoder.encode(text)
}

/** Sign a JSON value; the signature is base64url text. */
export async function signJson(identity: Identity, value: unknown): Promise<string> {
  return bytesToString(await identity.sign(canonicalBytes(value)), 'base64url')
}

/** Verify a base64url signature over a JSON value. Returns false for any malformed input. */
export async function verifyJson(publicKey: string, value: unknown, signature: string): Promise<boolean> {
  try {
    const key = publicKeyFromRaw(fromString(toPublicKeyString(publicKey).slice(PREFIX.length), 'base64url'))
    return await key.verify(canonicalBytes(value), fromString(signature, 'base64url'))
  } catch {
    return false
  }
}
