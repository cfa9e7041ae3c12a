/**
 * The planner of last resort: no model, just documented rules (PLANNING.md).
 * Keywords map to capabilities; "then" splits the description into stages that
 * run one after another; several matches inside a stage run in parallel over
 * the same input.
 */
import { PlanningError } from '../errors.ts'
import type { InputMapping, PlanDraft, Subtask } from './plan-schema.ts'
import type { CapabilityInfo, Planner, PlanRequest } from './planner.ts'

/** One rule: words that name a capability, and where its main output lives. */
export interface PlanningRule {
  capability: string
  /** Matched as whole words or phrases, case-insensitive. */
  patterns: readonly RegExp[]
  /** What the step does, for the plan's description. */
  does: string
  /** Path of the output that a following step should take (e.g. `summary`). */
  outputPath?: string
}

/** The rules table (documented in PLANNING.md; keep the two in step). */
export const PLANNING_RULES: readonly PlanningRule[] = [
  {
    capability: 'text-extraction',
    patterns: [/\bextract(?:s|ing)?\s+(?:all\s+|the\s+)?(?:e-?mails?|urls?|links?|phone numbers?|dates?)/, /\be-?mail addresses\b/, /\b(?:urls|links)\b/],
    does: 'Extract emails and URLs from the text'
  },
  { capability: 'keyword-extraction', patterns: [/\bkey ?words?\b/, /\bkey ?phrases?\b/, /\btopics?\b/], does: 'Extract the keywords', outputPath: 'keywords' },
  {
    capability: 'text-summarization',
    patterns: [/\bsummar(?:y|ies|ise|ize|ised|ized|ising|izing)\b/, /\btl;?dr\b/, /\bcondense\b/],
    does: 'Summarize the text',
    outputPath: 'summary'
  },
  {
    capability: 'sentiment-analysis',
    patterns: [/\bsentiment\b/, /\btone\b/, /\bmood\b/, /\b(?:positive|negative) or (?:positive|negative)\b/],
    does: 'Analyse the sentiment'
  },
  {
    capability: 'text-statistics',
    patterns: [/\bstatistics?\b/, /\bstats\b/, /\bword ?counts?\b/, /\bcount (?:the )?(?:words|characters|sentences|lines)\b/, /\breadability\b/],
    does: 'Compute text statistics'
  },
  { capability: 'hashing', patterns: [/\bhash(?:es|ing)?\b/, /\bsha-?(?:1|256|512)?\b/, /\bchecksum\b/, /\bdigest\b/], does: 'Hash the input' },
  { capability: 'markdown-to-html', patterns: [/\bmarkdown\b/, /\bto html\b/, /\brender (?:it |the text )?as html\b/], does: 'Render the Markdown as HTML' },
  {
    capability: 'math-evaluation',
    patterns: [/\bcalculat(?:e|es|ion|ing)\b/, /\b(?:math(?:ematical)?\s+)?expressions?\b/, /\bevaluate\b/, /\barithmetic\b/],
    does: 'Evaluate the expression'
  },
  { capability: 'data-transform', patterns: [/\bcsv\b/, /\bjson\b/, /\btsv\b/, /\bconvert (?:the )?(?:data|table)\b/], does: 'Transform the data (CSV/JSON)' },
  {
    capability: 'list-processing',
    patterns: [/\bsort(?:s|ed|ing)?\b/, /\bde-?dup(?:e|licate)?s?\b/, /\bunique\b/, /\bremove duplicates\b/, /\border (?:them|the list|alphabetically)\b/],
    does: 'Sort and deduplicate the list'
  }
]

/** Words that make what follows a later stage (sequential). */
const SEQUENTIAL = /\b(?:and then|then|after that|afterwards|next|finally|followed by)\b|;|->|→/

interface Match {
  capability: string
  at: number
  rule?: PlanningRule
}

function stageMatches(text: string, offered: ReadonlySet<string>, notes: string[]): Match[] {
  const found = new Map<string, Match>()
  for (const rule of PLANNING_RULES) {
    let at = Infinity
    for (const re of rule.patterns) {
      const m = re.exec(text)
      if (m != null && m.index < at) at = m.index
    }
    if (at === Infinity) continue
    if (!offered.has(rule.capability)) {
      notes.push(`"${text.slice(at, at + 24).trim()}" suggests ${rule.capability}, which no agent offers`)
      continue
    }
    found.set(rule.capability, { capability: rule.capability, at, rule })
  }
  // A catalog capability named in the text itself ("image-resize" or "image resize").
  for (const cap of offered) {
    if (found.has(cap)) continue
    const at = text.indexOf(cap.replaceAll('-', ' '))
    const at2 = text.indexOf(cap)
    const pos = at >= 0 ? at : at2
    if (pos >= 0) found.set(cap, { capability: cap, at: pos })
  }
  return [...found.values()].sort((a, b) => a.at - b.at)
}

/**
 * Plan by rules. Throws `PlanningError` when nothing in the description or the
 * requested capabilities maps onto a capability the catalog offers.
 */
export function deterministicPlan(request: PlanRequest, catalog: readonly CapabilityInfo[]): PlanDraft & { notes: string[] } {
  const offered = new Set(catalog.map((c) => c.capability))
  const price = new Map(catalog.map((c) => [c.capability, c.minPrice]))
  const notes: string[] = []
  const text = request.description.toLowerCase().replace(/\s+/g, ' ')
  const stages = text
    .split(SEQUENTIAL)
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  // A capability already run by an earlier stage names its result ("… of the summary"), not a new step.
  const used = new Set<string>()
  const matched: Match[][] = stages
    .map((s) => {
      const ms = stageMatches(s, offered, notes).filter((m) => !used.has(m.capability))
      for (const m of ms) used.add(m.capability)
      return ms
    })
    .filter((m) => m.length > 0)

  // Requested capabilities not named in the text join the first stage, in parallel.
  const seen = new Set(matched.flat().map((m) => m.capability))
  const extra: Match[] = []
  for (const cap of request.capabilities ?? []) {
    if (seen.has(cap)) continue
    seen.add(cap)
    if (!offered.has(cap)) notes.push(`capability ${cap} was requested but no agent offers it`)
    extra.push({ capability: cap, at: Infinity, rule: PLANNING_RULES.find((r) => r.capability === cap) })
  }
  if (extra.length > 0) {
    if (matched.length === 0) matched.push(extra)
    else matched[0].push(...extra)
  }
  if (matched.length === 0) {
    throw new PlanningError(
      `Could not map "${request.description.slice(0, 80)}" onto any capability the mesh offers${notes.length > 0 ? ` (${notes.join('; ')})` : ''}: name the capabilities or pick an agent`
    )
  }

  const subtasks: Subtask[] = []
  let previous: Array<{ id: string; rule?: PlanningRule }> = []
  let n = 0
  for (const stage of matched) {
    const current: Array<{ id: string; rule?: PlanningRule }> = []
    for (const m of stage) {
      const id = `s${++n}`
      current.push({ id, rule: m.rule })
      subtasks.push({
        id,
        description: m.rule?.does ?? `Run ${m.capability}`,
        capabilities: [m.capability],
        dependencies: previous.map((p) => p.id),
        input: inputFrom(previous),
        estimated_cost: price.get(m.capability) ?? 0
      })
    }
    previous = current
  }
  const sequential = matched.every((s) => s.length === 1)
  const mode = matched.length === 1 ? (subtasks.length === 1 ? 'sequential' : 'parallel') : sequential ? 'sequential' : 'dag'
  return {
    subtasks,
    execution_mode: mode,
    total_estimated_cost: subtasks.reduce((s, t) => s + t.estimated_cost, 0),
    notes
  }
}

function inputFrom(previous: ReadonlyArray<{ id: string; rule?: PlanningRule }>): InputMapping {
  if (previous.length === 0) return { from: 'task.input' }
  if (previous.length === 1) {
    const p = previous[0]
    return p.rule?.outputPath != null ? { from: 'step', step: p.id, path: p.rule.outputPath } : { from: 'step', step: p.id }
  }
  // Several parallel results feed one step: join them as text.
  return { template: previous.map((p) => `{{steps.${p.id}.output${p.rule?.outputPath != null ? `.${p.rule.outputPath}` : ''}}}`).join('\n\n') }
}

/** The deterministic planner as a `Planner`. */
export function deterministicPlanner(): Planner {
  return {
    name: 'deterministic',
    async plan(request, catalog) {
      const { notes: _notes, ...draft } = deterministicPlan(request, catalog)
      return draft
    }
  }
}
