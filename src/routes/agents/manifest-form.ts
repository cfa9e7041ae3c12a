/**
 * The publish form's fields ⇄ a manifest. The form checks what only it can get
 * wrong (JSON text, numbers), then the manifest schema's own per-field sentences
 * (`checkManifest`), so every faulty field gets its message next to it; the API
 * checks again and its `issues` map back the same way.
 */
import { checkManifest, type AgentManifest, type ManifestIssue, type UnsignedManifest } from '$lib/index'
import { splitList } from '$lib/ui/format'

/** A number input's value: Svelte binds a number, or null when empty; text before the user types. */
type NumberField = string | number | null

/** The form's fields, as the user typed them. */
export interface ManifestFields {
  name: string
  version: string
  description: string
  capabilities: string
  abi: 'wasi-preview1' | 'json-v1'
  price: NumberField
  inputSchema: string
  outputSchema: string
  memoryMiB: NumberField
  timeMs: NumberField
}

/** An empty form. */
export function emptyFields(): ManifestFields {
  return {
    name: '',
    version: '1.0.0',
    description: '',
    capabilities: '',
    abi: 'json-v1',
    price: '',
    inputSchema: '',
    outputSchema: '',
    memoryMiB: '',
    timeMs: ''
  }
}

function schemaText(value: unknown): string {
  return value != null && typeof value === 'object' ? JSON.stringify(value, null, 2) : ''
}

function str(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : fallback
}

/** Fill the form from a dropped manifest (any shape: unknown fields are ignored). */
export function fieldsFromManifest(m: Record<string, unknown>): ManifestFields {
  const limits = (m.limits ?? {}) as Record<string, unknown>
  return {
    name: str(m.name),
    version: str(m.version, '1.0.0'),
    description: str(m.description),
    capabilities: Array.isArray(m.capabilities) ? m.capabilities.map(String).join(', ') : '',
    abi: m.abi === 'wasi-preview1' ? 'wasi-preview1' : 'json-v1',
    price: str(m.price),
    inputSchema: schemaText(m.input ?? m.inputSchema),
    outputSchema: schemaText(m.output ?? m.outputSchema),
    memoryMiB: str(limits.memoryMiB),
    timeMs: str(limits.timeMs)
  }
}

/** A sentence per form field that needs a fix. */
export type FieldErrors = Partial<Record<keyof ManifestFields, string>>

/** The form's labels, for the summary next to the button (as on the form). */
export const FIELD_LABELS: Record<keyof ManifestFields, string> = {
  name: 'Name',
  version: 'Version',
  description: 'Description',
  capabilities: 'Capabilities',
  abi: 'ABI',
  price: 'Price',
  inputSchema: 'Input JSON Schema',
  outputSchema: 'Output JSON Schema',
  memoryMiB: 'Memory limit',
  timeMs: 'Time limit'
}

/** Manifest fields (as `checkManifest` names them) → the form field that edits them. */
const FORM_FIELD: Record<string, keyof ManifestFields> = {
  name: 'name',
  version: 'version',
  description: 'description',
  capabilities: 'capabilities',
  abi: 'abi',
  price: 'price',
  input: 'inputSchema',
  output: 'outputSchema',
  limits: 'memoryMiB',
  'limits.memoryMiB': 'memoryMiB',
  'limits.timeMs': 'timeMs'
}

/** Map the manifest's issues (from `checkManifest` or an `InvalidManifestError`) onto the form; the rest is returned apart. */
export function issuesToFields(issues: readonly ManifestIssue[]): { fields: FieldErrors; other: string[] } {
  const fields: FieldErrors = {}
  const other: string[] = []
  for (const i of issues) {
    const f = FORM_FIELD[i.field]
    if (f == null) other.push(i.message)
    else fields[f] = fields[f] == null ? i.message : `${fields[f]} ${i.message}`
  }
  return { fields, other }
}

function schemaOf(text: string, label: string): { value?: Record<string, unknown>; error?: string } {
  if (text.trim() === '') return {}
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return { error: `The ${label} schema is not valid JSON: ${(err as Error).message}.` }
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value))
    return { error: `The ${label} schema must be a JSON object, e.g. {"type": "string"}.` }
  return { value: value as Record<string, unknown> }
}

function asText(value: NumberField | undefined): string {
  return value == null ? '' : String(value).trim()
}

function positiveInt(field: NumberField, label: string): { value?: number; error?: string } {
  const text = asText(field)
  if (text === '') return {}
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1) return { error: `The ${label} must be a whole number of at least 1.` }
  return { value: n }
}

/**
 * Build the unsigned manifest from the form and check every field: the manifest
 * when all are right, else a sentence for each faulty field (all of them).
 */
export function checkFields(f: ManifestFields): { ok: true; manifest: UnsignedManifest } | { ok: false; errors: FieldErrors; other: string[] } {
  const errors: FieldErrors = {}
  const priceText = asText(f.price)
  // No price is a free agent (the manifest's default is 0).
  const price = priceText === '' ? undefined : Number(priceText)
  if (price != null && !Number.isFinite(price)) errors.price = 'The price must be a number of credits per call, e.g. 0 or 0.5.'
  const input = schemaOf(f.inputSchema, 'input')
  const output = schemaOf(f.outputSchema, 'output')
  const memoryMiB = positiveInt(f.memoryMiB, 'memory limit')
  const timeMs = positiveInt(f.timeMs, 'time limit')
  if (input.error) errors.inputSchema = input.error
  if (output.error) errors.outputSchema = output.error
  if (memoryMiB.error) errors.memoryMiB = memoryMiB.error
  if (timeMs.error) errors.timeMs = timeMs.error
  const manifest: UnsignedManifest = {
    name: f.name.trim(),
    version: f.version.trim(),
    description: f.description.trim(),
    capabilities: splitList(f.capabilities),
    abi: f.abi
  }
  if (price != null && Number.isFinite(price)) manifest.price = price
  if (input.value != null) manifest.input = input.value
  if (output.value != null) manifest.output = output.value
  if (memoryMiB.value != null || timeMs.value != null) {
    manifest.limits = { ...(memoryMiB.value != null ? { memoryMiB: memoryMiB.value } : {}), ...(timeMs.value != null ? { timeMs: timeMs.value } : {}) }
  }
  const { fields, other } = issuesToFields(checkManifest(manifest))
  for (const [k, message] of Object.entries(fields) as Array<[keyof ManifestFields, string]>) errors[k] ??= message
  if (Object.keys(errors).length > 0 || other.length > 0) return { ok: false, errors, other }
  return { ok: true, manifest }
}

/** Build the unsigned manifest from the form; throws an Error with the first field's sentence. */
export function manifestFromFields(f: ManifestFields): UnsignedManifest {
  const r = checkFields(f)
  if (r.ok) return r.manifest
  throw new Error([...Object.values(r.errors), ...r.other][0])
}

/** A dropped manifest that is already signed (published as it is, not re-signed). */
export function signedManifest(m: Record<string, unknown>): AgentManifest | undefined {
  return typeof m.signature === 'string' && typeof m.author === 'string' ? (m as unknown as AgentManifest) : undefined
}
