// The C toolchain of the bundled media agents: Debian's clang with the wasm32-wasi target,
// wasi-libc, the wasm32 compiler runtime and the stb headers (stb_image, stb_image_resize,
// stb_image_write). agents/build.mjs (so `npm run build`, `npm start` and `npm test`) makes sure
// it is there: as root on a machine with apt-get it installs the packages, as scripts/test.mjs
// installs Chromium; otherwise it says what to install.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The Debian packages the C agents need. */
export const C_AGENT_PACKAGES = ['clang', 'lld', 'wasi-libc', 'libclang-rt-14-dev-wasm32', 'libstb-dev']
/** The compiler (override with CLANG=…). */
export const CLANG = process.env.CLANG ?? 'clang'

/** Whether clang builds a WASI command that uses libc, libm and stb_image here. */
export function cToolchainWorks() {
  const dir = mkdtempSync(join(tmpdir(), 'zs-cc-'))
  try {
    const src = join(dir, 'probe.c')
    writeFileSync(src, '#include <stdio.h>\n#include <math.h>\n#include <stb/stb_image.h>\nint main(void){printf("%f", sqrt(2.0));return 0;}\n')
    const r = spawnSync(CLANG, ['--target=wasm32-wasi', '-O2', '-o', join(dir, 'probe.wasm'), src, '-lm'], { stdio: 'ignore' })
    return r.status === 0 && existsSync(join(dir, 'probe.wasm'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Make sure the C toolchain works, installing it with apt-get when this process is root.
 * Returns true when it works, false (after saying why and what to install) when it does not.
 */
export function ensureCToolchain(log = console.log) {
  if (cToolchainWorks()) return true
  if (process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0) {
    log(`The C agents' toolchain is missing: installing ${C_AGENT_PACKAGES.join(' ')} with apt-get…`)
    /** @type {import('node:child_process').SpawnSyncOptions} */
    const q = { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }
    const install = () => spawnSync('apt-get', ['install', '-y', '-qq', ...C_AGENT_PACKAGES], q).status === 0
    if (!install()) {
      spawnSync('apt-get', ['update', '-qq'], q)
      install()
    }
    if (cToolchainWorks()) return true
  }
  log(`The C agents need clang with the wasm32-wasi target: apt-get install -y ${C_AGENT_PACKAGES.join(' ')}`)
  return false
}
