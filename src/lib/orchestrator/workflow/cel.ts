/**
 * CEL expressions and `${}` templates of workflows, on @marcbachmann/cel-js (no
 * eval). JSON numbers that are whole become CEL ints, so `stats.words > 5` and
 * `stats.words + 1` work as a user expects; doubles mix with ints in arithmetic.
 * `loop` is a reserved word in CEL; WORKFLOWS.md binds `loop.index`, so the
 * identifier is renamed to `lo_p` (same length: positions in errors stay right).
 */
import { Environment } from '@marcbachmann/cel-js'

const env = new Environment({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false })
const ARITH: Record<string, (a: number, b: number) => number> = {
  '+': (a, b) => a + b,
  '-': (a, b) => a - b,
  '*': (a, b) => a * b,
  '/': (a, b) => a / b
}
for (const [op, f] of Object.entries(ARITH)) {
  env.registerOperator(`double ${op} int`, (a: number, b: bigint) => f(a, Number(b)))
  env.registerOperator(`int ${op} double`, (a: bigint, b: number) => f(Number(a), b))
}

/** The renamed `loop` identifier. */
export const LOOP_ALIAS = 'lo_p'

/** A syntax error in an expression, at an offset of the expression text. */
export class CelSyntaxError extends Error {
  override readonly name: string = 'CelSyntaxError'
  constructor(
    message: string,
    readonly offset: number
  ) {
    super(message)
  }
}

/** A variable an expression reads: its root name, the first member after it (`steps.<id>`), and where it is. */
export interface CelRead {
  name: string
  member?: string
  offset: number
}

/** A parsed expression. */
export interface CompiledExpression {
  source: string
  reads: CelRead[]
  evaluate(scope: Record<string, unknown>): unknown
}

const cache = new Map<string, CompiledExpression>()

/** Parse once (cached); throws CelSyntaxError with the offset of the mistake. */
export function compileExpression(source: string): CompiledExpression {
  const hit = cache.get(source)
  if (hit != null) return hit
  const text = renameLoop(source)
  let fn: ((ctx: Record<string, unknown>) => unknown) & { ast: unknown }
  try {
    fn = env.parse(text) as typeof fn
  } catch (err) {
    const e = err as { summary?: string; message?: string; range?: { start: number } }
    throw new CelSyntaxError(String(e.summary ?? e.message ?? err).replaceAll(LOOP_ALIAS, 'loop'), e.range?.start ?? 0)
  }
  const reads: CelRead[] = []
  collectReads(fn.ast as Node, new Set(), reads)
  for (const r of reads) if (r.name === LOOP_ALIAS) r.name = 'loop'
  const compiled: CompiledExpression = {
    source,
    reads,
    evaluate(scope) {
      const ctx: Record<string, unknown> = {}
      for (const r of reads) {
        const v = scope[r.name]
        ctx[r.name === 'loop' ? LOOP_ALIAS : r.name] = toCel(v === undefined ? null : v)
      }
      try {
        return fromCel(fn(ctx))
      } catch (err) {
        const e = err as { summary?: string; message?: string }
        throw new Error(String(e.summary ?? e.message ?? err).replaceAll(LOOP_ALIAS, 'loop'))
      }
    }
  }
  if (cache.size > 2000) cache.clear()
  cache.set(source, compiled)
  return compiled
}

interface Node {
  op: string
  args: unknown
  pos?: number
  start?: number
}

const MACROS_BINDING = new Set(['all', 'exists', 'exists_one', 'map', 'filter'])

function isNode(x: unknown): x is Node {
  return x != null && typeof x === 'object' && typeof (x as Node).op === 'string'
}

/** Free variables of an AST (macro variables like `x` in `l.all(x, …)` are bound). */
function collectReads(node: unknown, bound: ReadonlySet<string>, out: CelRead[]): void {
  if (Array.isArray(node)) {
    for (const n of node) collectReads(n, bound, out)
    return
  }
  if (!isNode(node)) return
  if (node.op === 'id') {
    const name = String(node.args)
    if (!bound.has(name)) out.push({ name, offset: node.pos ?? node.start ?? 0 })
    return
  }
  if (node.op === '.' || node.op === '.?') {
    const [target, member] = node.args as [unknown, unknown]
    if (isNode(target) && target.op === 'id' && !bound.has(String(target.args)) && typeof member === 'string') {
      out.push({ name: String(target.args), member, offset: target.pos ?? target.start ?? 0 })
      return
    }
  }
  if (node.op === '[]') {
    // steps["my-step"]: ids with a dash cannot follow a dot.
    const [target, key] = node.args as [unknown, unknown]
    if (isNode(target) && target.op === 'id' && !bound.has(String(target.args)) && isNode(key) && key.op === 'value' && typeof key.args === 'string') {
      out.push({ name: String(target.args), member: key.args, offset: target.pos ?? target.start ?? 0 })
      return
    }
  }
  if (node.op === 'rcall') {
    const [fname, target, args] = node.args as [string, unknown, unknown[]]
    collectReads(target, bound, out)
    if (MACROS_BINDING.has(fname) && Array.isArray(args) && isNode(args[0]) && args[0].op === 'id') {
      const inner = new Set(bound)
      inner.add(String(args[0].args))
      collectReads(args.slice(1), inner, out)
      return
    }
    collectReads(args, bound, out)
    return
  }
  if (node.op === 'call') {
    const [, args] = node.args as [string, unknown]
    collectReads(args, bound, out)
    return
  }
  collectReads(node.args, bound, out)
}

/** Rename the identifier `loop` (outside strings and not after a dot) to LOOP_ALIAS. */
function renameLoop(src: string): string {
  if (!src.includes('loop')) return src
  let out = ''
  let i = 0
  while (i < src.length) {
    const ch = src[i]
    if (ch === '"' || ch === "'") {
      const end = stringEnd(src, i)
      out += src.slice(i, end)
      i = end
      continue
    }
    if (src.startsWith('loop', i) && !/[A-Za-z0-9_.]/.test(src[i - 1] ?? ' ') && !/[A-Za-z0-9_]/.test(src[i + 4] ?? ' ')) {
      out += LOOP_ALIAS
      i += 4
      continue
    }
    out += ch
    i++
  }
  return out
}

/** Index just past the string literal starting at `i` (single, double or triple quotes). */
function stringEnd(src: string, i: number): number {
  const q = src[i]
  const triple = src.startsWith(q.repeat(3), i)
  const close = triple ? q.repeat(3) : q
  let j = i + close.length
  while (j < src.length) {
    if (src[j] === '\\') {
      j += 2
      continue
    }
    if (src.startsWith(close, j)) return j + close.length
    j++
  }
  return src.length
}

/** JSON value → CEL: whole numbers become ints (bigint). */
export function toCel(v: unknown): unknown {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : v
  if (v == null || typeof v !== 'object') return v
  if (Array.isArray(v)) return v.map(toCel)
  if (ArrayBuffer.isView(v)) return v
  const o: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) o[k] = toCel(x)
  return o
}

/** CEL value → JSON: ints back to numbers, maps to objects. */
export function fromCel(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v)
  if (v == null || typeof v !== 'object') return v
  if (Array.isArray(v)) return v.map(fromCel)
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), fromCel(x)]))
  if (ArrayBuffer.isView(v) || v instanceof Date) return v
  const o: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) o[k] = fromCel(x)
  return o
}

/** One `${…}` in a template: the expression and its offsets in the string. */
export interface TemplatePart {
  expr: string
  /** Offset of the expression's first character (after `${`). */
  offset: number
  /** Offset just past the closing `}`. */
  end: number
  start: number
}

/** The `${}` parts of a string; throws CelSyntaxError for an unclosed `${`. */
export function templateParts(s: string): TemplatePart[] {
  const parts: TemplatePart[] = []
  let i = s.indexOf('${')
  while (i !== -1) {
    let depth = 0
    let j = i + 2
    let end = -1
    while (j < s.length) {
      const ch = s[j]
      if (ch === '"' || ch === "'") {
        j = stringEnd(s, j)
        continue
      }
      if (ch === '{') depth++
      else if (ch === '}') {
        if (depth === 0) {
          end = j
          break
        }
        depth--
      }
      j++
    }
    if (end === -1) throw new CelSyntaxError(`"$${'{'}" is not closed: end the expression with "}"`, i)
    parts.push({ expr: s.slice(i + 2, end), offset: i + 2, end: end + 1, start: i })
    i = s.indexOf('${', end + 1)
  }
  return parts
}

/** A string that is exactly one `${expr}` yields the value itself; otherwise each part is replaced by its text. */
export function interpolate(value: unknown, scope: Record<string, unknown>): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value
    const parts = templateParts(value)
    if (parts.length === 1 && parts[0].start === 0 && parts[0].end === value.length) return compileExpression(parts[0].expr).evaluate(scope)
    let out = ''
    let at = 0
    for (const p of parts) {
      out += value.slice(at, p.start) + asText(compileExpression(p.expr).evaluate(scope))
      at = p.end
    }
    return out + value.slice(at)
  }
  if (Array.isArray(value)) return value.map((x) => interpolate(x, scope))
  if (value != null && typeof value === 'object') {
    const o: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(value)) o[k] = interpolate(x, scope)
    return o
  }
  return value
}

/** An expression written bare (`when: a > 1`) or wrapped (`when: ${a > 1}`). */
export function bareExpression(s: string): { expr: string; offset: number } {
  const t = s.trim()
  const lead = s.indexOf(t)
  if (t.startsWith('${') && t.endsWith('}')) {
    const parts = templateParts(t)
    if (parts.length === 1 && parts[0].start === 0 && parts[0].end === t.length) return { expr: parts[0].expr, offset: lead + 2 }
  }
  return { expr: s, offset: 0 }
}

function asText(v: unknown): string {
  return typeof v === 'string' ? v : (JSON.stringify(v) ?? 'null')
}
