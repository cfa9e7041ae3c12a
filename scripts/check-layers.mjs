// Dependencies point one way (STYLE.md): routes → orchestrator → memory, runtime, mesh.
// mesh, memory and runtime import no Svelte and nothing from orchestrator; mesh imports
// nothing above it. Exits non-zero naming each offending import.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

const RULES = {
  'src/lib/mesh': [/\/(memory|runtime|orchestrator|ui)\//, /^svelte/, /^\$app/],
  'src/lib/memory': [/\/(orchestrator|runtime|ui)\//, /^svelte/, /^\$app/],
  'src/lib/runtime': [/\/(orchestrator|memory|ui)\//, /^svelte/, /^\$app/],
  'src/lib/orchestrator': [/\/ui\//, /^svelte/, /^\$app/]
}
const files = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? files(join(dir, e.name)) : /\.(ts|mjs|js)$/.test(e.name) ? [join(dir, e.name)] : [])
const problems = []
for (const [dir, banned] of Object.entries(RULES)) {
  for (const f of files(dir)) {
    const src = readFileSync(f, 'utf8')
    for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)[^'"\n]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2]
      const resolved = spec.startsWith('.') ? join(f, '..', spec).replace(/\\/g, '/') + '/' : spec
      if (banned.some((re) => re.test(spec.startsWith('.') ? '/' + resolved.replace(/^src\/lib\//, '') : spec))) problems.push(`${f}: imports "${spec}"`)
    }
  }
}
if (problems.length > 0) {
  console.error(`Layering violations (see STYLE.md "The shape of the house"):\n  ${problems.join('\n  ')}`)
  process.exit(1)
}
console.log('layers: ok')
