/**
 * The compilers `zerostate agent build` uses for Rust and C agents, found where they are:
 * Rust through rustup (target wasm32-wasip1) or Debian's packages (rustc 1.63 with
 * libstd-rust-dev-wasm32: target wasm32-wasi, the same WASI preview 1 under its older name);
 * C through a clang that can link a WASI command (Debian's clang, lld, wasi-libc and
 * libclang-rt-14-dev-wasm32; or wasi-sdk). When none is found, `why` says what was looked at
 * and what to install.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

/** The WASI preview 1 target names, newest first (rustc ≥ 1.78 and clang ≥ 18 know wasip1; older ones only wasi). */
const WASI_TARGETS = ['wasm32-wasip1', 'wasm32-wasi'] as const

export type Found<T> = ({ ok: true } & T) | { ok: false; why: string }

const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

/** A rustc whose sysroot holds a WASI standard library, with the cargo beside it. */
export function findRust(): Found<{ rustc: string; cargo: string; target: string; version: string }> {
  const seen: string[] = []
  for (const rustc of ['rustc', '/usr/bin/rustc']) {
    const version = run(rustc, ['--version'])
    if (version.status !== 0) continue
    const sysroot = run(rustc, ['--print', 'sysroot']).stdout.trim()
    const target = WASI_TARGETS.find((t) => existsSync(join(sysroot, 'lib', 'rustlib', t, 'lib')))
    const cargo = rustc.includes('/') ? join(dirname(rustc), 'cargo') : 'cargo'
    if (target != null && run(cargo, ['--version']).status === 0) return { ok: true, rustc, cargo, target, version: version.stdout.trim() }
    seen.push(`${version.stdout.trim()} (${sysroot}) has ${target != null ? 'no cargo beside it' : 'no WASI standard library'}`)
  }
  return {
    ok: false,
    why: `no Rust compiler with a WASI standard library here${seen.length > 0 ? ` (${seen.join('; ')})` : ' (no rustc)'}: run \`rustup target add wasm32-wasip1\`, or on Debian \`apt-get install rustc cargo libstd-rust-dev-wasm32\``
  }
}

let cFound: Found<{ cc: string; target: string }> | undefined

/** A clang that compiles and links a WASI command with libc here (probed once per process). */
export function findC(): Found<{ cc: string; target: string }> {
  if (cFound != null) return cFound
  const dir = mkdtempSync(join(tmpdir(), 'zs-cc-'))
  const tried: string[] = []
  try {
    const src = join(dir, 'probe.c')
    writeFileSync(src, '#include <stdio.h>\nint main(void) { puts("ok"); return 0; }\n')
    for (const cc of [process.env.CLANG ?? 'clang', '/opt/wasi-sdk/bin/clang']) {
      if (run(cc, ['--version']).status !== 0) continue
      for (const target of WASI_TARGETS) {
        const out = join(dir, `probe-${target}.wasm`)
        const r = run(cc, [`--target=${target}`, '-o', out, src])
        if (r.status === 0 && existsSync(out)) {
          cFound = { ok: true, cc, target }
          return cFound
        }
        tried.push(
          `${cc} --target=${target}: ${
            r.stderr
              .split('\n')
              .find((l) => /error/.test(l))
              ?.trim() ?? `exit ${r.status}`
          }`
        )
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  cFound = {
    ok: false,
    why: `no C compiler that links a WASI command here${tried.length > 0 ? ` (${tried.join('; ')})` : ' (no clang)'}: on Debian \`apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32\`, elsewhere wasi-sdk`
  }
  return cFound
}
