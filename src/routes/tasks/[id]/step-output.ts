/** How the task page shows a step's output: text as text, bytes as media (image, audio, video) or a download, lists of records as a table, the rest as fields with the JSON folded. */
import { sniffMedia, type MediaInfo } from './media'

/** A scalar cell or field value as text. */
function cell(v: unknown): string {
  if (v == null) return '—'
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`
  if (Array.isArray(v))
    return v.every((x) => typeof x === 'number') ? `${v.length} ${v.length === 1 ? 'number' : 'numbers'}` : `${v.length} ${v.length === 1 ? 'item' : 'items'}`
  return `${Object.keys(v as object).length} fields`
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return x != null && typeof x === 'object' && !Array.isArray(x) && !(x instanceof Uint8Array)
}

/** The shape a step's output is drawn in. */
export type OutputView =
  | { kind: 'none' }
  | { kind: 'text'; text: string }
  | { kind: 'media'; bytes: Uint8Array; media: MediaInfo }
  | { kind: 'table'; columns: string[]; rows: string[][]; more: number }
  | { kind: 'fields'; fields: Array<[string, string]>; lists: Array<[string, string[]]> }

const MAX_ROWS = 50

/** Choose how to show `value`. The raw JSON is always offered folded beside it (except for plain text). */
export function outputView(value: unknown): OutputView {
  if (value === undefined) return { kind: 'none' }
  if (value instanceof Uint8Array) return { kind: 'media', bytes: value, media: sniffMedia(value) }
  if (value === null || typeof value !== 'object') return { kind: 'text', text: cell(value) }
  if (Array.isArray(value)) {
    if (value.length > 0 && value.every(isRecord)) {
      const columns = [...new Set(value.flatMap((r) => Object.keys(r)))].slice(0, 12)
      return { kind: 'table', columns, rows: value.slice(0, MAX_ROWS).map((r) => columns.map((c) => cell(r[c]))), more: Math.max(0, value.length - MAX_ROWS) }
    }
    return { kind: 'fields', fields: [], lists: [['items', value.slice(0, MAX_ROWS).map(cell)]] }
  }
  const fields: Array<[string, string]> = []
  const lists: Array<[string, string[]]> = []
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) lists.push([k, (v as string[]).slice(0, MAX_ROWS)])
    else fields.push([k, cell(v)])
  }
  return { kind: 'fields', fields, lists }
}

/** A step's name on the page: what it does (its description), else its agent's name, else its id. */
export function stepTitle(step: { id: string; description?: string; agent?: string }, agentName: (id: string) => string): string {
  if (step.description != null && step.description.trim() !== '') return step.description
  if (step.agent != null && step.agent !== '') return agentName(step.agent)
  return `Step ${step.id}`
}

/** "of N eligible" in the router's sentence counts agents: say so. */
export function reasoningText(reasoning: string): string {
  return reasoning.replace(/of (\d+) eligible(?! agent)/g, (_m, n: string) => `of ${n} eligible ${n === '1' ? 'agent' : 'agents'}`)
}

/** The criteria of a route breakdown, in table order, with what 1 means. */
export const CRITERIA: Array<[key: string, label: string, best: string]> = [
  ['cost', 'Cost', 'cheapest'],
  ['quality', 'Quality', 'best quality'],
  ['speed', 'Speed', 'lowest round trip'],
  ['region', 'Region', 'in a preferred region'],
  ['reputation', 'Reputation', 'best reputation'],
  ['load', 'Load', 'most free workers'],
  ['specialization', 'Specialization', 'a specialist']
]
