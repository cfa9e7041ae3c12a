/**
 * The signed records of the registry doc and their schemas. Every record is a
 * payload signed by its author's identity key (canonical JSON, RFC 8785), with
 * the signature next to it; readers verify against the author named in the map
 * key, so nobody can write under another author.
 */
import * as v from 'valibot'

/** An agent id: 1–64 of letters, digits, `.`, `_`, `-`, starting with a letter or digit. */
export const AgentIdSchema = v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'an agent id is 1–64 letters, digits, ".", "_" or "-"'))
/** `ed25519:` + base64url of 32 bytes. */
export const PublicKeySchema = v.pipe(v.string(), v.regex(/^ed25519:[A-Za-z0-9_-]{43}$/, 'not an ed25519 public key'))
const Sha256 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'moduleSha256 is 64 lowercase hex digits'))
const Signature = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{40,200}$/))
const Version = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(Number.MAX_SAFE_INTEGER))
const Time = v.pipe(v.number(), v.minValue(0))
/** A peer id as libp2p prints it. */
export const PeerIdSchema = v.pipe(v.string(), v.regex(/^[1-9A-HJ-NP-Za-km-z]{20,80}$|^[a-z0-9][a-z0-9-]{0,63}$/, 'not a peer id'))

/** The manifest: any JSON object (the runtime defines its fields; `capabilities` is read here). */
export const ManifestSchema = v.record(v.string(), v.unknown())

/** What an author signs to publish or update an agent. */
export const EntryPayloadSchema = v.object({
  kind: v.literal('zerostate/registry-entry/1'),
  id: AgentIdSchema,
  author: PublicKeySchema,
  manifest: ManifestSchema,
  moduleSha256: Sha256,
  version: Version,
  publishedAt: Time
})
/** A hashcash stamp over the entry's signature (`publish-work.ts`): base36, at most 16 characters. */
export const WorkStampSchema = v.pipe(v.string(), v.regex(/^[0-9a-z]{1,16}$/, 'not a work stamp'))
/** A stored entry record: payload + signature + the proof of work over the signature (the cost of publishing). */
export const EntryRecordSchema = v.object({ ...EntryPayloadSchema.entries, signature: Signature, work: WorkStampSchema })
/** A stored, signed registry entry. */
export type EntryRecord = v.InferOutput<typeof EntryRecordSchema>

/** What an author signs to retract an agent (hides versions ≤ `version`). */
export const RetractionPayloadSchema = v.object({
  kind: v.literal('zerostate/registry-retraction/1'),
  id: AgentIdSchema,
  author: PublicKeySchema,
  version: Version,
  retractedAt: Time
})
/** A stored retraction: payload + signature. */
export const RetractionRecordSchema = v.object({ ...RetractionPayloadSchema.entries, signature: Signature })
/** A stored, signed retraction. */
export type RetractionRecord = v.InferOutput<typeof RetractionRecordSchema>

/** A peer's summary of how an agent performed for it. */
export const ReputationPayloadSchema = v.object({
  kind: v.literal('zerostate/reputation/1'),
  publisher: PublicKeySchema,
  /** The entry's key, `author/id`. */
  subject: v.pipe(v.string(), v.maxLength(200)),
  score: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
  successes: v.pipe(v.number(), v.integer(), v.minValue(0)),
  failures: v.pipe(v.number(), v.integer(), v.minValue(0)),
  updatedAt: Time
})
/** A stored reputation record: payload + signature. */
export const ReputationRecordSchema = v.object({ ...ReputationPayloadSchema.entries, signature: Signature })
/** A stored, signed reputation record. */
export type ReputationRecord = v.InferOutput<typeof ReputationRecordSchema>

/** Input of `registry.publish`. */
export const PublishInputSchema = v.object({
  id: AgentIdSchema,
  manifest: ManifestSchema,
  moduleSha256: Sha256,
  holders: v.optional(v.array(PeerIdSchema), [])
})
/** Input of `registry.publish` (holders default to none). */
export type PublishInput = v.InferInput<typeof PublishInputSchema>

/** Input of `registry.publishReputation`. */
export const ReputationInputSchema = v.object({
  /** Entry key `author/id`, or a bare id of this profile's own agent. */
  subject: v.pipe(v.string(), v.maxLength(200)),
  score: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
  successes: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 0),
  failures: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 0)
})
/** Input of `registry.publishReputation`. */
export type ReputationInput = v.InferInput<typeof ReputationInputSchema>

/** A verified registry entry as readers see it. */
export interface RegistryEntry {
  /** `author/id`: unique across the mesh. */
  key: string
  id: string
  author: string
  manifest: Record<string, unknown>
  moduleSha256: string
  version: number
  publishedAt: number
  signature: string
  /** The proof-of-work stamp over `signature`. */
  work: string
  /** Peer ids that said they hold the module bytes (hints; bytes are checked against moduleSha256). */
  holders: string[]
  /** Mean score (0–1) of reputation records by other publishers, if any. */
  reputation?: number
  /** Number of reputation records counted. */
  ratings: number
}

/** Filter of `registry.list`. */
export interface RegistryFilter {
  capability?: string
  author?: string
  minReputation?: number
  /** Case-insensitive match on id, manifest.name and manifest.description. */
  text?: string
}

/** `author/id` */
export function entryKey(author: string, id: string): string {
  return `${author}/${id}`
}
