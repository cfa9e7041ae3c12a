/**
 * The agent SDK of the terminal (`zerostate agent new|build|test|publish`): scaffold an agent,
 * compile it, run it against its examples in the same sandbox the mesh uses, publish it.
 *
 * An agent project is a directory with `manifest.json` (without author and signature: publishing
 * signs it), `examples.json` (`[{ "input": …, "output": … }]`, what `agent test` checks), the
 * sources, and `build/agent.wasm` once built. AssemblyScript compiles with the `assemblyscript`
 * package from npm; Rust and C with their own toolchains where they are installed.
 */
import { spawnSync } from 'node:child_process'
import { isDeepStrictEqual } from 'node:util'
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { createAgentRuntime, loadIdentity, MemoryAgentStore, publishLocal, type UnsignedManifest } from '../lib/index.ts'
import { CliError, EXIT } from './errors.ts'
import { FileKeyStore } from './key-store.ts'

export type AgentLang = 'assemblyscript' | 'rust' | 'c'
export const LANGS: readonly AgentLang[] = ['assemblyscript', 'rust', 'c']
export const WASM_OUT = join('build', 'agent.wasm')

const NAME = /^[a-z][a-z0-9-]{1,39}$/

/** The manifest every template starts from: a WASI command that reads text and answers JSON. */
function manifestOf(name: string): UnsignedManifest {
  return {
    name,
    version: '0.1.0',
    description: `${name}: counts the words and characters of a text.`,
    capabilities: ['text-statistics'],
    abi: 'wasi-preview1',
    input: { type: 'string' },
    output: {
      type: 'object',
      properties: { words: { type: 'integer' }, characters: { type: 'integer' } },
      required: ['words', 'characters']
    },
    price: 0.1,
    limits: { memoryMiB: 32, timeMs: 5000 }
  } as UnsignedManifest
}

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
\`{ "words", "characters" }\` on stdout. Change the source and \`manifest.json\`, keep
\`examples.json\` true, then:

\`\`\`sh
npx zerostate agent build      # compile to ${WASM_OUT}
npx zerostate agent test       # run every example in the mesh's sandbox
npx zerostate agent publish    # sign with this machine's key and publish to the mesh
\`\`\`

The agent has no ambient authority: no network, no files, no environment; each call is a fresh
instance with the limits of \`manifest.json\`. See the ZeroState README, "Writing agents".
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
    '.gitignore': 'build/\ntarget/\n'
  }
  if (lang === 'assemblyscript') {
    await mkdir(join(root, 'assembly'))
    files['assembly/index.ts'] = AS_INDEX
    // The WASI I/O the bundled agents use (stdin, stdout, stderr, exit), copied in so the project stands alone.
    files['assembly/wasi.ts'] = await readFile(new URL('../../agents/lib/wasi.ts', import.meta.url), 'utf8')
  } else if (lang === 'rust') {
    await mkdir(join(root, 'src'))
    files['Cargo.toml'] = `[package]\nname = "${name}"\nversion = "0.1.0"\nedition = "2021"\n\n[profile.release]\nopt-level = "s"\nlto = true\n`
    files['src/main.rs'] = RUST_MAIN
  } else {
    files['main.c'] = C_MAIN
  }
  for (const [file, text] of Object.entries(files)) await writeFile(join(root, file), text)
  return root
}

/** The project's language, from what is in it. */
function langOf(root: string): AgentLang {
  if (existsSync(join(root, 'assembly', 'index.ts'))) return 'assemblyscript'
  if (existsSync(join(root, 'Cargo.toml'))) return 'rust'
  if (existsSync(join(root, 'main.c'))) return 'c'
  throw new CliError(`${root} is not an agent project (no assembly/index.ts, Cargo.toml or main.c): run \`zerostate agent new NAME\` first`)
}

function has(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0
}

/** `agent build`: compile the project in `root` to build/agent.wasm; returns its path. */
export async function buildAgent(root: string, opts: { optimize?: boolean } = {}): Promise<string> {
  const lang = langOf(root)
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
    if (!has('cargo', ['--version'])) throw new CliError('Rust is not installed here: install rustup, then `rustup target add wasm32-wasip1`', EXIT.failed)
    const r = spawnSync('cargo', ['build', ...(opts.optimize === false ? [] : ['--release']), '--target', 'wasm32-wasip1'], {
      cwd: root,
      stdio: ['ignore', 'inherit', 'inherit']
    })
    if (r.status !== 0) throw new CliError('cargo build failed (is the target there? `rustup target add wasm32-wasip1`)', EXIT.failed)
    await copyFile(join(root, 'target', 'wasm32-wasip1', opts.optimize === false ? 'debug' : 'release', `${basename(root)}.wasm`), out)
    return out
  }
  const cc = ['clang', 'wasi-sdk-clang'].find((c) => has(c, ['--version']))
  if (cc == null) throw new CliError('No C compiler for WASI here: install wasi-sdk (clang with a wasm32-wasip1 sysroot)', EXIT.failed)
  const r = spawnSync(cc, ['--target=wasm32-wasip1', opts.optimize === false ? '-O0' : '-O2', '-o', out, join(root, 'main.c')], {
    stdio: ['ignore', 'inherit', 'inherit']
  })
  if (r.status !== 0) throw new CliError(`${cc} could not build for wasm32-wasip1 (a WASI sysroot is needed: wasi-sdk)`, EXIT.failed)
  return out
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
    const results: ExampleResult[] = []
    for (const ex of examples) {
      try {
        const r = await runtime.run({ id: entry.id, manifest: entry.manifest, wasm }, ex.input)
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
