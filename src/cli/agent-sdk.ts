/**
 * The agent SDK of the terminal (`zerostate agent new|build|test|publish`): scaffold an agent,
 * compile it, run it against its examples in the same sandbox the mesh uses, publish it.
 *
 * An agent project is a directory with `manifest.json` (without author and signature: publishing
 * signs it), `schema.ts` (its input and output in valibot, written into the manifest as JSON
 * Schema by `agent new` and `agent build`: agent-schema.ts), `examples.json`
 * (`[{ "input": …, "output": … }]`, what `agent test` checks), the sources, and
 * `build/agent.wasm` once built. AssemblyScript compiles with the `assemblyscript` package from
 * npm; Rust and C with their own toolchains where they are installed (toolchains.ts).
 */
import { spawnSync } from 'node:child_process'
import { isDeepStrictEqual } from 'node:util'
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { type Schema, Validator } from '@cfworker/json-schema'
import { createAgentRuntime, loadIdentity, MemoryAgentStore, publishLocal, type UnsignedManifest } from '../lib/index.ts'
import { emitSchemas, SCHEMA_FILE } from './agent-schema.ts'
import { CliError, EXIT } from './errors.ts'
import { FileKeyStore } from './key-store.ts'
import { findC, findRust } from './toolchains.ts'

export type AgentLang = 'assemblyscript' | 'rust' | 'c'
export const LANGS: readonly AgentLang[] = ['assemblyscript', 'rust', 'c']
export const WASM_OUT = join('build', 'agent.wasm')

const NAME = /^[a-z][a-z0-9-]{1,39}$/

/** The manifest every template starts from: a WASI command that reads text and answers JSON (input and output come from schema.ts). */
function manifestOf(name: string): UnsignedManifest {
  return {
    name,
    version: '0.1.0',
    description: `${name}: counts the words and characters of a text.`,
    capabilities: ['text-statistics'],
    abi: 'wasi-preview1',
    price: 0.1,
    limits: { memoryMiB: 32, timeMs: 5000 }
  } as UnsignedManifest
}

/** The template's schemas: `agent new` and `agent build` write them into manifest.json as JSON Schema. */
const SCHEMA_TS = `// What the agent reads and answers, in TypeScript with valibot (https://valibot.dev).
// \`zerostate agent build\` writes these into manifest.json as JSON Schema ("input", "output"):
// edit them here, not there. The mesh checks every output against "output"; an output that
// does not match is a wrong result.
import * as v from "valibot"

export const input = v.pipe(v.string(), v.maxLength(1_000_000), v.description("The text to count"))

export const output = v.object({
  words: v.pipe(v.number(), v.integer(), v.minValue(0), v.description("Runs of characters between white space")),
  characters: v.pipe(v.number(), v.integer(), v.minValue(0))
})
`

const EXAMPLES = [
  { input: 'hello mesh', output: { words: 2, characters: 10 } },
  { input: '  one  two three ', output: { words: 3, characters: 17 } },
  { input: '', output: { words: 0, characters: 0 } }
]

const AS_INDEX = `// The agent (ABI wasi-preview1): its input arrives on stdin (a string as UTF-8 text, anything
// else as JSON text); what it writes on stdout is its output (JSON when it parses as JSON).
import { print, readStdin } from "./wasi"

const text = readStdin()
let words = 0
let inWord = false
for (let i = 0; i < text.length; i++) {
  const c = text.charCodeAt(i)
  const space = c == 32 || c == 9 || c == 10 || c == 13
  if (!space && !inWord) words++
  inWord = !space
}
print("{\\"words\\":" + words.toString() + ",\\"characters\\":" + text.length.toString() + "}")
`

const RUST_MAIN = `// The agent (ABI wasi-preview1): input on stdin, output (JSON) on stdout.
use std::io::Read;

fn main() {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).expect("stdin");
    let words = text.split_whitespace().count();
    print!("{{\\"words\\":{},\\"characters\\":{}}}", words, text.chars().count());
}
`

const C_MAIN = `/* The agent (ABI wasi-preview1): input on stdin, output (JSON) on stdout. */
#include <stdio.h>
#include <ctype.h>

int main(void) {
  int c, words = 0, chars = 0, in_word = 0;
  while ((c = getchar()) != EOF) {
    chars++;
    if (isspace(c)) in_word = 0;
    else if (!in_word) { in_word = 1; words++; }
  }
  printf("{\\"words\\":%d,\\"characters\\":%d}", words, chars);
  return 0;
}
`

function readme(name: string, lang: AgentLang): string {
  return `# ${name}

A ZeroState agent (${lang}, ABI \`wasi-preview1\`): it reads a text on stdin and answers
\`{ "words", "characters" }\` on stdout. Change the source, \`${SCHEMA_FILE}\` (what it reads and
answers, in valibot: the build writes it into \`manifest.json\` as JSON Schema) and the rest of
\`manifest.json\`, keep \`examples.json\` true, then:

\`\`\`sh
npx zerostate agent build      # compile to ${WASM_OUT}
npx zerostate agent test       # run every example in the mesh's sandbox
npx zerostate agent publish    # sign with this machine's key and publish to the mesh
\`\`\`

The agent has no ambient authority: no network, no files, no environment; each call is a fresh
instance with the limits of \`manifest.json\`. See docs/agents.md in ZeroState.
`
}

/** `agent new NAME`: write a buildable agent project into `dir/NAME`; returns its path. */
export async function newAgent(dir: string, name: string, lang: AgentLang): Promise<string> {
  if (!NAME.test(name)) throw new CliError(`agent names are 2-40 characters of a-z, 0-9 and "-", starting with a letter: ${JSON.stringify(name)} is not one`)
  if (!LANGS.includes(lang)) throw new CliError(`--lang is one of ${LANGS.join(', ')}`)
  const root = resolve(dir, name)
  if (existsSync(root)) throw new CliError(`${root} exists already: choose another name or directory`)
  await mkdir(root, { recursive: true })
  const files: Record<string, string> = {
    'manifest.json': `${JSON.stringify(manifestOf(name), null, 2)}\n`,
    'examples.json': `${JSON.stringify(EXAMPLES, null, 2)}\n`,
    'README.md': readme(name, lang),
    [SCHEMA_FILE]: SCHEMA_TS,
    '.gitignore': 'build/\ntarget/\n'
  }
  if (lang === 'assemblyscript') {
    await mkdir(join(root, 'assembly'))
    files['assembly/index.ts'] = AS_INDEX
    // The WASI I/O the bundled agents use (stdin, stdout, stderr, exit), copied in so the project stands alone.
    files['assembly/wasi.ts'] = await readFile(new URL('../../agents/lib/wasi.ts', import.meta.url), 'utf8')
  } else if (lang === 'rust') {
    await mkdir(join(root, 'src'))
    files['Cargo.toml'] = `[package]\nname = "${name}"\nversion = "0.1.0"\nedition = "2021"\n\n[profile.release]\nopt-level = "s"\nlto = true\nstrip = true\n`
    files['src/main.rs'] = RUST_MAIN
  } else {
    files['main.c'] = C_MAIN
  }
  for (const [file, text] of Object.entries(files)) await writeFile(join(root, file), text)
  await emitSchemas(root)
  return root
}

/** The project's language, from what is in it. */
function langOf(root: string): AgentLang {
  if (existsSync(join(root, 'assembly', 'index.ts'))) return 'assemblyscript'
  if (existsSync(join(root, 'Cargo.toml'))) return 'rust'
  if (existsSync(join(root, 'main.c'))) return 'c'
  throw new CliError(`${root} is not an agent project (no assembly/index.ts, Cargo.toml or main.c): run \`zerostate agent new NAME\` first`)
}

/**
 * `agent build`: write the schemas of schema.ts into manifest.json (when there is one), then
 * compile the project in `root` to build/agent.wasm; returns its path, language and the schemas written.
 */
export async function buildAgent(
  root: string,
  opts: { optimize?: boolean } = {}
): Promise<{ wasm: string; lang: AgentLang; schemas: Awaited<ReturnType<typeof emitSchemas>> }> {
  const lang = langOf(root)
  const schemas = await emitSchemas(root)
  const wasm = await compile(root, lang, opts)
  return { wasm, lang, schemas }
}

async function compile(root: string, lang: AgentLang, opts: { optimize?: boolean }): Promise<string> {
  const out = join(root, WASM_OUT)
  await mkdir(join(root, 'build'), { recursive: true })
  if (lang === 'assemblyscript') {
    let asc: typeof import('assemblyscript/asc')
    try {
      asc = await import('assemblyscript/asc')
    } catch {
      throw new CliError('AssemblyScript is not installed here: run `npm install assemblyscript` in the project (or beside zerostate)', EXIT.failed)
    }
    let errors = ''
    const sink = (append: (s: string) => void) => ({
      write(s: string | Uint8Array) {
        append(typeof s === 'string' ? s : new TextDecoder().decode(s))
        return true
      }
    })
    // Paths relative to the project (--baseDir): asc resolves `--use abort=` as a path inside it.
    const { error } = await asc.main(
      [
        'assembly/index.ts',
        '--baseDir',
        root,
        '--outFile',
        WASM_OUT,
        ...(opts.optimize === false ? ['-O0'] : ['-O3', '--noAssert']),
        '--runtime',
        'incremental',
        '--exportStart',
        '_start',
        '--use',
        'abort=assembly/wasi/wasiAbort'
      ],
      { stdout: sink(() => {}), stderr: sink((s) => (errors += s)) }
    )
    if (error) throw new CliError(`the agent did not compile:\n${errors || error.message}`, EXIT.failed)
    return out
  }
  if (lang === 'rust') {
    const rust = findRust()
    if (!rust.ok) throw new CliError(`Rust agents cannot be built here: ${rust.why}`, EXIT.failed)
    const cargoToml = await readFile(join(root, 'Cargo.toml'), 'utf8')
    const crate = /^\s*name\s*=\s*"([^"]+)"/m.exec(cargoToml)?.[1]
    if (crate == null) throw new CliError(`${join(root, 'Cargo.toml')} names no package (name = "…")`)
    // Errors go to stderr as cargo writes them; stdout stays the command's (the module's path).
    const r = spawnSync(rust.cargo, ['build', ...(opts.optimize === false ? [] : ['--release']), '--target', rust.target], {
      cwd: root,
      env: { ...process.env, RUSTC: rust.rustc },
      stdio: ['ignore', 2, 'inherit']
    })
    if (r.status !== 0) throw new CliError(`cargo build --target ${rust.target} failed (${rust.version}): see its errors above`, EXIT.failed)
    await copyFile(join(root, 'target', rust.target, opts.optimize === false ? 'debug' : 'release', `${crate}.wasm`), out)
    return out
  }
  const c = findC()
  if (!c.ok) throw new CliError(`C agents cannot be built here: ${c.why}`, EXIT.failed)
  const sources = (await readdir(root)).filter((f) => f.endsWith('.c')).map((f) => join(root, f))
  const r = spawnSync(c.cc, [`--target=${c.target}`, opts.optimize === false ? '-O0' : '-O2', '-Wall', '-o', out, ...sources, '-lm'], {
    stdio: ['ignore', 2, 'inherit']
  })
  if (r.status !== 0) throw new CliError(`${c.cc} --target=${c.target} did not compile the agent: see its errors above`, EXIT.failed)
  return out
}

/** Why `value` does not match the JSON Schema `schema` (as the mesh checks it: draft 2020-12), or undefined. */
function mismatch(schema: unknown, value: unknown): string | undefined {
  if (schema == null || typeof schema !== 'object' || value instanceof Uint8Array) return undefined
  const res = new Validator(schema as Schema, '2020-12', false).validate(value === undefined ? null : JSON.parse(JSON.stringify(value)))
  if (res.valid) return undefined
  const e = res.errors.at(-1) ?? res.errors[0]
  return e == null ? 'it does not match' : `${e.instanceLocation}: ${e.error}`.slice(0, 300)
}

/** What `agent test` found. */
export interface ExampleResult {
  input: unknown
  expected: unknown
  output?: unknown
  error?: string
  ok: boolean
}

/** Read the project's manifest, module and examples. */
export async function readProject(
  root: string
): Promise<{ manifest: UnsignedManifest; wasm: Uint8Array; examples: Array<{ input: unknown; output: unknown }> }> {
  const read = async (file: string, what: string): Promise<string> =>
    readFile(join(root, file), 'utf8').catch(() => {
      throw new CliError(`${join(root, file)} is missing: ${what}`)
    })
  let manifest: UnsignedManifest
  let examples: Array<{ input: unknown; output: unknown }>
  try {
    manifest = JSON.parse(await read('manifest.json', 'every agent needs one'))
    examples = JSON.parse(await read('examples.json', 'add [{ "input": …, "output": … }]'))
  } catch (err) {
    if (err instanceof CliError) throw err
    throw new CliError(`a JSON file of the project is not valid JSON: ${(err as Error).message}`)
  }
  if (!Array.isArray(examples)) throw new CliError('examples.json must be a list of { "input": …, "output": … }')
  const wasm = await readFile(join(root, WASM_OUT)).catch(() => {
    throw new CliError(`${join(root, WASM_OUT)} is missing: run \`zerostate agent build\` first`)
  })
  return { manifest, wasm: new Uint8Array(wasm), examples }
}

/** `agent test`: validate the manifest and module as publishing would, then run every example in the sandbox. */
export async function testAgent(root: string, profile: string): Promise<ExampleResult[]> {
  const { manifest, wasm, examples } = await readProject(root)
  const store = new MemoryAgentStore()
  // Signed with this machine's key, exactly as `agent publish` would: a manifest or module the mesh would refuse fails here.
  const entry = await publishLocal(store, await loadIdentity(new FileKeyStore(profile)), { manifest, wasm })
  const runtime = createAgentRuntime({ workers: 1, store })
  try {
    // The worker starts first, as a donor's pool has: its start-up (seconds on a loaded machine) is not the agent's time.
    await runtime.start()
    const results: ExampleResult[] = []
    for (const ex of examples) {
      // The mesh checks inputs and outputs against the manifest's schemas: an example that breaks them fails here.
      const badInput = mismatch(entry.manifest.input, ex.input)
      if (badInput != null) {
        results.push({ input: ex.input, expected: ex.output, error: `the input does not match the manifest's input schema (${badInput})`, ok: false })
        continue
      }
      try {
        const r = await runtime.run({ id: entry.id, manifest: entry.manifest, wasm }, ex.input)
        const badOutput = mismatch(entry.manifest.output, r.output)
        if (badOutput != null) {
          results.push({
            input: ex.input,
            expected: ex.output,
            output: r.output,
            error: `the output does not match the manifest's output schema (${badOutput}): the mesh would count it a wrong result`,
            ok: false
          })
          continue
        }
        results.push({ input: ex.input, expected: ex.output, output: r.output, ok: isDeepStrictEqual(r.output, ex.output) })
      } catch (err) {
        const e = err as Error
        results.push({ input: ex.input, expected: ex.output, error: `${e.name}: ${e.message}`, ok: false })
      }
    }
    return results
  } finally {
    await runtime.stop()
  }
}
