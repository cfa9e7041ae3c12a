/**
 * An agent's input and output schemas written in TypeScript with valibot (the project's
 * `schema.ts`, exporting `input` and `output`) and emitted as JSON Schema into its
 * manifest.json, so authors do not hand-write JSON Schema (issue 16). The file is bundled with
 * esbuild (valibot resolved from the project, else from zerostate's own installation: a fresh
 * project needs no `npm install`) and converted with `@valibot/to-json-schema` to the draft the
 * mesh validates outputs with (2020-12, trust/output-schema.ts).
 */
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import { toJsonSchema } from '@valibot/to-json-schema'
import type { GenericSchema } from 'valibot'
import { checkManifest } from '../lib/index.ts'
import { CliError, EXIT } from './errors.ts'

/** The project file that holds the schemas. */
export const SCHEMA_FILE = 'schema.ts'
/** The JSON Schema draft the mesh checks outputs with. */
export const SCHEMA_TARGET = 'draft-2020-12'

/** A JSON Schema object. */
export type JsonSchema = Record<string, unknown>

/** The node_modules directory zerostate's own valibot is in: where a project without its own finds it. */
function ownNodeModules(): string {
  const valibot = createRequire(import.meta.url).resolve('valibot')
  const at = valibot.lastIndexOf(`${sep}node_modules${sep}`)
  return valibot.slice(0, at + `${sep}node_modules`.length)
}

const isSchema = (x: unknown): x is GenericSchema =>
  x != null && typeof x === 'object' && (x as { kind?: unknown }).kind === 'schema' && typeof (x as { type?: unknown }).type === 'string'

/** Load `root/schema.ts`: its `input` and `output` valibot schemas (either may be absent, not both). */
export async function loadSchemas(dir: string): Promise<{ input?: GenericSchema; output?: GenericSchema }> {
  const root = resolve(dir)
  const file = join(root, SCHEMA_FILE)
  let esbuild: typeof import('esbuild')
  try {
    esbuild = await import('esbuild')
  } catch {
    throw new CliError(`${SCHEMA_FILE} needs esbuild to be read: run \`npm install esbuild\` beside zerostate`, EXIT.failed)
  }
  let code: string
  try {
    const out = await esbuild.build({
      entryPoints: [file],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      absWorkingDir: root,
      nodePaths: [ownNodeModules()],
      logLevel: 'silent'
    })
    code = out.outputFiles[0].text
  } catch (err) {
    const errors = (err as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }> }).errors ?? []
    const where = errors.map((e) => (e.location != null ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text))
    throw new CliError(`${SCHEMA_FILE} could not be read:\n${where.join('\n') || (err as Error).message}`, EXIT.failed)
  }
  let mod: Record<string, unknown>
  try {
    mod = (await import(/* @vite-ignore */ `data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as Record<string, unknown>
  } catch (err) {
    throw new CliError(`${SCHEMA_FILE} failed when it ran: ${(err as Error).message}`, EXIT.failed)
  }
  const schemas: { input?: GenericSchema; output?: GenericSchema } = {}
  for (const which of ['input', 'output'] as const) {
    const s = mod[which]
    if (s === undefined) continue
    if (!isSchema(s))
      throw new CliError(`${SCHEMA_FILE}: \`export const ${which}\` must be a valibot schema, such as v.object({ … }) or v.string()`, EXIT.failed)
    schemas[which] = s
  }
  if (schemas.input == null && schemas.output == null)
    throw new CliError(`${SCHEMA_FILE} exports neither \`input\` nor \`output\`: export the valibot schemas of what the agent reads and answers`, EXIT.failed)
  return schemas
}

/** One valibot schema as the JSON Schema a manifest carries; CliError naming what cannot be expressed. */
export function jsonSchemaOf(schema: GenericSchema, which: 'input' | 'output'): JsonSchema {
  try {
    return toJsonSchema(schema, { target: SCHEMA_TARGET, errorMode: 'throw' }) as JsonSchema
  } catch (err) {
    throw new CliError(
      `${SCHEMA_FILE}: the ${which} schema cannot be written as JSON Schema (${(err as Error).message}): the mesh checks JSON Schema, so use what it can express (types, objects, arrays, lengths, ranges, patterns, picklists)`,
      EXIT.failed
    )
  }
}

/**
 * Write the JSON Schemas of `root/schema.ts` into `root/manifest.json` ("input", "output").
 * Returns what was written, or undefined when the project has no schema.ts (its manifest is
 * left as the author wrote it).
 */
export async function emitSchemas(root: string): Promise<{ input?: JsonSchema; output?: JsonSchema } | undefined> {
  if (!existsSync(join(root, SCHEMA_FILE))) return undefined
  const schemas = await loadSchemas(root)
  const emitted: { input?: JsonSchema; output?: JsonSchema } = {}
  if (schemas.input != null) emitted.input = jsonSchemaOf(schemas.input, 'input')
  if (schemas.output != null) emitted.output = jsonSchemaOf(schemas.output, 'output')
  const path = join(root, 'manifest.json')
  let manifest: Record<string, unknown>
  try {
    manifest = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
  } catch (err) {
    throw new CliError(
      `${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing: every agent needs one' : `not JSON (${(err as Error).message})`}`
    )
  }
  const next = { ...manifest, ...emitted }
  const issues = checkManifest(next)
  if (issues.length > 0)
    throw new CliError(`manifest.json with the schemas of ${SCHEMA_FILE}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, EXIT.failed)
  await writeFile(path, `${JSON.stringify(next, null, 2)}\n`)
  return emitted
}
