/**
 * Agent packages: the manifest schema (the single source of its type), the
 * content-derived agent id, and signing / verification of a package.
 *
 * The signed value and the id are both over `{ manifest, moduleSha256 }` where
 * `manifest` is the manifest without its `signature`: the same bytes always give
 * the same id, and a signature covers exactly what the id names.
 */
import * as v from 'valibot'
import { canonicalBytes, signJson, verifyJson, type Identity } from '../core/index.ts'
import { AGENT_ABIS, MAX_MANIFEST_BYTES, MAX_MODULE_BYTES } from './constants.ts'
import { InvalidManifestError, InvalidModuleError, SignatureMismatchError } from './errors.ts'

const KEBAB = /^[a-z0-9]+(?:-[a-z0-9]+)*$/
const HEX64 = /^[0-9a-f]{64}$/

/** An agent's content id: sha-256 hex of its canonical manifest (minus signature) and module hash. */
export type AgentId = string & { readonly __brand: 'AgentId' }

/** Validate and brand an agent id. */
export function toAgentId(value: string): AgentId {
  if (!HEX64.test(value)) throw new InvalidManifestError(`"${value.slice(0, 80)}" is not an agent id (64 lowercase hex characters)`)
  return value as AgentId
}

const JsonSchemaObject = v.record(v.string(), v.unknown())

/** Limits an agent asks for; the runtime may lower them, never raise them. */
export const AgentLimitsSchema = v.object({
  memoryMiB: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(4096))),
  timeMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)))
})

/** Everything in a manifest except the signature. */
export const UnsignedManifestSchema = v.object({
  name: v.pipe(v.string(), v.minLength(1), v.maxLength(64), v.regex(KEBAB, 'the name must be lowercase kebab-case')),
  version: v.pipe(v.string(), v.regex(/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/, 'the version must be semver (1.2.3)')),
  description: v.pipe(v.string(), v.maxLength(2000)),
  capabilities: v.pipe(
    v.array(v.pipe(v.string(), v.maxLength(64), v.regex(KEBAB, 'capabilities are lowercase kebab-case, e.g. text-summarization'))),
    v.minLength(1, 'an agent needs at least one capability'),
    v.maxLength(32)
  ),
  abi: v.picklist(AGENT_ABIS, 'the abi must be "wasi-preview1" or "json-v1"'),
  input: v.optional(JsonSchemaObject),
  output: v.optional(JsonSchemaObject),
  price: v.pipe(v.number(), v.finite(), v.minValue(0, 'the price cannot be negative')),
  limits: v.optional(AgentLimitsSchema),
  author: v.pipe(v.string(), v.regex(/^ed25519:[A-Za-z0-9_-]{43}$/, 'the author must be an "ed25519:…" public key'))
})

/** A signed agent manifest. */
export const AgentManifestSchema = v.object({
  ...UnsignedManifestSchema.entries,
  signature: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{86}$/, 'the signature must be a base64url Ed25519 signature'))
})

/** A signed agent manifest. */
export type AgentManifest = v.InferOutput<typeof AgentManifestSchema>
/** A manifest before signing (`author` is filled in by `signPackage`). */
export type UnsignedManifest = Omit<v.InferOutput<typeof UnsignedManifestSchema>, 'author'> & { author?: string }

/** A package ready to run: id, signed manifest and module bytes. */
export interface AgentPackage {
  id: AgentId
  manifest: AgentManifest
  wasm: Uint8Array
}

function issuesText(issues: v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 3)
    .map((i) => {
      const path = i.path?.map((p) => String(p.key)).join('.')
      return path ? `${path}: ${i.message}` : i.message
    })
    .join('; ')
}

/** Validate a signed manifest's shape. Throws `InvalidManifestError` with what is wrong. */
export function parseManifest(value: unknown): AgentManifest {
  const res = v.safeParse(AgentManifestSchema, value)
  if (!res.success) throw new InvalidManifestError(`the manifest is not valid: ${issuesText(res.issues)}`)
  if (canonicalBytes(res.output).byteLength > MAX_MANIFEST_BYTES) throw new InvalidManifestError(`the manifest is larger than ${MAX_MANIFEST_BYTES} bytes`)
  return res.output
}

function hex(bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += b.toString(16).padStart(2, '0')
  return s
}

/** sha-256 of bytes as lowercase hex. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)
  return hex(new Uint8Array(digest))
}

function withoutSignature(manifest: AgentManifest | v.InferOutput<typeof UnsignedManifestSchema>): v.InferOutput<typeof UnsignedManifestSchema> {
  const { signature: _drop, ...rest } = manifest as AgentManifest
  return rest
}

/** The content id of a package: sha-256 hex of `canonicalBytes({ manifest (minus signature), moduleSha256 })`. */
export async function agentIdOf(manifest: AgentManifest | v.InferOutput<typeof UnsignedManifestSchema>, wasm: Uint8Array): Promise<AgentId> {
  const moduleSha256 = await sha256Hex(wasm)
  return (await sha256Hex(canonicalBytes({ manifest: withoutSignature(manifest), moduleSha256 }))) as AgentId
}

function checkSize(wasm: Uint8Array): void {
  if (wasm.byteLength > MAX_MODULE_BYTES) {
    throw new InvalidModuleError(`the module is ${(wasm.byteLength / 1048576).toFixed(1)} MiB; the limit is ${MAX_MODULE_BYTES / 1048576} MiB`)
  }
}

/** Sign a package as `identity`: sets `author`, returns the signed manifest and its id. */
export async function signPackage(identity: Identity, unsigned: UnsignedManifest, wasm: Uint8Array): Promise<{ id: AgentId; manifest: AgentManifest }> {
  checkSize(wasm)
  const res = v.safeParse(UnsignedManifestSchema, { ...unsigned, author: identity.publicKey })
  if (!res.success) throw new InvalidManifestError(`the manifest is not valid: ${issuesText(res.issues)}`)
  const body = res.output
  const moduleSha256 = await sha256Hex(wasm)
  const signature = await signJson(identity, { manifest: body, moduleSha256 })
  const manifest = parseManifest({ ...body, signature })
  return { id: await agentIdOf(body, wasm), manifest }
}

/**
 * Check a package: manifest schema, size cap, and that the author's signature
 * covers this manifest and these module bytes. Returns the package's id.
 * Throws `InvalidManifestError`, `InvalidModuleError` or `SignatureMismatchError`.
 */
export async function verifyPackage(manifest: unknown, wasm: Uint8Array, expectedId?: string): Promise<AgentId> {
  const parsed = parseManifest(manifest)
  checkSize(wasm)
  const body = withoutSignature(parsed)
  const moduleSha256 = await sha256Hex(wasm)
  if (!(await verifyJson(parsed.author, { manifest: body, moduleSha256 }, parsed.signature))) {
    throw new SignatureMismatchError(
      `the signature of "${parsed.name}" does not match its manifest and module (sha-256 ${moduleSha256.slice(0, 12)}…) for author ${parsed.author}`
    )
  }
  const id = (await sha256Hex(canonicalBytes({ manifest: body, moduleSha256 }))) as AgentId
  if (expectedId != null && expectedId !== id) {
    throw new SignatureMismatchError(`the package claims id ${expectedId.slice(0, 12)}… but its content gives ${id.slice(0, 12)}…`)
  }
  return id
}
