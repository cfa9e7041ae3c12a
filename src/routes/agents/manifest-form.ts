/**
 * The publish form's fields ⇄ a manifest. Checks here only catch what the form
 * itself can get wrong (JSON, numbers); the API validates the manifest and its
 * error sentence is shown as it is.
 */
import type { AgentManifest, UnsignedManifest } from '$lib/index'
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
    price: '0',
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
    price: str(m.price, '0'),
    inputSchema: schemaText(m.input ?? m.inputSchema),
    outputSchema: schemaText(m.output ?? m.outputSchema),
    memoryMiB: str(limits.memoryMiB),
    timeMs: str(limits.timeMs)
  }
}

function schemaOf(text: string, label: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new Error(`The ${label} schema is not valid JSON: ${(err as Error).message}`)
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`The ${label} schema must be a JSON object, e.g. {"type": "string"}`)
  return value as Record<string, unknown>
}

function asText(value: NumberField | undefined): string {
  return value == null ? '' : String(value).trim()
}

function positiveInt(field: NumberField, label: string): number | undefined {
  const text = asText(field)
  if (text === '') return undefined
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1) throw new Error(`The ${label} must be a whole number of at least 1`)
  return n
}

/** Build the unsigned manifest from the form; throws an Error with a sentence for the user. */
export function manifestFromFields(f: ManifestFields): UnsignedManifest {
  const priceText = asText(f.price)
  const price = Number(priceText === '' ? '0' : priceText)
  if (!Number.isFinite(price)) throw new Error('The price must be a number of credits per call, e.g. 0 or 0.5')
  const input = schemaOf(f.inputSchema, 'input')
  const output = schemaOf(f.outputSchema, 'output')
  const memoryMiB = positiveInt(f.memoryMiB, 'memory limit')
  const timeMs = positiveInt(f.timeMs, 'time limit')
  const manifest: UnsignedManifest = {
    name: f.name.trim(),
    version: f.version.trim(),
    description: f.description.trim(),
    capabilities: splitList(f.capabilities),
    abi: f.abi,
    price
  }
  if (input != null) manifest.input = input
  if (output != null) manifest.output = output
  if (memoryMiB != null || timeMs != null) {
    manifest.limits = { ...(memoryMiB != null ? { memoryMiB } : {}), ...(timeMs != null ? { timeMs } : {}) }
  }
  return manifest
}

/** A dropped manifest that is already signed (published as it is, not re-signed). */
export function signedManifest(m: Record<string, unknown>): AgentManifest | undefined {
  return typeof m.signature === 'string' && typeof m.author === 'string' ? (m as unknown as AgentManifest) : undefined
}
