// Builds the bundled agents: agents/<name>/index.ts (AssemblyScript) or agents/<name>/main.c (C, the
// media agents: clang --target=wasm32-wasi with wasi-libc and the stb headers, agents/c-toolchain.mjs)
// → static/agents/<name>.wasm (an llm-prompt agent has only its manifest.json and an empty module),
// and static/agents/index.json with each manifest signed by the bundled-agents dev key.
//
// The dev key is derived from a fixed, public seed, so the build is deterministic (same sources →
// same bytes, same ids, same signatures). It proves only "built from this repository's sources",
// not who built it: the app trusts bundled agents because it serves them itself.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { delimiter } from 'node:path'
import { fileURLToPath } from 'node:url'
import { register } from 'tsx/esm/api'
import asc from 'assemblyscript/asc'
import { CLANG, ensureCToolchain } from './c-toolchain.mjs'

register()
const { generateKeyPairFromSeed, privateKeyToProtobuf } = await import('@libp2p/crypto/keys')
const { loadIdentity, MemoryKeyStore } = await import('../src/lib/core/index.ts')
const { signPackage, validateModule } = await import('../src/lib/runtime/index.ts')

const root = fileURLToPath(new URL('..', import.meta.url))
const outDir = `${root}static/agents/`
const DEV_SEED = 'zerostate bundled agents dev key v1 (public, not a secret)'

async function devIdentity() {
  const seed = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(DEV_SEED)))
  const store = new MemoryKeyStore()
  await store.save(privateKeyToProtobuf(await generateKeyPairFromSeed('Ed25519', seed)))
  return await loadIdentity(store)
}

async function compile(name, abi) {
  const args = [`agents/${name}/index.ts`, '--outFile', `static/agents/${name}.wasm`, '-O3', '--noAssert', '--runtime', 'incremental']
  if (abi === 'wasi-preview1') args.push('--exportStart', '_start', '--use', 'abort=agents/lib/wasi/wasiAbort')
  let errors = ''
  const { error } = await asc.main(args, {
    stdout: {
      write() {
        return true
      }
    },
    stderr: {
      write(s) {
        errors += s
        return true
      }
    }
  })
  if (error) throw new Error(`agent "${name}" failed to compile:\n${errors || error.message}`)
  return new Uint8Array(await readFile(`${outDir}${name}.wasm`))
}

/**
 * A C agent: a WASI command from agents/<name>/main.c. Deterministic (no debug info, no paths:
 * NDEBUG, stripped); a 1 MiB stack for the decoders' locals; the heap grows up to the runtime's cap,
 * and a failed allocation is an error the agent reports, not a trap.
 */
async function compileC(name) {
  const out = `static/agents/${name}.wasm`
  const args = ['--target=wasm32-wasi', '-O2', '-DNDEBUG', '-std=c11', '-Wall', '-Werror', '-Wno-unused-function']
  // stb's own headers warn under -Wall; they are a maintained library, not ours to fix.
  args.push('-Wno-unknown-warning-option', '-Wno-unused-but-set-variable', '-Wno-sign-compare', '-Wno-missing-field-initializers')
  args.push('-Wl,--strip-all', '-Wl,-z,stack-size=1048576', '-o', out, `agents/${name}/main.c`, '-lm')
  // clang runs wasm-opt after linking when one is on the PATH: always binaryen's from node_modules
  // (assemblyscript's, pinned by the lock file), so `npm run build` and `node agents/build.mjs` give the same bytes.
  const env = { ...process.env, PATH: `${root}node_modules/.bin${delimiter}${process.env.PATH ?? ''}` }
  const r = spawnSync(CLANG, args, { encoding: 'utf8', env })
  if (r.status !== 0) throw new Error(`agent "${name}" failed to compile:\n${r.stderr || r.error?.message}`)
  return new Uint8Array(await readFile(`${outDir}${name}.wasm`))
}

const t0 = performance.now()
process.chdir(root)
await mkdir(outDir, { recursive: true })
const identity = await devIdentity()
const names = (await readdir(`${root}agents`, { withFileTypes: true }))
  .filter((d) => d.isDirectory() && existsSync(`${root}agents/${d.name}/manifest.json`))
  .map((d) => d.name)
  .sort()
const cAgents = names.filter((name) => existsSync(`${root}agents/${name}/main.c`))
// Without the C toolchain (not root, no apt-get) the media agents are left out, loudly: the app still runs.
const withC = cAgents.length === 0 || ensureCToolchain()
if (!withC) console.warn(`  skipping the C agents (${cAgents.join(', ')}): the bundle will have no media agents`)
const agents = []
for (const name of names) {
  const unsigned = JSON.parse(await readFile(`${root}agents/${name}/manifest.json`, 'utf8'))
  if (unsigned.name !== name) throw new Error(`agents/${name}/manifest.json names "${unsigned.name}"`)
  // An llm-prompt agent is its manifest alone: its module is empty (served as an empty file).
  if (cAgents.includes(name) && !withC) continue
  const wasm = unsigned.abi === 'llm-prompt' ? new Uint8Array() : cAgents.includes(name) ? await compileC(name) : await compile(name, unsigned.abi)
  if (unsigned.abi === 'llm-prompt') await writeFile(`${outDir}${name}.wasm`, wasm)
  validateModule(wasm, unsigned.abi, 2048)
  const { id, manifest } = await signPackage(identity, unsigned, wasm)
  agents.push({ id, file: `${name}.wasm`, size: wasm.byteLength, manifest })
  console.log(`  ${name.padEnd(18)} ${unsigned.abi.padEnd(14)} ${String(wasm.byteLength).padStart(7)} B  ${id.slice(0, 16)}…`)
}
await writeFile(`${outDir}index.json`, `${JSON.stringify({ version: 1, key: identity.publicKey, agents }, null, 2)}\n`)
console.log(`built ${agents.length} agents into static/agents/ in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
