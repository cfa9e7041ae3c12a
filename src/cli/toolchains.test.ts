import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { findC } from './toolchains.ts'

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

describe('findC', () => {
  it('a clang that cannot link a WASI command is not taken, and the reason names what it said for each target', async (ctx) => {
    if (existsSync('/opt/wasi-sdk/bin/clang')) ctx.skip('wasi-sdk is installed: it would be found after the fake clang')
    const dir = await mkdtemp(join(tmpdir(), 'zs-cc-fake-'))
    dirs.push(dir)
    const fake = join(dir, 'clang')
    // Answers --version like a compiler, then fails every build as a clang without the WASI sysroot does.
    await writeFile(
      fake,
      `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "clang version 14"; exit 0; fi\necho "wasm-ld: error: unable to find library -lc" >&2\nexit 1\n`
    )
    await chmod(fake, 0o755)
    const before = process.env.CLANG
    process.env.CLANG = fake
    try {
      const found = findC()
      expect(found.ok).toBe(false)
      const why = found.ok ? '' : found.why
      expect(why).toContain(`${fake} --target=wasm32-wasip1: wasm-ld: error: unable to find library -lc`)
      expect(why).toContain(`${fake} --target=wasm32-wasi: wasm-ld: error`)
      expect(why).toMatch(/apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32/)
    } finally {
      if (before == null) delete process.env.CLANG
      else process.env.CLANG = before
    }
  })
})
