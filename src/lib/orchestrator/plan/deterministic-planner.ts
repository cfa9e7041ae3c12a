/**
 * The planner of last resort: no model, just documented rules (PLANNING.md).
 * "then" splits the description into stages that run one after another; inside a
 * stage, each clause ("… and also …", commas) becomes at most one parallel step.
 * A clause is matched, in order, by the rules table, by the words of a capability's
 * own name ("parse the csv" → csv-parsing), and by the agents' own descriptions.
 * Rules name several capabilities (synonyms) and take the first one the mesh offers,
 * so they follow the real manifests instead of a fixed vocabulary. What cannot be
 * matched is said in the plan's notes, never dropped silently.
 */
import { PlanningError } from '../errors.ts'
import type { InputMapping, PlanDraft, Subtask } from './plan-schema.ts'
import type { CapabilityInfo, Planner, PlanRequest } from './planner.ts'

/** One rule: words that name a capability, and where its main output lives. */
export interface PlanningRule {
  /** Capabilities that do this, best first; the first one on offer is used. */
  capabilities: readonly string[]
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
    capabilities: ['entity-extraction', 'email-extraction', 'url-extraction', 'text-extraction'],
    patterns: [
      /\bextract(?:s|ing)?\s+(?:all\s+|the\s+)?(?:e-?mails?|urls?|links?|phone numbers?|numbers?|entit(?:y|ies))/,
      /\bentit(?:y|ies)\b/,
      /\be-?mail(?: address)?e?s\b/,
      /\b(?:urls|links)\b/
    ],
    does: 'Extract e-mails, URLs and numbers from the text'
  },
  {
    capabilities: ['keyword-extraction'],
    patterns: [/\bkey ?words?\b/, /\bkey ?phrases?\b/, /\btopics?\b/],
    does: 'Extract the keywords',
    outputPath: 'keywords'
  },
  {
    capabilities: ['text-summarization'],
    patterns: [/\bsummar(?:y|ies|ise|ize|ised|ized|ising|izing)\b/, /\btl;?dr\b/, /\bcondense\b/],
    does: 'Summarize the text',
    outputPath: 'summary'
  },
  {
    capabilities: ['sentiment-analysis'],
    patterns: [/\bsentiment\b/, /\btone\b/, /\bmood\b/, /\b(?:positive|negative) or (?:positive|negative)\b/],
    does: 'Analyse the sentiment'
  },
  {
    capabilities: ['text-statistics', 'word-count'],
    patterns: [/\bstatistics?\b/, /\bstats\b/, /\bword ?counts?\b/, /\bcount (?:the )?(?:words|characters|sentences|lines|paragraphs)\b/, /\breadability\b/],
    does: 'Compute text statistics'
  },
  { capabilities: ['hashing', 'checksum'], patterns: [/\bhash(?:es|ing)?\b/, /\bsha-?(?:1|256|512)?\b/, /\bchecksum\b/, /\bdigest\b/], does: 'Hash the input' },
  {
    capabilities: ['markdown-rendering', 'html-generation', 'markdown-to-html'],
    patterns: [/\bmarkdown\b/, /\bto html\b/, /\b(?:render|show|format)\b.*\bas html\b/],
    does: 'Render the Markdown as HTML'
  },
  {
    capabilities: ['math-evaluation', 'calculator'],
    patterns: [/\bcalculat(?:e|es|ion|ing)\b/, /\bcompute\b/, /\b(?:math(?:ematical)?\s+)?expressions?\b/, /\bevaluate\b/, /\barithmetic\b/],
    does: 'Evaluate the expression'
  },
  {
    capabilities: ['data-transformation', 'csv-parsing', 'data-transform'],
    patterns: [/\bcsv\b/, /\btsv\b/, /\bconvert (?:the )?(?:data|table)\b/, /\bto json\b/],
    does: 'Convert the CSV to JSON'
  },
  {
    capabilities: ['list-processing'],
    patterns: [/\bsort(?:s|ed|ing)?\b/, /\bde-?dup(?:e|licate)?s?\b/, /\bunique\b/, /\bremove duplicates\b/, /\border (?:them|the list|alphabetically)\b/],
    does: 'Sort and deduplicate the list'
  }
]

/** Words that make what follows a later stage (sequential). */
const SEQUENTIAL = /\b(?:and then|then|after that|afterwards|next|finally|followed by)\b|;|->|→/
/** Words that separate the parallel requests of one stage. */
const CLAUSE = /\b(?:and also|as well as|and|also|plus)\b|,|\.(?:\s|$)/

const STOPWORDS = new Set(
  'a an the this that these those it its of to in on for with by from into and or as at be is are was were my me your our their them please can you i we text input data some any all each every one two three what how which who'.split(
    ' '
  )
)

/** A rough stem: enough to meet "parse"/"parsing", "extract"/"extraction", "count"/"counts". */
function stem(word: string): string {
  let w = word.toLowerCase()
  for (const suffix of ['ations', 'ation', 'ings', 'ing', 'ions', 'ion', 'ers', 'er', 'ors', 'or', 'ies', 'es', 'ed', 's', 'e']) {
    if (w.length - suffix.length >= 3 && w.endsWith(suffix)) {
      w = w.slice(0, -suffix.length)
      break
    }
  }
  return w
}

function stems(text: string): Set<string> {
  return new Set(
    text
      .toLowerCase()
      .split(/[^a-z0-9]+/)
      .filter((w) => w.length >= 3 && !STOPWORDS.has(w))
      .map(stem)
  )
}

interface Match {
  capability: string
  /** Position in the stage, for ordering. */
  at: number
  rule?: PlanningRule
  does?: string
}

interface Clause {
  text: string
  at: number
}

function clausesOf(stage: string): Clause[] {
  const out: Clause[] = []
  let rest = stage
  let offset = 0
  while (rest.length > 0) {
    const m = CLAUSE.exec(rest)
    const end = m == null ? rest.length : m.index
    const text = rest.slice(0, end)
    if (text.trim().length > 0) out.push({ text: text.trim(), at: offset + (text.length - text.trimStart().length) })
    if (m == null) break
    offset += end + m[0].length
    rest = rest.slice(end + m[0].length)
  }
  return out
}

function ruleMatch(text: string, offered: ReadonlySet<string>, notes: string[]): Match | undefined {
  let best: Match | undefined
  for (const rule of PLANNING_RULES) {
    let at = Infinity
    for (const re of rule.patterns) {
      const m = re.exec(text)
      if (m != null && m.index < at) at = m.index
    }
    if (at === Infinity) continue
    const capability = rule.capabilities.find((c) => offered.has(c))
    if (capability == null) {
      notes.push(`"${text.slice(at, at + 32).trim()}" suggests ${rule.capabilities[0]}, which no agent offers`)
      continue
    }
    if (best == null || at < best.at) best = { capability, at, rule }
  }
  return best
}

/** A capability whose own name's words all appear in the clause ("parse the csv" → csv-parsing). */
function nameMatch(clause: Set<string>, text: string, catalog: readonly CapabilityInfo[]): Match | undefined {
  for (const c of catalog) {
    const literal = Math.max(text.indexOf(c.capability), text.indexOf(c.capability.replaceAll('-', ' ')))
    if (literal >= 0) return { capability: c.capability, at: literal }
  }
  let best: { c: CapabilityInfo; parts: number } | undefined
  for (const c of catalog) {
    const parts = c.capability.split('-').filter((p) => p.length >= 3 && !STOPWORDS.has(p))
    if (parts.length === 0 || !parts.every((p) => clause.has(stem(p)))) continue
    if (best == null || parts.length > best.parts) best = { c, parts: parts.length }
  }
  return best == null ? undefined : { capability: best.c.capability, at: 0 }
}

/** The capability whose agents' descriptions share the most words with the clause (at least two, and a clear winner). */
function descriptionMatch(clause: Set<string>, catalog: readonly CapabilityInfo[]): Match | undefined {
  const scored = catalog
    .map((c) => {
      const words = stems(c.examples.join(' '))
      let score = 0
      for (const w of clause) if (words.has(w)) score++
      return { c, score }
    })
    .filter((s) => s.score >= 2)
    .sort((a, b) => b.score - a.score)
  if (scored.length === 0 || (scored.length > 1 && scored[1].score === scored[0].score)) return undefined
  return { capability: scored[0].c.capability, at: 0, does: `Run ${scored[0].c.capability} (matched on its description)` }
}

/**
 * What a task without input can run on: the text after the first colon, a quoted
 * passage, or the expression of a calculation. Undefined when there is none.
 */
export function inputFromDescription(description: string, firstCapability: string | undefined): string | undefined {
  const colon = description.indexOf(':')
  if (colon >= 0 && description.slice(colon + 1).trim() !== '') return description.slice(colon + 1).trim()
  const quoted = /["“«']([^"”»']{1,4000})["”»']/.exec(description)
  if (quoted != null && quoted[1].trim() !== '') return quoted[1]
  if (firstCapability === 'math-evaluation' || firstCapability === 'calculator') {
    const expr = description
      .replace(/^\s*(?:please\s+)?(?:calculate|compute|evaluate|work out|what is|what's)\s+/i, '')
      .replace(/[?.!\s]+$/, '')
      .trim()
    if (/\d/.test(expr) && /^[\d\s.+\-*/%^(),a-z]+$/i.test(expr)) return expr
  }
  return undefined
}

/**
 * Plan by rules. Throws `PlanningError` when nothing in the description or the
 * requested capabilities maps onto a capability the catalog offers; the message
 * lists the capabilities that do exist. Parts of the request that map onto nothing
 * are listed in `notes`.
 */
export function deterministicPlan(request: PlanRequest, all: readonly CapabilityInfo[]): PlanDraft & { notes: string[] } {
  // Rules plan onto what runs anywhere: a capability only llm-prompt agents offer needs a loaded
  // model, so it is planned by the LLM planner or named by the user, never guessed from words.
  const catalog = all.filter((c) => c.needsModel !== true)
  const offered = new Set(catalog.map((c) => c.capability))
  const price = new Map(catalog.map((c) => [c.capability, c.minPrice]))
  const notes: string[] = []
  // Without an input, "summarize: <text>" is an instruction and its input: plan the instruction only.
  const colon = request.hasInput === false ? request.description.indexOf(':') : -1
  const instruction = colon >= 0 ? request.description.slice(0, colon) : request.description
  // "tl;dr" is a word, not a ";" between two stages.
  const text = instruction.toLowerCase().replace(/\s+/g, ' ').replaceAll('tl;dr', 'tldr')
  const stages = text
    .split(SEQUENTIAL)
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  // A capability already run by an earlier stage names its result ("… of the summary"), not a new step.
  const used = new Set<string>()
  const matched: Match[][] = []
  for (const stage of stages) {
    const found: Match[] = []
    for (const clause of clausesOf(stage)) {
      const words = stems(clause.text)
      const m = ruleMatch(clause.text, offered, notes) ?? nameMatch(words, clause.text, catalog) ?? descriptionMatch(words, catalog)
      if (m == null) {
        if (clause.text.split(' ').length >= 2) notes.push(`"${clause.text.slice(0, 60)}" was not planned: no agent on the mesh does that`)
        continue
      }
      if (used.has(m.capability)) continue
      used.add(m.capability)
      found.push({ ...m, at: clause.at + (m.at === Infinity ? 0 : m.at) })
    }
    if (found.length > 0) matched.push(found.sort((a, b) => a.at - b.at))
  }

  // Requested capabilities not named in the text join the first stage, in parallel.
  const extra: Match[] = []
  for (const cap of request.capabilities ?? []) {
    if (used.has(cap)) continue
    used.add(cap)
    if (!offered.has(cap)) notes.push(`capability ${cap} was requested but no agent offers it`)
    extra.push({ capability: cap, at: Infinity, rule: PLANNING_RULES.find((r) => r.capabilities.includes(cap)) })
  }
  if (extra.length > 0) {
    if (matched.length === 0) matched.push(extra)
    else matched[0].push(...extra)
  }
  if (matched.length === 0) {
    const known = [...offered].sort()
    throw new PlanningError(
      `Could not map "${request.description.slice(0, 80)}" onto any capability the mesh offers${notes.length > 0 ? ` (${notes.join('; ')})` : ''}. ` +
        `Capabilities on offer: ${known.slice(0, 40).join(', ')}${known.length > 40 ? ', …' : ''}. Name one of them, or pick an agent.`
    )
  }

  const inline = request.hasInput === false ? inputFromDescription(request.description, matched[0][0]?.capability) : undefined
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
        description: m.rule?.does ?? m.does ?? `Run ${m.capability}`,
        capabilities: [m.capability],
        dependencies: previous.map((p) => p.id),
        input: previous.length === 0 && inline != null ? { value: inline } : inputFrom(previous),
        estimated_cost: price.get(m.capability) ?? 0
      })
    }
    previous = current
  }
  if (inline != null) notes.push(`the task had no input: using "${inline.slice(0, 60)}" from the description`)
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

/** The deterministic planner as a `Planner`; its notes (what was not planned) travel with the draft. */
export function deterministicPlanner(): Planner {
  return {
    name: 'deterministic',
    async plan(request, catalog) {
      return deterministicPlan(request, catalog)
    }
  }
}
