/**
 * Signed records of shared memory. A namespace record (in the synced
 * `memory-index` doc, map `owned`, keyed `owner/name`) is signed by the
 * namespace's owner: its mode, its writers and, when encrypted, the salt and the
 * key-check value. An entry record (in the namespace's doc, map `kv`, keyed
 * `writer/slot`) is signed by its writer and names its namespace, so it cannot be
 * replayed into another one. Map keys name the signer, as the registry's do, so
 * nobody can write under someone else's key whatever order merges happen in.
 */
import * as v from 'valibot'
import { PublicKeySchema } from './registry-schema.ts'
import { NAMESPACE_RE } from './constants.ts'

/** Writers list entry meaning "anyone". */
export const ANYONE = '*'

const Signature = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{40,200}$/))
const Version = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(Number.MAX_SAFE_INTEGER))
const Time = v.pipe(v.number(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER))
const B64 = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,128}$/))
/** Writers: public keys, or `'*'` for anyone; at most 256. */
export const WritersSchema = v.pipe(v.array(v.union([PublicKeySchema, v.literal(ANYONE)])), v.maxLength(256))

/** What an owner signs to create a namespace or change its writers. */
export const NamespacePayloadSchema = v.object({
  kind: v.literal('zerostate/namespace/1'),
  name: v.pipe(v.string(), v.regex(NAMESPACE_RE)),
  owner: PublicKeySchema,
  mode: v.picklist(['shared', 'encrypted']),
  createdAt: Time,
  version: Version,
  writers: WritersSchema,
  /** Encrypted only: per-namespace salt (PBKDF2 and HKDF), PBKDF2 iterations, key-check value. */
  salt: v.optional(B64),
  iterations: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1000), v.maxValue(10_000_000))),
  check: v.optional(B64)
})
/** A stored namespace record: payload + signature. */
export const NamespaceRecordSchema = v.object({ ...NamespacePayloadSchema.entries, signature: Signature })
/** A stored, signed namespace record. */
export type NamespaceRecord = v.InferOutput<typeof NamespaceRecordSchema>

/** What a writer signs to set (or, with `value: null`, delete) a key. */
export const MemoryEntryPayloadSchema = v.object({
  kind: v.literal('zerostate/memory-entry/1'),
  /** The namespace: `owner/name`. */
  ns: v.pipe(v.string(), v.maxLength(200)),
  /** The key name (shared) or its HMAC slot (encrypted). */
  key: v.pipe(v.string(), v.minLength(1), v.maxLength(512)),
  writer: PublicKeySchema,
  t: Time,
  /** JSON text (shared), sealed text (encrypted), or null (deleted). */
  value: v.nullable(v.string())
})
/** A stored entry: payload + signature. */
export const MemoryEntrySchema = v.object({ ...MemoryEntryPayloadSchema.entries, signature: Signature })
/** A stored, signed memory entry. */
export type MemoryEntry = v.InferOutput<typeof MemoryEntrySchema>

/** Index map key of a namespace record. */
export function namespaceKey(owner: string, name: string): string {
  return `${owner}/${name}`
}
