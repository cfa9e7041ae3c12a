/**
 * docs/agents.md's worked example, built from its sources in every language and run in the
 * mesh's sandbox against its examples, as an author would: `agent new`, the example's files in
 * place of the template's, `agent build`, `agent test`. The doc shows those files verbatim
 * (each block after `<!-- file: PATH -->` must equal the file), so it cannot drift from what is
 * built here. C and Rust run where their toolchains are (toolchains.ts); otherwise the test is
 * skipped saying what is missing.
 */
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type AgentLang, buildAgent, newAgent, testAgent } from './agent-sdk.ts'
import { findC, findRust } from './toolchains.ts'

const DOCS = new URL('../../docs/', import.meta.url).pathname
const EXAMPLE = join(DOCS, 'examples', 'slugify')
/** Where each language's source goes in the project `agent new` writes. */
const SOURCE: Record<AgentLang, [from: string, to: string]> = {
  assemblyscript: ['assemblyscript/index.ts', 'assembly/index.ts'],
  c: ['c/main.c', 'main.c'],
  rust: ['rust/main.rs', 'src/main.rs']
}

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

async function buildAndTest(lang: AgentLang) {
  const dir = await mkdtemp(join(tmpdir(), `zs-docs-${lang}-`))
  dirs.push(dir)
  const root = await newAgent(dir, 'slugify', lang)
  for (const f of ['manifest.json', 'schema.ts', 'examples.json']) await cp(join(EXAMPLE, f), join(root, f))
  await cp(join(EXAMPLE, SOURCE[lang][0]), join(root, SOURCE[lang][1]))
  // AssemblyScript unoptimized: binaryen's -O3 passes take minutes on a loaded 2-core machine and change no behaviour.
  await buildAgent(root, { optimize: lang !== 'assemblyscript' })
  const manifest = JSON.parse(await readFile(join(root, 'manifest.json'), 'utf8'))
  const examples = JSON.parse(await readFile(join(EXAMPLE, 'examples.json'), 'utf8')) as unknown[]
  const results = await testAgent(root, join(dir, 'profile'))
  return { manifest, examples, results }
}

describe('docs/agents.md: the worked example (slugify)', () => {
  it('shows every example file verbatim', async () => {
    const doc = await readFile(join(DOCS, 'agents.md'), 'utf8')
    const blocks = [...doc.matchAll(/<!-- file: (\S+) -->\n```\w*\n([\s\S]*?)```/g)]
    expect(blocks.map((b) => b[1]).sort()).toEqual(
      [
        'examples/slugify/manifest.json',
        'examples/slugify/schema.ts',
        'examples/slugify/examples.json',
        ...Object.values(SOURCE).map(([f]) => `examples/slugify/${f}`)
      ].sort()
    )
    for (const [, file, body] of blocks) expect(body, file).toBe(await readFile(join(DOCS, file), 'utf8'))
  })

  const langs: Array<[AgentLang, { ok: true } | { ok: false; why: string }]> = [
    ['assemblyscript', { ok: true }],
    ['c', findC()],
    ['rust', findRust()]
  ]
  for (const [lang, toolchain] of langs) {
    it(`${lang}: builds from docs/examples/slugify and passes every example in the sandbox, schemas from schema.ts`, { timeout: 300_000 }, async (ctx) => {
      if (!toolchain.ok) ctx.skip(`${lang} toolchain missing: ${toolchain.why}`)
      const { manifest, examples, results } = await buildAndTest(lang)
      expect(manifest.output).toMatchObject({ type: 'object', required: ['slug', 'length'], properties: { slug: { pattern: '^([a-z0-9]+(-[a-z0-9]+)*)?$' } } })
      expect(manifest.input).toMatchObject({ type: 'string', maxLength: 100_000 })
      expect(results).toHaveLength(examples.length)
      for (const r of results) expect(r.ok, JSON.stringify(r)).toBe(true)
    })
  }
})
