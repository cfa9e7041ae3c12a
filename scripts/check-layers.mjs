// The house rules of STYLE.md "The shape of the house", checked on every import in src/:
//  1. direction: routes → ui → app → orchestrator → memory, runtime → (app/early →) mesh → core;
//     lower rooms import nothing of higher ones, and nothing below ui imports Svelte;
//  2. index-only: a room is entered through its index.ts (orchestrator sub-rooms too;
//     a sub-room may also use the orchestrator's shared errors.ts, ids.ts, components.ts);
//  3. no cycle between rooms (file-level cycles are dpdm's job, type-only imports included).
// Exits non-zero naming each offending import.
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

const O = 'src/lib/orchestrator'
const SUBROOMS = ['plan', 'llm', 'route', 'dispatch', 'donor', 'workflow', 'trust'].map((r) => `${O}/${r}`)
// The app's early start (app/early: the mesh node and the identity, issue 11) sits just above the
// mesh: it may import the mesh and core only, so the chunk a tab needs to begin joining stays small.
const EARLY = 'src/lib/app/early'
const ROOMS = ['src/lib/core', 'src/lib/mesh', 'src/lib/memory', 'src/lib/runtime', ...SUBROOMS, O, EARLY, 'src/lib/app', 'src/lib/ui', 'src/routes']
const LEVEL = {
  'src/lib/core': 0,
  'src/lib/mesh': 1,
  [EARLY]: 1.5,
  'src/lib/memory': 2,
  'src/lib/runtime': 2,
  [O]: 3,
  'src/lib/app': 4,
  'src/lib/ui': 5,
  'src/routes': 6
}
const SHARED = new Set(['errors.ts', 'ids.ts', 'components.ts', 'test-fixtures.ts'].map((f) => `${O}/${f}`))
const SVELTE_OK = new Set(['src/lib/ui', 'src/routes'])
const levelOf = (room) => LEVEL[room] ?? LEVEL[O]
const roomOf = (f) => ROOMS.find((r) => f === r || f.startsWith(`${r}/`)) ?? (f.startsWith('src/lib/') && !f.slice(8).includes('/') ? 'src/lib' : null)

const files = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : /\.(ts|mts|mjs|js|svelte)$/.test(e.name) ? [join(dir, e.name)] : []
  )
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]|(?:^|\n)\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|new URL\(\s*['"](\.[^'"]+)['"]/g

const problems = []
const edges = new Map()
for (const f of files('src')) {
  const from = roomOf(f)
  if (from == null) continue
  const src = readFileSync(f, 'utf8')
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3] ?? m[4]
    if (m[4] != null) continue // new URL('./worker.ts', import.meta.url): a worker entry of the same room
    if ((/^svelte(\/|$)/.test(spec) || spec.startsWith('$app/')) && !SVELTE_OK.has(from)) {
      problems.push(`${f}: imports "${spec}" (no Svelte below src/lib/ui)`)
      continue
    }
    let target
    if (spec.startsWith('$lib/')) target = join('src/lib', spec.slice(5)).replace(/(\/index)?$/, (s) => s)
    else if (spec.startsWith('.')) target = join(dirname(f), spec)
    else continue
    if (spec.startsWith('$lib/') && !/\.[a-z]+$/.test(target)) target += '.ts'
    const to = roomOf(target)
    if (to == null || to === from) continue
    if (to === 'src/lib' && target !== 'src/lib/index.ts') {
      problems.push(`${f}: imports "${spec}" (src/lib holds only the public index.ts)`)
      continue
    }
    if (from === 'src/lib' || to === 'src/lib') {
      if (to === 'src/lib' && levelOf(from) < LEVEL['src/lib/ui']) problems.push(`${f}: imports the public index "${spec}" from below the UI`)
      continue
    }
    const sameOrch = from.startsWith(O) && to.startsWith(O)
    if (!sameOrch && levelOf(to) >= levelOf(from))
      problems.push(`${f}: imports "${spec}" — ${from} may not depend on ${to} (direction: routes → ui → app → orchestrator → memory, runtime → mesh → core)`)
    const entry = `${to}/index.ts`
    // Tests of any room may use the orchestrator's shared test fixtures (never shipped).
    const viaIndex =
      target === entry ||
      (SHARED.has(target) && from.startsWith(`${O}/`)) ||
      (to === 'src/lib/ui' && from === 'src/routes') ||
      (target === `${O}/test-fixtures.ts` && /\.test\.ts$/.test(f))
    if (!viaIndex) problems.push(`${f}: imports "${spec}" — enter ${to} through its index.ts`)
    if (from === 'src/routes' && to !== 'src/lib/ui') problems.push(`${f}: imports "${spec}" — pages use the public API ($lib/index) and $lib/ui only`)
    if (!/\.test\.ts$|test-fixtures|conformance/.test(f) && !SHARED.has(target)) {
      if (!edges.has(from)) edges.set(from, new Set())
      edges.get(from).add(to)
    }
  }
}
// Room-level cycles (e.g. plan → llm → plan), tests excluded.
const seen = new Set()
const stack = []
const visit = (r) => {
  if (stack.includes(r)) {
    problems.push(`rooms form a cycle: ${[...stack.slice(stack.indexOf(r)), r].map((x) => relative('src/lib', x) || x).join(' → ')}`)
    return
  }
  if (seen.has(r)) return
  seen.add(r)
  stack.push(r)
  for (const n of edges.get(r) ?? []) visit(n)
  stack.pop()
}
for (const r of edges.keys()) visit(r)
if (problems.length > 0) {
  console.error(`House rules broken (see STYLE.md "The shape of the house"):\n  ${problems.join('\n  ')}`)
  process.exit(1)
}
console.log(`layers: ok (${ROOMS.length} rooms, direction, index-only entry, no room cycle)`)
