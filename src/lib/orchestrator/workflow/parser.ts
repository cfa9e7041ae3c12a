/**
 * Parse and validate a workflow document (WORKFLOWS.md "Validation"): YAML with
 * node ranges (a LineCounter turns offsets into line:column), one valibot schema
 * for the shape, then the checks the schema cannot make (references, variables,
 * cycles, CEL syntax, cost). Every error carries the line and column of the
 * node it is about and a sentence saying what to do.
 */
import { Validator } from '@cfworker/json-schema'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js'
import * as v from 'valibot'
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml'
import type { AgentCatalog } from '../components.ts'
import { RoutingPreferencesSchema } from '../route/index.ts'
import { bareExpression, CelSyntaxError, compileExpression, templateParts } from './cel.ts'
import type {
  ParseWorkflowOptions,
  ParseWorkflowResult,
  WorkflowAgentAlias,
  WorkflowDocument,
  WorkflowError,
  WorkflowErrorKind,
  WorkflowPosition,
  WorkflowStep
} from './types.ts'

/** Largest document accepted, in characters. */
export const MAX_WORKFLOW_CHARS = 256 * 1024
/** Most levels of nesting a document may have (a step's input included): deeper is refused before it is read. */
export const MAX_WORKFLOW_DEPTH = 64

const STEP_ID = /^[a-z0-9_-]{1,48}$/
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/
const KEBAB = /^[a-z0-9]+(?:-[a-z0-9]+)*$/
const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/

const duration = v.pipe(
  v.union([v.pipe(v.number(), v.finite(), v.minValue(0)), v.pipe(v.string(), v.regex(DURATION, 'write a duration like 500ms, 30s, 5m, 1h or 1d'))]),
  v.transform((x) => (typeof x === 'number' ? x : toMs(x)))
)
const name = (what: string) => v.pipe(v.string(what), v.minLength(1, what), v.maxLength(128))
const expr = v.pipe(v.string('write a CEL expression as text'), v.minLength(1, 'write a CEL expression'), v.maxLength(4000))
const count = (min: number, max: number) =>
  v.pipe(v.number('write a whole number'), v.integer('write a whole number'), v.minValue(min, `use at least ${min}`), v.maxValue(max, `use at most ${max}`))
const caps = v.pipe(
  v.union([v.string(), v.array(v.string())], 'list capabilities, e.g. [text-summarization]'),
  v.transform((x) => (typeof x === 'string' ? [x] : x)),
  v.array(v.pipe(v.string(), v.regex(KEBAB, 'capabilities are lowercase kebab-case, e.g. text-summarization'))),
  v.minLength(1, 'name at least one capability'),
  v.maxLength(8, 'name at most 8 capabilities')
)
const prefs = v.record(v.string(), v.unknown(), 'write preferences as a mapping, e.g. { strategy: quality }')

const LoopSchema = v.strictObject({
  until: expr,
  max_iterations: v.optional(count(1, 1000), 5),
  on_max: v.optional(v.picklist(['fail', 'accept'], 'on_max is fail or accept'), 'fail')
})
const DebateSchema = v.strictObject({
  agents: v.pipe(v.array(name('name an agent'), 'list the debating agents'), v.minLength(2, 'a debate needs at least two agents'), v.maxLength(16)),
  rounds: v.optional(count(1, 10), 2),
  decide: v.optional(v.picklist(['majority', 'judge'], 'decide is majority or judge'), 'majority'),
  judge: v.optional(name('name the judge agent'))
})
const ReflectSchema = v.strictObject({
  critic: name('name the critic agent'),
  max_rounds: v.optional(count(1, 20), 3),
  until: v.optional(expr, 'reflection.critique.ok == true')
})
const ApprovalSchema = v.strictObject({
  prompt: v.pipe(v.string('write the prompt as text'), v.minLength(1, 'write what the person should decide'), v.maxLength(4000)),
  show: v.optional(v.unknown()),
  timeout: v.optional(duration),
  on_reject: v.optional(v.picklist(['fail', 'skip'], 'on_reject is fail or skip'), 'fail')
})
const StepSchema = v.strictObject({
  id: v.pipe(v.string('give the step an id'), v.regex(STEP_ID, 'a step id is 1–48 lowercase letters, digits, _ or -')),
  agent: v.optional(name('name an agent')),
  capabilities: v.optional(caps),
  input: v.optional(v.unknown()),
  output: v.optional(v.pipe(v.string(), v.regex(VAR_NAME, 'an output name is a letter or _ followed by letters, digits or _'))),
  depends_on: v.optional(
    v.pipe(
      v.union([v.string(), v.array(v.string())], 'list step ids, e.g. [fetch, parse]'),
      v.transform((x) => (typeof x === 'string' ? [x] : x))
    ),
    []
  ),
  when: v.optional(expr),
  continue_on_error: v.optional(v.boolean('continue_on_error is true or false'), false),
  timeout: v.optional(duration),
  retry: v.optional(count(1, 20)),
  preferences: v.optional(prefs),
  for_each: v.optional(expr),
  parallel: v.optional(v.boolean('parallel is true or false')),
  max_parallel: v.optional(count(1, 256)),
  max_items: v.optional(count(1, 100_000)),
  loop: v.optional(LoopSchema),
  plan: v.optional(v.pipe(v.string('write the task to plan as text'), v.minLength(1), v.maxLength(4000))),
  workflow: v.optional(name('name a saved workflow')),
  debate: v.optional(DebateSchema),
  reflect: v.optional(ReflectSchema),
  approval: v.optional(ApprovalSchema)
})
const AliasSchema = v.strictObject({
  name: v.pipe(v.string('give the alias a name'), v.regex(/^[A-Za-z0-9_-]{1,64}$/, 'an alias name is letters, digits, _ or -')),
  capabilities: v.optional(caps),
  agent: v.optional(name('name a registry agent')),
  preferences: v.optional(prefs)
})
const ExecutionSchema = v.strictObject({
  mode: v.optional(v.picklist(['dag', 'sequential'], 'mode is dag or sequential'), 'dag'),
  timeout: v.optional(duration),
  max_cost: v.optional(v.pipe(v.number('max_cost is a number of credits'), v.finite(), v.minValue(0, 'max_cost cannot be negative'))),
  retry_failed: v.optional(v.boolean('retry_failed is true or false'), true),
  fallback_strategy: v.optional(v.picklist(['fail', 'degraded', 'skip'], 'fallback_strategy is fail, degraded or skip'), 'fail')
})
/** The whole document: the one schema every workflow is checked against. */
export const WorkflowSchema = v.strictObject({
  name: v.pipe(v.string('give the workflow a name'), v.minLength(1, 'give the workflow a name'), v.maxLength(100)),
  description: v.optional(v.pipe(v.string(), v.maxLength(2000))),
  inputs: v.optional(v.record(v.string(), v.unknown(), 'inputs is a JSON Schema, e.g. { type: object }')),
  agents: v.optional(v.pipe(v.array(AliasSchema, 'list agent aliases'), v.maxLength(64)), []),
  steps: v.pipe(v.array(StepSchema, 'list the steps'), v.minLength(1, 'a workflow needs at least one step'), v.maxLength(500, 'use at most 500 steps')),
  execution: v.optional(ExecutionSchema, {}),
  output: v.optional(v.unknown())
})

/** Routing preferences as a document writes them: the API's fields, no others (custom_score is code, not data). */
const PreferencesSchema = v.pipe(
  v.strictObject(RoutingPreferencesSchema.entries),
  v.check((p) => p.strategy !== 'custom', 'the custom strategy needs a scoring function: use it from window.zerostate.submit, or pick another strategy')
)

const KNOWN_KEYS: Record<string, readonly string[]> = {
  doc: Object.keys(WorkflowSchema.entries),
  step: Object.keys(StepSchema.entries),
  alias: Object.keys(AliasSchema.entries),
  execution: Object.keys(ExecutionSchema.entries),
  loop: Object.keys(LoopSchema.entries),
  debate: Object.keys(DebateSchema.entries),
  reflect: Object.keys(ReflectSchema.entries),
  approval: Object.keys(ApprovalSchema.entries)
}

const REQUIRED_HINT: Record<string, string> = {
  name: 'add `name:` with the workflow name',
  steps: 'add `steps:` with at least one step',
  id: 'give the step an `id:`',
  until: 'add `until:` with the condition that ends it',
  agents: 'list the debating agents under `agents:`',
  critic: 'name the critic agent under `critic:`',
  prompt: 'write what the person should decide under `prompt:`'
}

/** Parse YAML into a validated document; every error carries line:column and what to do. */
export function parseWorkflow(yaml: string, opts: ParseWorkflowOptions = {}): ParseWorkflowResult {
  const source = typeof yaml === 'string' ? yaml : ''
  const lc = new LineCounter()
  const errors: WorkflowError[] = []
  const at = (offset: number, endOffset = offset + 1): WorkflowPosition => {
    const a = lc.linePos(Math.max(0, Math.min(offset, source.length)))
    const b = lc.linePos(Math.max(0, Math.min(endOffset, source.length)))
    return { line: Math.max(1, a.line), column: Math.max(1, a.col), endLine: Math.max(1, b.line), endColumn: Math.max(1, b.col) }
  }
  if (source.length > MAX_WORKFLOW_CHARS) {
    return {
      ok: false,
      errors: [
        {
          kind: 'yaml-syntax',
          ...at(MAX_WORKFLOW_CHARS),
          path: '',
          message: `The document is over ${MAX_WORKFLOW_CHARS} characters: split it into sub-workflows`
        }
      ]
    }
  }
  const yamlDoc = parseDocument(source, { lineCounter: lc, prettyErrors: false, uniqueKeys: true })
  for (const e of yamlDoc.errors) {
    const text = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')
    // The parser recurses per level: a nesting bomb ends its stack, which it reports as a syntax error.
    if (/call stack/i.test(text)) {
      const message = `The document nests too deeply to read; use at most ${MAX_WORKFLOW_DEPTH} levels`
      errors.push({ kind: 'yaml-syntax', ...at(e.pos[0], e.pos[1]), path: '', message })
      break
    }
    errors.push({ kind: 'yaml-syntax', ...at(e.pos[0], e.pos[1]), path: '', message: `YAML syntax: ${text}; fix the YAML here` })
  }
  if (errors.length > 0) return { ok: false, errors }

  // Ranges of every node (values by path; keys by path + '#key').
  const ranges = new Map<string, [number, number]>()
  let tooDeep: string | undefined
  const walk = (node: unknown, path: string, depth = 0): void => {
    if (node == null || typeof node !== 'object') return
    const n = node as YamlNode
    if (n.range != null) ranges.set(path, [n.range[0], n.range[1]])
    if (depth > MAX_WORKFLOW_DEPTH) {
      tooDeep ??= path
      return
    }
    if (isMap(n)) {
      for (const item of n.items) {
        if (!isPair(item)) continue
        const key = isScalar(item.key) ? String(item.key.value) : String(item.key)
        const p = path === '' ? key : `${path}.${key}`
        const k = item.key as YamlNode | null
        if (k?.range != null) ranges.set(`${p}#key`, [k.range[0], k.range[1]])
        if (item.value == null && k?.range != null) ranges.set(p, [k.range[0], k.range[1]])
        walk(item.value, p, depth + 1)
      }
    } else if (isSeq(n)) {
      n.items.forEach((item, i) => {
        walk(item, path === '' ? String(i) : `${path}.${i}`, depth + 1)
      })
    }
  }
  walk(yamlDoc.contents, '')
  const positions: Record<string, WorkflowPosition> = {}
  for (const [p, [s, e]] of ranges) positions[p] = at(s, e)

  /** The position of a path: itself, else its closest ancestor. */
  const posOf = (path: string, key = false): WorkflowPosition => {
    if (key && positions[`${path}#key`] != null) return positions[`${path}#key`]
    let p = path
    for (;;) {
      if (positions[p] != null) return positions[p]
      if (p === '') return at(0)
      p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : ''
    }
  }
  const add = (kind: WorkflowErrorKind, path: string, message: string, pos: WorkflowPosition = posOf(path, kind === 'unknown-key')): void => {
    errors.push({ kind, ...pos, path, message })
  }

  if (tooDeep !== undefined) {
    add('invalid-value', tooDeep, `This value nests deeper than ${MAX_WORKFLOW_DEPTH} levels: flatten it, or pass it as a reference`)
    return { ok: false, errors }
  }
  let raw: unknown
  try {
    raw = yamlDoc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    add('yaml-syntax', '', `YAML: ${err instanceof Error ? err.message : String(err)}; fix the anchors and aliases (*name needs &name first)`)
    return { ok: false, errors }
  }
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) {
    add('invalid-value', '', 'A workflow is a YAML mapping: start with `name:` and `steps:`')
    return { ok: false, errors }
  }
  const parsed = v.safeParse(WorkflowSchema, raw, { abortEarly: false })
  if (!parsed.success) {
    for (const issue of parsed.issues) {
      const keys = issue.path?.map((p) => String(p.key)) ?? []
      const path = keys.join('.')
      if (issue.type === 'strict_object' && issue.expected === 'never') {
        const key = keys[keys.length - 1]
        const known = KNOWN_KEYS[objectKind(keys.slice(0, -1))] ?? []
        const near = nearest(key, known)
        add(
          'unknown-key',
          path,
          `Unknown key "${key}"${near != null ? `: did you mean "${near}"?` : `; the keys here are ${known.join(', ')}`}`,
          posOf(path, true)
        )
      } else if (issue.received === 'undefined') {
        const key = keys[keys.length - 1]
        add('missing-key', path, `Missing \`${key}\`: ${REQUIRED_HINT[key] ?? `add \`${key}:\``}`, posOf(keys.slice(0, -1).join('.')))
      } else {
        add('invalid-value', path, `\`${path}\`: ${issue.message}`)
      }
    }
    return { ok: false, errors: dedupe(errors) }
  }
  const d = parsed.output
  const agents: WorkflowAgentAlias[] = d.agents.map((a) => ({
    name: a.name,
    ...(a.capabilities != null ? { capabilities: a.capabilities } : {}),
    ...(a.agent != null ? { agent: a.agent } : {}),
    ...(a.preferences != null ? { preferences: a.preferences } : {})
  }))
  const steps: WorkflowStep[] = []
  d.steps.forEach((s, i) => {
    const path = `steps.${i}`
    const kinds = (['agent', 'capabilities', 'plan', 'workflow', 'debate', 'approval'] as const).filter((k) => s[k] != null)
    const doers = kinds.filter((k) => k !== 'agent' && k !== 'capabilities')
    if (kinds.length === 0) {
      add(
        'missing-key',
        path,
        `Step "${s.id}" does nothing: give it \`agent:\`, \`capabilities:\`, \`plan:\`, \`workflow:\`, \`debate:\` or \`approval:\``,
        posOf(`${path}.id`)
      )
    } else if (doers.length > 1 || (doers.length === 1 && kinds.length > 1 && doers[0] !== 'debate')) {
      add('invalid-value', `${path}.${kinds[1]}`, `Step "${s.id}" has both \`${kinds[0]}\` and \`${kinds[1]}\`: keep one`, posOf(`${path}.${kinds[1]}`, true))
    } else if (s.agent != null && s.capabilities != null) {
      add('invalid-value', `${path}.capabilities`, `Step "${s.id}" has both \`agent\` and \`capabilities\`: keep one`, posOf(`${path}.capabilities`, true))
    }
    const kind = (doers[0] ?? 'agent') as WorkflowStep['kind']
    if (s.reflect != null && kind !== 'agent')
      add(
        'invalid-value',
        `${path}.reflect`,
        '`reflect` needs a step run by an agent: give the step `agent:` or `capabilities:`',
        posOf(`${path}.reflect`, true)
      )
    if (s.debate != null && s.debate.decide === 'judge' && s.debate.judge == null)
      add('missing-key', `${path}.debate`, 'A debate decided by a judge needs `judge:`: name the judging agent', posOf(`${path}.debate`, true))
    const maxParallel = s.parallel === false ? 1 : s.max_parallel
    steps.push({
      id: s.id,
      kind,
      ...(s.agent != null ? { agent: s.agent } : {}),
      ...(s.capabilities != null ? { capabilities: s.capabilities } : {}),
      ...(s.input !== undefined ? { input: s.input } : {}),
      output: s.output ?? s.id,
      depends_on: s.depends_on,
      ...(s.when != null ? { when: s.when } : {}),
      continue_on_error: s.continue_on_error,
      ...(s.timeout != null ? { timeout: s.timeout } : {}),
      ...(s.retry != null ? { retry: s.retry } : {}),
      ...(s.preferences != null ? { preferences: s.preferences } : {}),
      ...(s.for_each != null ? { for_each: s.for_each } : {}),
      ...(maxParallel != null ? { max_parallel: maxParallel } : {}),
      ...(s.max_items != null ? { max_items: s.max_items } : {}),
      ...(s.loop != null ? { loop: s.loop } : {}),
      ...(s.plan != null ? { plan: s.plan } : {}),
      ...(s.workflow != null ? { workflow: s.workflow } : {}),
      ...(s.debate != null ? { debate: s.debate } : {}),
      ...(s.reflect != null ? { reflect: s.reflect } : {}),
      ...(s.approval != null ? { approval: s.approval } : {})
    })
  })

  // Routing preferences of aliases and steps.
  const checkPrefs = (value: unknown, path: string): void => {
    if (value == null) return
    const res = v.safeParse(PreferencesSchema, value, { abortEarly: false })
    if (res.success) return
    for (const issue of res.issues) {
      const keys = issue.path?.map((p) => String(p.key)) ?? []
      const at = [path, ...keys].join('.')
      if (issue.type === 'strict_object' && issue.expected === 'never') {
        const key = keys[keys.length - 1]
        const near = nearest(key, Object.keys(RoutingPreferencesSchema.entries))
        add(
          'unknown-key',
          at,
          `Unknown routing preference "${key}"${near != null ? `: did you mean "${near}"?` : ': see API.md for the preferences'}`,
          posOf(at, true)
        )
      } else add('invalid-value', at, `\`${at}\`: ${issue.message}`)
    }
  }
  agents.forEach((a, i) => {
    checkPrefs(a.preferences, `agents.${i}.preferences`)
  })
  steps.forEach((s, i) => {
    checkPrefs(s.preferences, `steps.${i}.preferences`)
  })

  // Unique ids, aliases and output names.
  const stepIndex = new Map<string, number>()
  steps.forEach((s, i) => {
    if (stepIndex.has(s.id)) add('duplicate-step', `steps.${i}.id`, `Step id "${s.id}" is used twice (first at step ${stepIndex.get(s.id)! + 1}): rename one`)
    else stepIndex.set(s.id, i)
  })
  const aliasNames = new Set<string>()
  agents.forEach((a, i) => {
    if (aliasNames.has(a.name)) add('duplicate-step', `agents.${i}.name`, `Agent alias "${a.name}" is defined twice: rename one`)
    aliasNames.add(a.name)
    if ((a.capabilities == null) === (a.agent == null))
      add('invalid-value', `agents.${i}`, `Alias "${a.name}" needs exactly one of \`capabilities:\` or \`agent:\``, posOf(`agents.${i}.name`))
    if (a.agent != null && opts.catalog != null && findAgent(opts.catalog, a.agent) == null)
      add('unknown-agent', `agents.${i}.agent`, `No registry agent is named "${a.agent}": check the name, publish the agent, or route by \`capabilities:\``)
  })
  const producer = new Map<string, string>()
  steps.forEach((s, i) => {
    if (['task', 'steps', 'item', 'index', 'loop', 'reflection'].includes(s.output))
      add('invalid-value', `steps.${i}.${s.output === s.id ? 'id' : 'output'}`, `"${s.output}" is a reserved variable: give the step another \`output:\` name`)
    else if (producer.has(s.output) && producer.get(s.output) !== s.id)
      add('invalid-value', `steps.${i}.output`, `Output "${s.output}" is already the output of step "${producer.get(s.output)}": give this one another name`)
    else producer.set(s.output, s.id)
  })

  // Capabilities nobody offers.
  const checkCaps = (caps: readonly string[] | undefined, path: string): void => {
    if (caps == null || opts.catalog == null) return
    const message = capabilitiesProblem(opts.catalog, caps)
    if (message != null) add('unknown-capability', path, message)
  }
  agents.forEach((a, i) => {
    checkCaps(a.capabilities, `agents.${i}.capabilities`)
  })
  steps.forEach((s, i) => {
    checkCaps(s.capabilities, `steps.${i}.capabilities`)
  })

  // Agent references.
  const checkAgent = (ref: string, path: string): void => {
    if (aliasNames.has(ref)) return
    if (opts.catalog == null) return
    if (findAgent(opts.catalog, ref) != null) return
    const near = nearest(ref, [...aliasNames, ...opts.catalog.list().map((a) => a.name)])
    add(
      'unknown-agent',
      path,
      `No alias or registry agent is named "${ref}"${near != null ? `: did you mean "${near}"?` : ': add it under `agents:`, publish it, or route by `capabilities:`'}`
    )
  }
  steps.forEach((s, i) => {
    if (s.agent != null) checkAgent(s.agent, `steps.${i}.agent`)
    s.debate?.agents.forEach((a, k) => {
      checkAgent(a, `steps.${i}.debate.agents.${k}`)
    })
    if (s.debate?.judge != null) checkAgent(s.debate.judge, `steps.${i}.debate.judge`)
    if (s.reflect != null) checkAgent(s.reflect.critic, `steps.${i}.reflect.critic`)
    if (s.workflow != null && opts.workflows != null && opts.workflows.get(s.workflow) == null)
      add('unknown-workflow', `steps.${i}.workflow`, `No saved workflow is named "${s.workflow}": save it first or fix the name`)
    s.depends_on.forEach((dep, k) => {
      if (!stepIndex.has(dep)) {
        const near = nearest(dep, [...stepIndex.keys()])
        add(
          'unknown-step',
          `steps.${i}.depends_on${s.depends_on.length > 1 || positions[`steps.${i}.depends_on.${k}`] != null ? `.${k}` : ''}`,
          `No step has id "${dep}"${near != null ? `: did you mean "${near}"?` : ': fix the id or add the step'}`
        )
      }
    })
  })

  // Expressions and templates: syntax, variables, and the dependencies they add.
  const reads = new Map<string, Set<string>>(steps.map((s) => [s.id, new Set<string>()]))
  const known = [...producer.keys(), 'task', 'steps']
  /** Check one expression at `path`; `base` is the offset of the expression inside the YAML string. */
  const checkExpr = (text: string, base: number, path: string, stringValue: string, locals: readonly string[], step: WorkflowStep | undefined): void => {
    let compiled: ReturnType<typeof compileExpression>
    try {
      compiled = compileExpression(text)
    } catch (err) {
      const off = err instanceof CelSyntaxError ? err.offset : 0
      add(
        'cel-syntax',
        path,
        `Expression "${text.trim().slice(0, 80)}" is not valid CEL: ${err instanceof Error ? err.message : String(err)}; fix the expression`,
        posIn(path, stringValue, base + off)
      )
      return
    }
    for (const r of compiled.reads) {
      const where = posIn(path, stringValue, base + r.offset)
      if (locals.includes(r.name) || r.name === 'task') continue
      if (r.name === 'steps') {
        if (r.member == null) continue
        if (!stepIndex.has(r.member)) {
          const near = nearest(r.member, [...stepIndex.keys()])
          add('unknown-step', path, `\`steps.${r.member}\` names no step${near != null ? `: did you mean "${near}"?` : ': fix the id'}`, where)
        } else if (step != null) reads.get(step.id)?.add(r.member)
        continue
      }
      const from = producer.get(r.name)
      if (from == null) {
        const near = nearest(r.name, [...known, ...locals])
        add(
          'unknown-variable',
          path,
          `Variable "${r.name}" is not defined${near != null ? `: did you mean "${near}"?` : `: give a step \`output: ${r.name}\`, or read task, steps or a step's output`}`,
          where
        )
        continue
      }
      if (step != null && !(from === step.id && locals.includes('$self'))) reads.get(step.id)?.add(from)
    }
  }
  /** Every `${}` in a value (deep). */
  const checkTemplate = (value: unknown, path: string, locals: readonly string[], step: WorkflowStep | undefined): void => {
    if (typeof value === 'string') {
      let parts: ReturnType<typeof templateParts>
      try {
        parts = templateParts(value)
      } catch (err) {
        add('cel-syntax', path, `${err instanceof Error ? err.message : String(err)}`, posIn(path, value, err instanceof CelSyntaxError ? err.offset : 0))
        return
      }
      for (const p of parts) checkExpr(p.expr, p.offset, path, value, locals, step)
    } else if (Array.isArray(value)) {
      value.forEach((x, i) => {
        checkTemplate(x, `${path}.${i}`, locals, step)
      })
    } else if (value != null && typeof value === 'object') for (const [k, x] of Object.entries(value)) checkTemplate(x, `${path}.${k}`, locals, step)
  }
  const checkBare = (text: string, path: string, locals: readonly string[], step: WorkflowStep | undefined): void => {
    const b = bareExpression(text)
    checkExpr(b.expr, b.offset, path, text, locals, step)
  }
  /** Position of offset `off` inside the string value at `path` (found in the source, so quotes and block scalars map right). */
  function posIn(path: string, value: string, off: number): WorkflowPosition {
    const node = ranges.get(path)
    if (node == null) return posOf(path)
    const lines = value.slice(0, off).split('\n')
    const lineText = value.split('\n')[lines.length - 1] ?? ''
    const col = lines[lines.length - 1].length
    const found = lineText === '' ? -1 : source.indexOf(lineText, node[0])
    const abs = found !== -1 && found < node[1] ? found + col : node[0]
    return at(abs, abs + 1)
  }

  steps.forEach((s, i) => {
    const p = `steps.${i}`
    const item = s.for_each != null ? ['item', 'index'] : []
    const loop = s.loop != null ? ['loop'] : []
    const refl = s.reflect != null ? ['reflection'] : []
    if (s.when != null) checkBare(s.when, `${p}.when`, [], s)
    if (s.for_each != null) checkBare(s.for_each, `${p}.for_each`, [], s)
    checkTemplate(s.input, `${p}.input`, [...item, ...loop, ...refl], s)
    if (s.loop != null) checkBare(s.loop.until, `${p}.loop.until`, [...item, 'loop', s.output, '$self'], s)
    if (s.reflect != null) checkBare(s.reflect.until, `${p}.reflect.until`, [...item, 'reflection', s.output, '$self'], s)
    if (s.plan != null) checkTemplate(s.plan, `${p}.plan`, item, s)
    if (s.approval != null) {
      checkTemplate(s.approval.prompt, `${p}.approval.prompt`, item, s)
      checkTemplate(s.approval.show, `${p}.approval.show`, item, s)
    }
  })
  if (d.output !== undefined) checkTemplate(d.output, 'output', [], undefined)

  // Dependencies and cycles.
  const dependencies: Record<string, string[]> = {}
  const readsOut: Record<string, string[]> = {}
  steps.forEach((s, i) => {
    const deps = new Set(s.depends_on.filter((x) => stepIndex.has(x)))
    for (const r of reads.get(s.id) ?? []) deps.add(r)
    if (d.execution.mode === 'sequential' && i > 0) deps.add(steps[i - 1].id)
    dependencies[s.id] = [...deps]
    readsOut[s.id] = [...(reads.get(s.id) ?? [])]
  })
  const cycle = findCycle(
    steps.map((s) => s.id),
    dependencies
  )
  if (cycle != null) {
    const i = stepIndex.get(cycle[0])!
    add('cycle', `steps.${i}.id`, `Steps depend on each other in a cycle (${cycle.join(' → ')}): remove one of these dependencies`)
  }

  // Cost estimate against max_cost.
  if (opts.catalog != null && d.execution.max_cost != null && errors.length === 0) {
    const aliases = new Map(agents.map((a) => [a.name, a]))
    const est = estimateCost(steps, aliases, opts.catalog)
    if (est > d.execution.max_cost + 1e-9)
      add(
        'over-budget',
        'execution.max_cost',
        `The cheapest agents for these steps cost at least ${round(est)} credits, above max_cost ${d.execution.max_cost}: raise max_cost or use cheaper agents`
      )
  }
  if (d.inputs != null) {
    try {
      new Validator(d.inputs as never, '2020-12', false)
    } catch (err) {
      add('invalid-value', 'inputs', `\`inputs\` is not a usable JSON Schema: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  if (errors.length > 0) return { ok: false, errors: dedupe(errors) }
  const doc: WorkflowDocument = {
    name: d.name,
    ...(d.description != null ? { description: d.description } : {}),
    ...(d.inputs != null ? { inputs: d.inputs } : {}),
    agents,
    steps,
    execution: {
      mode: d.execution.mode,
      ...(d.execution.timeout != null ? { timeout: d.execution.timeout } : {}),
      ...(d.execution.max_cost != null ? { max_cost: d.execution.max_cost } : {}),
      retry_failed: d.execution.retry_failed,
      fallback_strategy: d.execution.fallback_strategy
    },
    ...(d.output !== undefined ? { output: d.output as string } : {}),
    dependencies,
    reads: readsOut,
    positions
  }
  return { ok: true, doc, hash: bytesToHex(sha256(utf8ToBytes(source))) }
}

/** Check an input against the document's `inputs` schema; empty when it fits. */
export function validateWorkflowInput(doc: WorkflowDocument, input: unknown): WorkflowError[] {
  if (doc.inputs == null) return []
  const pos = doc.positions.inputs ?? { line: 1, column: 1, endLine: 1, endColumn: 2 }
  const res = new Validator(doc.inputs as never, '2020-12', false).validate(input === undefined ? null : input)
  if (res.valid) return []
  // The deepest errors say the most (the outer ones only say "a property does not match").
  const deepest = res.errors.filter((e) => !res.errors.some((o) => o !== e && o.instanceLocation.startsWith(`${e.instanceLocation}/`)))
  return (deepest.length > 0 ? deepest : res.errors).slice(0, 5).map((e) => ({
    kind: 'invalid-input' as const,
    ...pos,
    path: 'inputs',
    message: `The input ${e.instanceLocation === '#' ? '' : `at ${e.instanceLocation.slice(1)} `}does not match \`inputs\`: ${e.error} Give an input that fits the schema at this line.`
  }))
}

/** Why no agent can run these capabilities, or undefined when one can. */
export function capabilitiesProblem(catalog: AgentCatalog, caps: readonly string[]): string | undefined {
  if (catalog.list(caps[0]).some((a) => caps.every((c) => a.capabilities.includes(c)))) return undefined
  const missing = caps.find((c) => catalog.list(c).length === 0)
  if (missing != null) {
    const near = nearest(missing, [...new Set(catalog.list().flatMap((a) => a.capabilities))])
    return `No agent offers capability "${missing}"${near != null ? `: did you mean "${near}"?` : ': publish one or route by another capability'}`
  }
  return `No single agent offers all of ${caps.join(', ')}: split the step or name fewer capabilities`
}

/** A registry agent by id, else the newest version with that name. */
export function findAgent(catalog: AgentCatalog, ref: string): ReturnType<AgentCatalog['list']>[number] | undefined {
  const all = catalog.list()
  return all.find((a) => a.id === ref) ?? all.filter((a) => a.name === ref).sort((a, b) => b.version.localeCompare(a.version, undefined, { numeric: true }))[0]
}

/** The least any run of these steps costs (one item, one iteration, one round per agent). */
export function estimateCost(steps: readonly WorkflowStep[], aliases: ReadonlyMap<string, WorkflowAgentAlias>, catalog: AgentCatalog): number {
  const priceOf = (ref: string | undefined, capabilities?: readonly string[]): number => {
    const alias = ref != null ? aliases.get(ref) : undefined
    const pinned = alias?.agent ?? (alias == null ? ref : undefined)
    if (pinned != null) return findAgent(catalog, pinned)?.price ?? 0
    const cs = alias?.capabilities ?? capabilities ?? []
    const prices = catalog
      .list(cs[0])
      .filter((a) => cs.every((c) => a.capabilities.includes(c)))
      .map((a) => a.price)
    return prices.length > 0 ? Math.min(...prices) : 0
  }
  let total = 0
  for (const s of steps) {
    if (s.when != null || s.kind === 'approval' || s.kind === 'plan' || s.kind === 'workflow') continue
    if (s.kind === 'debate' && s.debate != null) {
      for (const a of s.debate.agents) total += priceOf(a) * s.debate.rounds
      if (s.debate.decide === 'judge') total += priceOf(s.debate.judge)
      continue
    }
    total += priceOf(s.agent, s.capabilities)
    if (s.reflect != null && s.reflect.max_rounds > 1) total += priceOf(s.reflect.critic)
  }
  return total
}

/** The first cycle found, as ids with the first repeated at the end. */
function findCycle(ids: readonly string[], deps: Readonly<Record<string, readonly string[]>>): string[] | undefined {
  const state = new Map<string, 1 | 2>()
  const stack: string[] = []
  const visit = (id: string): string[] | undefined => {
    state.set(id, 1)
    stack.push(id)
    for (const d of deps[id] ?? []) {
      if (state.get(d) === 1) return [...stack.slice(stack.indexOf(d)), d]
      if (state.get(d) == null) {
        const c = visit(d)
        if (c != null) return c
      }
    }
    stack.pop()
    state.set(id, 2)
    return undefined
  }
  for (const id of ids) {
    if (state.get(id) == null) {
      const c = visit(id)
      if (c != null) return c.reverse()
    }
  }
  return undefined
}

/** Which object a path points into, for its known keys. */
function objectKind(keys: readonly string[]): string {
  if (keys.length === 0) return 'doc'
  if (keys[0] === 'execution') return 'execution'
  if (keys[0] === 'agents') return 'alias'
  if (keys[0] === 'steps') return keys.length === 2 ? 'step' : (keys[2] ?? 'step')
  return 'doc'
}

/** The known word closest to `word` (edit distance ≤ 1/3 of its length, at least 2), if any. */
export function nearest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestD = Infinity
  for (const k of known) {
    if (k.startsWith('$')) continue
    const dd = editDistance(word.toLowerCase(), k.toLowerCase())
    if (dd < bestD) {
      bestD = dd
      best = k
    }
  }
  return best != null && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return row[b.length]
}

function toMs(s: string): number {
  const m = DURATION.exec(s)!
  const n = Number(m[1])
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'])
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6
}

function dedupe(errors: WorkflowError[]): WorkflowError[] {
  const seen = new Set<string>()
  return errors
    .filter((e) => {
      const k = `${e.line}:${e.column}:${e.message}`
      if (seen.has(k)) return false
      seen.add(k)
      return true
    })
    .sort((a, b) => a.line - b.line || a.column - b.column)
}
