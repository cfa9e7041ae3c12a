/**
 * Keys of encrypted namespaces (WebCrypto only). One secret per namespace, shared
 * out of band: 32 random bytes as base64url, or a passphrase stretched with
 * PBKDF2-SHA-256 under the namespace's random salt (OWASP 2023: 600,000
 * iterations). HKDF splits it into three keys:
 *  - `enc` (AES-GCM): a stored value is `{ name, value }` sealed under a fresh
 *    random 96-bit IV, so neither IVs nor ciphertexts repeat;
 *  - `slot` (HMAC-SHA-256): the map slot of a key name is HMAC(name), so every
 *    holder of the key finds the same slot while a peer with only the doc cannot
 *    confirm a guessed name (issue 10 item 9: the old IV was SHA-256 of the name);
 *  - `check` (HMAC-SHA-256): a key-check value stored in the namespace's signed
 *    record, so a wrong key is refused before anything is written (item 10).
 */
import { fromString, toString as bytesToString } from 'uint8arrays'
import { MissingKeyError, WrongKeyError } from './errors.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()

/** PBKDF2 iterations for passphrases (OWASP 2023 for PBKDF2-HMAC-SHA256). */
export const DEFAULT_PBKDF2_ITERATIONS = 600_000

/** The keys of one encrypted namespace. */
export interface NamespaceKeys {
  readonly enc: CryptoKey
  readonly slot: CryptoKey
  /** The key-check value (base64url) this secret gives for this namespace. */
  readonly check: string
}

/** A fresh random key as base64url text, to share out of band. */
export function generateNamespaceKey(): string {
  return bytesToString(crypto.getRandomValues(new Uint8Array(32)), 'base64url')
}

/** A fresh per-namespace salt (base64url of 16 random bytes). */
export function newSalt(): string {
  return bytesToString(crypto.getRandomValues(new Uint8Array(16)), 'base64url')
}

function rawKeyOf(secret: string): Uint8Array | undefined {
  try {
    const raw = fromString(secret, 'base64url')
    return raw.byteLength === 32 ? raw : undefined
  } catch {
    return undefined
  }
}

function buf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>
}

/** Derive a namespace's keys from its secret, salt and PBKDF2 iteration count. */
export async function deriveNamespaceKeys(secret: string, salt: string, iterations: number): Promise<NamespaceKeys> {
  if (typeof secret !== 'string' || secret.length === 0) throw new MissingKeyError('an encrypted namespace needs its key as text')
  const saltBytes = buf(fromString(salt, 'base64url'))
  let master = rawKeyOf(secret)
  if (master == null) {
    const pass = await crypto.subtle.importKey('raw', buf(enc.encode(secret)), 'PBKDF2', false, ['deriveBits'])
    master = new Uint8Array(await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: saltBytes, iterations }, pass, 256))
  }
  const hkdf = await crypto.subtle.importKey('raw', buf(master), 'HKDF', false, ['deriveKey', 'deriveBits'])
  const info = (label: string) => ({ name: 'HKDF', hash: 'SHA-256', salt: saltBytes, info: buf(enc.encode(`zerostate/namespace/${label}`)) })
  const hmac = { name: 'HMAC', hash: 'SHA-256', length: 256 }
  const [encKey, slotKey, checkKey] = await Promise.all([
    crypto.subtle.deriveKey(info('enc'), hkdf, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']),
    crypto.subtle.deriveKey(info('slot'), hkdf, hmac, false, ['sign']),
    crypto.subtle.deriveKey(info('check'), hkdf, hmac, false, ['sign'])
  ])
  const check = bytesToString(new Uint8Array(await crypto.subtle.sign('HMAC', checkKey, buf(enc.encode('zerostate key check')))), 'base64url')
  return { enc: encKey, slot: slotKey, check }
}

/** Derive and compare with the namespace's stored check value; a mismatch throws {@link WrongKeyError}. */
export async function unlockNamespace(secret: string, salt: string, iterations: number, check: string): Promise<NamespaceKeys> {
  const keys = await deriveNamespaceKeys(secret, salt, iterations)
  if (keys.check !== check) throw new WrongKeyError()
  return keys
}

/** The slot of key name `name`: HMAC under the namespace's slot key (base64url, 128 bits). */
export async function slotOf(keys: NamespaceKeys, name: string): Promise<string> {
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', keys.slot, buf(enc.encode(name))))
  return bytesToString(mac.slice(0, 16), 'base64url')
}

/** Seal `{ name, json }` under a random IV: base64url(iv ‖ ciphertext). */
export async function sealEntry(keys: NamespaceKeys, name: string, json: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12))
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, keys.enc, buf(enc.encode(JSON.stringify([name, json])))))
  const out = new Uint8Array(12 + ct.byteLength)
  out.set(iv)
  out.set(ct, 12)
  return bytesToString(out, 'base64url')
}

/** Open what {@link sealEntry} sealed; throws {@link WrongKeyError} when the key does not fit. */
export async function openEntry(keys: NamespaceKeys, sealed: string): Promise<{ name: string; json: string }> {
  let plain: Uint8Array
  try {
    const bytes = fromString(sealed, 'base64url')
    if (bytes.byteLength < 12 + 16) throw new Error('ciphertext too short')
    plain = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: bytes.slice(0, 12) }, keys.enc, bytes.slice(12)))
  } catch (err) {
    throw new WrongKeyError('a value of this namespace does not decrypt with its key', { cause: err })
  }
  const pair: unknown = JSON.parse(dec.decode(plain))
  if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') throw new WrongKeyError('a decrypted value is malformed')
  return { name: pair[0], json: pair[1] }
}
