import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { type Schema, Validator } from '@cfworker/json-schema'
import { afterEach, describe, expect, it } from 'vitest'
import { emitSchemas } from './agent-schema.ts'
import { CliError } from './errors.ts'

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

const MANIFEST = {
  name: 'schema-test',
  version: '0.1.0',
  description: 'A test of schema.ts',
  capabilities: ['testing'],
  abi: 'wasi-preview1',
  price: 0.1,
  limits: { memoryMiB: 32, timeMs: 5000 }
}

/** A project directory (under the system tmpdir, where no node_modules is: valibot must come from zerostate's). */
async function project(schemaTs: string | undefined, manifest: object = MANIFEST): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'zs-schema-'))
  dirs.push(root)
  for (let d = root; d !== dirname(d); d = dirname(d)) expect(existsSync(join(d, 'node_modules')), d).toBe(false)
  await writeFile(join(root, 'manifest.json'), JSON.stringify(manifest, null, 2))
  if (schemaTs != null) await writeFile(join(root, 'schema.ts'), schemaTs)
  return root
}
const manifestOf = async (root: string) => JSON.parse(await readFile(join(root, 'manifest.json'), 'utf8'))

describe('schema.ts → manifest.json (valibot to JSON Schema)', () => {
  it('writes the input and output schemas as JSON Schema 2020-12, the rest of the manifest untouched', async () => {
    const root = await project(`import * as v from 'valibot'
type Unused = { a: number } // TypeScript, not just JavaScript
export const input = v.object({
  text: v.pipe(v.string(), v.minLength(1), v.maxLength(500), v.description('What to split')),
  mode: v.optional(v.picklist(['words', 'lines'])),
  limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)))
})
export const output = v.object({
  parts: v.array(v.pipe(v.string(), v.regex(/^\\S+$/))),
  note: v.nullable(v.string())
})
`)
    const emitted = await emitSchemas(root)
    const S = 'https://json-schema.org/draft/2020-12/schema'
    const input = {
      $schema: S,
      type: 'object',
      properties: {
        text: { type: 'string', minLength: 1, maxLength: 500, description: 'What to split' },
        mode: { type: 'string', enum: ['words', 'lines'] },
        limit: { type: 'integer', minimum: 1, maximum: 100 }
      },
      required: ['text']
    }
    const output = {
      $schema: S,
      type: 'object',
      properties: { parts: { type: 'array', items: { type: 'string', pattern: '^\\S+$' } }, note: { anyOf: [{ type: 'string' }, { type: 'null' }] } },
      required: ['parts', 'note']
    }
    expect(emitted).toEqual({ input, output })
    expect(await manifestOf(root)).toEqual({ ...MANIFEST, input, output })
    // As the mesh reads it (trust/output-schema.ts): a good output passes, a bad one does not.
    const check = new Validator(output as Schema, '2020-12', false)
    expect(check.validate({ parts: ['a', 'b'], note: null }).valid).toBe(true)
    expect(check.validate({ parts: ['a b'], note: null }).valid).toBe(false)
    expect(check.validate({ parts: [] }).valid).toBe(false)
  })

  it('a project without schema.ts keeps its hand-written manifest as it is', async () => {
    const root = await project(undefined, { ...MANIFEST, output: { type: 'string' } })
    const before = await readFile(join(root, 'manifest.json'), 'utf8')
    expect(await emitSchemas(relative(process.cwd(), root))).toBeUndefined()
    expect(await readFile(join(root, 'manifest.json'), 'utf8')).toBe(before)
  })

  it('only the schema exported is written; an older hand-written one of the other stays', async () => {
    const root = await project(`import * as v from 'valibot'\nexport const output = v.boolean()\n`, { ...MANIFEST, input: { type: 'string' } })
    // A path relative to the working directory, as `--dir my-agent` gives.
    await emitSchemas(relative(process.cwd(), root))
    expect(await manifestOf(root)).toMatchObject({ input: { type: 'string' }, output: { type: 'boolean' } })
  })

  it('says what is wrong, and leaves the manifest as it was', async () => {
    const cases: Array<[string, RegExp]> = [
      [
        `import * as v from 'valibot'\nexport const output = v.pipe(v.string(), v.transform((s) => s.length))\n`,
        /schema\.ts: the output schema cannot be written as JSON Schema \(.*transform.*\)/
      ],
      [`import * as v from 'valibot'\nexport const input = v.string(\n`, /schema\.ts could not be read:\n.*schema\.ts:3:0: /],
      [`import * as v from 'valibot'\nexport const output = 42\n`, /`export const output` must be a valibot schema/],
      [`export const nothing = 1\n`, /exports neither `input` nor `output`/],
      [`import { z } from 'no-such-package'\nexport const input = z\n`, /could not be read:\n.*Could not resolve "no-such-package"/],
      [`throw new Error('boom')\n`, /schema\.ts failed when it ran: boom/]
    ]
    for (const [src, message] of cases) {
      const root = await project(src)
      const before = await readFile(join(root, 'manifest.json'), 'utf8')
      const err = await emitSchemas(root).catch((e: unknown) => e)
      expect(err, src).toBeInstanceOf(CliError)
      expect((err as Error).message, src).toMatch(message)
      expect(await readFile(join(root, 'manifest.json'), 'utf8')).toBe(before)
    }
  })
})
