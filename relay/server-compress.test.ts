import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAppServer } from './server.ts'

/** GET with the given Accept-Encoding; the raw body bytes and headers (node:http does not decode). */
function get(port: number, path: string, acceptEncoding?: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: acceptEncoding == null ? {} : { 'accept-encoding': acceptEncoding } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
    })
    req.on('error', reject)
    req.end()
  })
}

// Join time (issue 11): a new tab's scripts come compressed from the relay's server.
describe('the app server sends precompressed scripts (scripts/precompress.mjs)', () => {
  const root = mkdtempSync(join(tmpdir(), 'zs-precompress-'))
  const script = `export const big = ${JSON.stringify('the mesh '.repeat(20_000))}\n`
  let app: Awaited<ReturnType<typeof startAppServer>>

  beforeAll(async () => {
    mkdirSync(join(root, '_app/immutable/chunks'), { recursive: true })
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>t</title>')
    writeFileSync(join(root, '_app/immutable/chunks/big.js'), script)
    writeFileSync(join(root, '_app/immutable/chunks/tiny.js'), 'export {}\n')
    const r = spawnSync(process.execPath, ['scripts/precompress.mjs', root], { encoding: 'utf8' })
    expect(r.status, r.stderr).toBe(0)
    app = await startAppServer({ host: '127.0.0.1', port: 0, root, relays: () => [] })
  })
  afterAll(async () => {
    await app?.close()
    rmSync(root, { recursive: true, force: true })
  })

  it('writes .gz and .br copies of scripts worth compressing, not of tiny ones', () => {
    expect(existsSync(join(root, '_app/immutable/chunks/big.js.gz'))).toBe(true)
    expect(existsSync(join(root, '_app/immutable/chunks/big.js.br'))).toBe(true)
    expect(existsSync(join(root, '_app/immutable/chunks/tiny.js.gz'))).toBe(false)
  })

  it('sends the gzip copy to a browser that accepts gzip, the same script once decoded', async () => {
    const r = await get(app.port, '/_app/immutable/chunks/big.js', 'gzip, deflate')
    expect(r.status).toBe(200)
    expect(r.headers['content-encoding']).toBe('gzip')
    expect(String(r.headers.vary)).toMatch(/accept-encoding/i)
    expect(r.body.length).toBeLessThan(script.length / 10)
    expect(gunzipSync(r.body).toString('utf8')).toBe(script)
    expect(String(r.headers['content-type'])).toMatch(/javascript/)
    expect(r.headers['content-security-policy']).toBeDefined()
  })

  it('sends the script itself to a client that accepts no encoding', async () => {
    const r = await get(app.port, '/_app/immutable/chunks/big.js')
    expect(r.headers['content-encoding']).toBeUndefined()
    expect(r.body.toString('utf8')).toBe(script)
  })
})
