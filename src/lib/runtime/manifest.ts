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
import { LlmPromptSpecSchema } from './llm-prompt.ts'
import { BUILTIN_TOOL_NAMES } from './tool-builtins.ts'

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
  abi: v.picklist(AGENT_ABIS, 'the abi must be "wasi-preview1", "json-v1" or "llm-prompt"'),
  input: v.optional(JsonSchemaObject),
  output: v.optional(JsonSchemaObject),
  /** Credits per call; a free agent may leave it out (0). */
  price: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0, 'the price cannot be negative')), 0),
  limits: v.optional(AgentLimitsSchema),
  /** The prompt, model and generation of an `llm-prompt` agent (required for that ABI, refused for the others). */
  llm: v.optional(LlmPromptSpecSchema),
  /** The tools the agent calls (issue 14); a call to any other is refused. The donor and the task must grant them too. */
  tools: v.optional(
    v.pipe(
      v.array(v.picklist(BUILTIN_TOOL_NAMES)),
      v.maxLength(BUILTIN_TOOL_NAMES.length),
      v.check((list) => new Set(list).size === list.length, 'each tool once')
    )
  ),
  author: v.pipe(v.string(), v.regex(/^ed25519:[A-Za-z0-9_-]{43}$/, 'the author must be an "ed25519:…" public key'))
})

/** A signed agent manifest. */
export const AgentManifestSchema = v.object({
  ...UnsignedManifestSchema.entries,
  signature: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{86}$/, 'the signature must be a base64url Ed25519 signature'))
})

/** A signed agent manifest. */
export type AgentManifest = v.InferOutput<typeof AgentManifestSchema>
/** A manifest before signing (`author` is filled in by `signPackage`; `price` defaults to 0). */
export type UnsignedManifest = Omit<v.InferOutput<typeof UnsignedManifestSchema>, 'author' | 'price'> & { author?: string; price?: number }

/** A package ready to run: id, signed manifest and module bytes. */
export interface AgentPackage {
  id: AgentId
  manifest: AgentManifest
  wasm: Uint8Array
}

/** One failing manifest field (`name`, `capabilities`, `limits.memoryMiB`, …) and what to do about it. */
export interface ManifestIssue {
  field: string
  message: string
}

const EXAMPLE_NAME = 'e.g. text-summarizer'
const EXAMPLE_CAPABILITY = 'e.g. text-summarization'

/** A sentence per field, from the valibot issue (its type says which check failed). */
function sentence(field: string, issue: v.BaseIssue<unknown>): string {
  const type = issue.type
  const item = issue.path != null && issue.path.length > 1 ? issue.path[issue.path.length - 1]?.value : undefined
  switch (field) {
    case 'name':
      if (type === 'min_length') return `Give the agent a name: lowercase letters, digits and dashes, ${EXAMPLE_NAME}.`
      if (type === 'max_length') return 'The name is longer than 64 characters: shorten it.'
      if (type === 'regex') return `The name must be lowercase kebab-case (letters, digits and single dashes), ${EXAMPLE_NAME}.`
      return `The name must be text, ${EXAMPLE_NAME}.`
    case 'version':
      return 'The version must be semver: three numbers such as 1.0.0 (optionally -beta.1).'
    case 'description':
      return type === 'max_length' ? 'The description is longer than 2,000 characters: shorten it.' : 'The description must be text.'
    case 'capabilities':
      if (type === 'array') return `Capabilities must be a list of names, ${EXAMPLE_CAPABILITY}.`
      if (type === 'min_length' && issue.path?.length === 1) return `Give at least one capability (what the agent does), ${EXAMPLE_CAPABILITY}.`
      if (type === 'max_length' && issue.path?.length === 1) return 'An agent offers at most 32 capabilities.'
      if (type === 'max_length') return `Capability "${String(item).slice(0, 80)}…" is longer than 64 characters.`
      if (type === 'regex') return `Capability "${String(item).slice(0, 64)}" must be lowercase kebab-case, ${EXAMPLE_CAPABILITY}.`
      return `Each capability must be text, ${EXAMPLE_CAPABILITY}.`
    case 'abi':
      return 'The ABI must be "wasi-preview1" (a WASI command), "json-v1" or "llm-prompt" (a prompt for a language model).'
    case 'llm':
      return issue.message.startsWith('Invalid') ? 'The llm settings must be an object such as {"prompt": "Summarize: {{input}}"}.' : issue.message
    case 'llm.prompt':
      return type === 'includes'
        ? 'The prompt must use the input: put {{input}} (or {{input.field}}) where it goes.'
        : `The prompt must be text of 1 to ${16_000} characters.`
    case 'llm.model':
      return 'The model requirements must look like {"families": ["llama"], "minContext": 2048}: families and names are lists of text, minContext a whole number.'
    case 'llm.generation':
      return 'The generation settings must look like {"maxTokens": 256, "temperature": 0.7}: maxTokens 1-4096, temperature 0-2, topP 0-1, stop a list of up to 8 texts.'
    case 'tools':
      if (type === 'array') return `The tools must be a list of tool names, e.g. ["kv.scratch", "memory.get"].`
      if (type === 'max_length' || type === 'check') return `Declare each tool once (there are ${BUILTIN_TOOL_NAMES.length}).`
      return `Tool "${String(item ?? issue.input).slice(0, 64)}" does not exist: the tools are ${BUILTIN_TOOL_NAMES.join(', ')}.`
    case 'input':
    case 'output':
      return `The ${field} schema must be a JSON object, e.g. {"type": "string"}.`
    case 'price':
      return type === 'min_value'
        ? 'The price cannot be negative: give the credits per call, or 0 (or nothing) for a free agent.'
        : 'The price must be a number of credits per call, e.g. 0 or 0.5.'
    case 'limits':
      return 'The limits must be an object such as {"memoryMiB": 64, "timeMs": 10000}.'
    case 'limits.memoryMiB':
      return 'The memory limit must be a whole number of MiB from 1 to 4096.'
    case 'limits.timeMs':
      return 'The time limit must be a whole number of milliseconds, at least 1.'
    case 'author':
      return 'The author must be an "ed25519:…" public key (publishing fills it in with yours).'
    case 'signature':
      return 'The signature must be a base64url Ed25519 signature (publishing signs it for you).'
    default:
      return issue.message
  }
}

/** Each failing field once (the first of its issues), in schema order, with a sentence. */
export function manifestIssues(issues: readonly v.BaseIssue<unknown>[]): ManifestIssue[] {
  const out = new Map<string, string>()
  for (const issue of issues) {
    const keys = (issue.path ?? []).map((p) => String(p.key))
    // Nested fields are named down to limits' own keys; capability items by the list.
    const field = (keys[0] === 'limits' || keys[0] === 'llm') && keys.length > 1 ? `${keys[0]}.${keys[1]}` : (keys[0] ?? '')
    if (field === '' && issue.type === 'object') {
      out.set('', 'The manifest must be a JSON object with name, version, capabilities and abi.')
      continue
    }
    if (!out.has(field)) out.set(field, sentence(field, issue))
    else if (field === 'capabilities') {
      // Name every faulty capability, not only the first.
      const more = sentence(field, issue)
      if (!out.get(field)?.includes(more)) out.set(field, `${out.get(field)} ${more}`)
    }
  }
  return [...out].map(([field, message]) => ({ field, message }))
}

function invalid(issues: readonly v.BaseIssue<unknown>[]): InvalidManifestError {
  const list = manifestIssues(issues)
  return new InvalidManifestError(`the manifest is not valid. ${list.map((i) => i.message).join(' ')}`, { issues: list })
}

const FieldsSchema = v.omit(UnsignedManifestSchema, ['author'])

/** The rule across fields: `llm` is required for the `llm-prompt` ABI and refused for the WebAssembly ones. */
function kindIssues(m: { abi: string; llm?: unknown; limits?: { memoryMiB?: number } }): ManifestIssue[] {
  if (m.abi === 'llm-prompt' && m.llm == null) {
    return [{ field: 'llm', message: 'An llm-prompt agent needs "llm" with its prompt, e.g. {"prompt": "Summarize: {{input}}"}.' }]
  }
  if (m.abi !== 'llm-prompt' && m.llm != null)
    return [{ field: 'llm', message: `Only an llm-prompt agent has "llm" settings; a ${m.abi} agent runs its module.` }]
  if (m.abi === 'llm-prompt' && m.limits?.memoryMiB != null)
    return [{ field: 'limits.memoryMiB', message: 'An llm-prompt agent has no module memory to limit: leave memoryMiB out.' }]
  return []
}

/**
 * Check what a publisher writes (every field but `author` and `signature`): each
 * failing field with a sentence, all of them; empty when the manifest is right.
 */
export function checkManifest(value: unknown): ManifestIssue[] {
  const res = v.safeParse(FieldsSchema, value)
  return res.success ? kindIssues(res.output) : manifestIssues(res.issues)
}

function assertKind(m: { abi: string; llm?: unknown; limits?: { memoryMiB?: number } }): void {
  const issues = kindIssues(m)
  if (issues.length > 0) throw new InvalidManifestError(`the manifest is not valid. ${issues.map((i) => i.message).join(' ')}`, { issues })
}

/** Throw `InvalidManifestError` (with `issues`) unless `checkManifest(value)` is empty. */
export function assertManifest(value: unknown): void {
  const res = v.safeParse(FieldsSchema, value)
  if (!res.success) throw invalid(res.issues)
  assertKind(res.output)
}

/** Validate a signed manifest's shape. Throws `InvalidManifestError` with what is wrong. */
export function parseManifest(value: unknown): AgentManifest {
  const res = v.safeParse(AgentManifestSchema, value)
  if (!res.success) throw invalid(res.issues)
  assertKind(res.output)
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
  if (!res.success) throw invalid(res.issues)
  assertKind(res.output)
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
