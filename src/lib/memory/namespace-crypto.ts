/**
 * AES-GCM for encrypted namespaces (WebCrypto). Values get a random 96-bit IV.
 * Key names are encrypted deterministically (IV = first 12 bytes of
 * SHA-256("zs-key-name:" + name)) so `set(ns, key)` finds the same slot on every
 * peer without revealing the name; equal names give equal ciphertexts, which only
 * shows that a key was rewritten — nothing a peer without the key learns more.
 */
import { fromString, toString as bytesToString } from 'uint8arrays'
import { MissingKeyError } from './errors.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()

/** Import a shared secret: a CryptoKey (AES-GCM) as is, or a string (base64url raw 32 bytes, or any passphrase hashed with SHA-256). */
export async function importNamespaceKey(key: CryptoKey | string): Promise<CryptoKey> {
  if (typeof key !== 'string') {
    if (key.algorithm.name !== 'AES-GCM') throw new MissingKeyError('an encrypted namespace needs an AES-GCM key')
    return key
  }
  let raw: Uint8Array
  try {
    raw = fromString(key, 'base64url')
  } catch {
    raw = new Uint8Array(0)
  }
  if (raw.byteLength !== 32) raw = new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(`zs-namespace-key:${key}`)))
  return await crypto.subtle.importKey('raw', raw as Uint8Array<ArrayBuffer>, 'AES-GCM', false, ['encrypt', 'decrypt'])
}

/** A fresh random key as base64url text, to share out of band. */
export function generateNamespaceKey(): string {
  return bytesToString(crypto.getRandomValues(new Uint8Array(32)), 'base64url')
}

async function seal(key: CryptoKey, iv: Uint8Array<ArrayBuffer>, plain: Uint8Array<ArrayBuffer>): Promise<string> {
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, plain))
  const out = new Uint8Array(iv.byteLength + ct.byteLength)
  out.set(iv)
  out.set(ct, iv.byteLength)
  return bytesToString(out, 'base64url')
}

async function open(key: CryptoKey, sealed: string): Promise<Uint8Array> {
  const bytes = fromString(sealed, 'base64url')
  if (bytes.byteLength < 12 + 16) throw new MissingKeyError('ciphertext too short')
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: bytes.slice(0, 12) }, key, bytes.slice(12)))
  } catch (err) {
    throw new MissingKeyError('the namespace key does not decrypt this value (wrong key?)', { cause: err })
  }
}

/** Deterministic ciphertext of a key name. */
export async function sealName(key: CryptoKey, name: string): Promise<string> {
  const iv = new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(`zs-key-name:${name}`))).slice(0, 12)
  return `n.${await seal(key, iv, enc.encode(name))}`
}

/** Decrypt a key name. */
export async function openName(key: CryptoKey, sealed: string): Promise<string> {
  if (!sealed.startsWith('n.')) throw new MissingKeyError('not an encrypted key name')
  return dec.decode(await open(key, sealed.slice(2)))
}

/** Encrypt a JSON value. */
export async function sealValue(key: CryptoKey, json: string): Promise<string> {
  return await seal(key, crypto.getRandomValues(new Uint8Array(12)), enc.encode(json))
}

/** Decrypt a JSON value's text. */
export async function openValue(key: CryptoKey, sealed: string): Promise<string> {
  return dec.decode(await open(key, sealed))
}
