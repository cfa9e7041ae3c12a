import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { checkManifest } from '../lib/index.ts'
import { cli, DEFAULT_APP } from './main.ts'
import { EXIT } from './errors.ts'
import { FileKeyStore } from './key-store.ts'
import { defaultProfileDir } from './peer.ts'

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

/** Run the command with captured output and no network unless an argument leads to one. */
async function zerostate(...argv: string[]) {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d) => (out += d))
  stderr.on('data', (d) => (err += d))
  const { run } = cli({ stdout, stderr, stdin: new PassThrough(), env: { HOME: '/nonexistent' }, interrupted: () => new Promise(() => {}) })
  const code = await run(argv)
  return { code, out, err }
}

describe('zerostate (arguments)', () => {
  it('--help lists every command and exits 0', async () => {
    const r = await zerostate('--help')
    expect(r.code).toBe(EXIT.ok)
    for (const c of ['status', 'agents', 'submit', 'donate', 'run', 'publish']) expect(r.out).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'))
    const sub = await zerostate('submit', '--help')
    expect(sub.code).toBe(EXIT.ok)
    expect(sub.out).toContain('--input-file <path>')
  })

  it('usage errors exit 2 with what is wrong, before any network', async () => {
    const unknown = await zerostate('frobnicate')
    expect(unknown.code).toBe(EXIT.usage)
    expect(unknown.err).toMatch(/unknown command 'frobnicate'/)
    const missing = await zerostate('submit')
    expect(missing.code).toBe(EXIT.usage)
    expect(missing.err).toMatch(/missing required argument 'description'/)
    const both = await zerostate('submit', 'x', '--input', 'a', '--input-file', '/nope')
    expect(both.code).toBe(EXIT.usage)
    expect(both.err).toMatch(/--input or --input-file, not both/)
    const badNumber = await zerostate('--join-timeout', '0', 'status')
    expect(badNumber.code).toBe(EXIT.usage)
    expect(badNumber.err).toMatch(/a whole number above 0/)
    const noFile = await zerostate('run', '/no/such/flow.yaml')
    expect(noFile.code).toBe(EXIT.usage)
    expect(noFile.err).toMatch(/no such file/i)
    const noManifest = await zerostate('publish', 'a.wasm')
    expect(noManifest.code).toBe(EXIT.usage)
    expect(noManifest.err).toMatch(/--manifest <file>/)
  })

  it('a wrong --app is "unreachable" (exit 3), not a crash', async () => {
    const r = await zerostate('--app', 'not a url', 'status')
    expect(r.code).toBe(EXIT.unreachable)
    expect(r.err).toMatch(/is not a URL/)
  })

  it('a manifest that is not JSON is refused before joining', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zs-cli-'))
    dirs.push(dir)
    await writeFile(join(dir, 'a.wasm'), new Uint8Array([0, 97, 115, 109]))
    await writeFile(join(dir, 'm.json'), '{ not json')
    const r = await zerostate('--app', 'http://127.0.0.1:9/', 'publish', join(dir, 'a.wasm'), '--manifest', join(dir, 'm.json'))
    expect(r.code).toBe(EXIT.usage)
    expect(r.err).toMatch(/is not JSON/)
  })

  it('defaults: the app on 127.0.0.1:8080 and the profile in $ZEROSTATE_HOME or ~/.zerostate', () => {
    expect(DEFAULT_APP).toBe('http://127.0.0.1:8080/')
    expect(defaultProfileDir({ ZEROSTATE_HOME: '/srv/zs' })).toBe('/srv/zs')
    expect(defaultProfileDir({})).toMatch(/\.zerostate$/)
  })
})

describe('FileKeyStore', () => {
  it('keeps the key in a file only its owner can read, and reads it back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zs-key-'))
    dirs.push(dir)
    const store = new FileKeyStore(join(dir, 'profile'))
    expect(await store.load()).toBeUndefined()
    const key = new Uint8Array([1, 2, 3, 250])
    await store.save(key)
    expect(await store.load()).toEqual(key)
    expect((await stat(store.path)).mode & 0o777).toBe(0o600)
    expect(await new FileKeyStore(join(dir, 'profile')).load()).toEqual(key)
  })
})

describe('agent new', () => {
  it('refuses a bad name or an existing directory; writes the project files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zs-new-'))
    dirs.push(dir)
    const bad = await zerostate('agent', 'new', 'Bad Name', '--dir', dir)
    expect(bad.code).toBe(EXIT.usage)
    expect(bad.err).toMatch(/agent names are 2-40 characters/)
    const lang = await zerostate('agent', 'new', 'x-y', '--lang', 'cobol', '--dir', dir)
    expect(lang.code).toBe(EXIT.usage)
    expect(lang.err).toMatch(/Allowed choices are assemblyscript, rust, c/)
    for (const l of ['assemblyscript', 'rust', 'c']) {
      const r = await zerostate('agent', 'new', `a-${l}`, '--lang', l, '--dir', dir)
      expect(r.code).toBe(EXIT.ok)
      const manifest = JSON.parse(await readFile(join(dir, `a-${l}`, 'manifest.json'), 'utf8'))
      expect(manifest).toMatchObject({ name: `a-${l}`, abi: 'wasi-preview1' })
      expect(checkManifest(manifest)).toEqual([])
    }
    expect((await zerostate('agent', 'new', 'a-c', '--lang', 'c', '--dir', dir)).code).toBe(EXIT.usage)
    const noBuild = await zerostate('agent', 'test', '--dir', join(dir, 'a-c'))
    expect(noBuild.code).toBe(EXIT.usage)
    expect(noBuild.err).toMatch(/build\/agent\.wasm is missing: run `zerostate agent build` first/)
  })
})
