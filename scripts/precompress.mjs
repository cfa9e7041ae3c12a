// Gzip and Brotli copies of the built app's scripts, styles and pages (build/**/*.{js,css,html,json,svg,webmanifest}),
// which the relay's static server sends to browsers that accept them (sirv gzip/brotli). A new tab
// fetches ~1.5 MB of JavaScript before the mesh can start; over a busy relay (loopback, load 10-27 on
// 2 cores) the 1 MB main chunk alone took 0.6-2.8 s to arrive (issue 11, join time). Chromium asks for
// Brotli only over HTTPS, hence both. Fast settings (Brotli 5, gzip 9: ~0.1 s per MB), not the
// slowest (Brotli 11: 3.5 s per MB here). Large worker bundles fetched on demand (the LLM engines'
// workers, wasm) are left as they are.
// node scripts/precompress.mjs [dir=build]
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

const ROOT = process.argv[2] ?? 'build'
const TYPES = /\.(js|css|html|json|svg|webmanifest)$/
const MAX_BYTES = 4 * 1024 * 1024
const files = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]))
let count = 0
let before = 0
let after = 0
const t0 = Date.now()
for (const file of files(ROOT)) {
  if (!TYPES.test(file)) continue
  const size = statSync(file).size
  if (size < 1024 || size > MAX_BYTES) continue
  const bytes = readFileSync(file)
  const br = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_SIZE_HINT]: size } })
  const gz = gzipSync(bytes, { level: 9 })
  // A copy that saves nothing is not kept: the server then sends the file itself.
  if (br.length < size) writeFileSync(`${file}.br`, br)
  if (gz.length < size) writeFileSync(`${file}.gz`, gz)
  count++
  before += size
  after += gz.length
}
console.log(`precompressed ${count} files in ${ROOT}/ in ${Date.now() - t0} ms: ${(before / 1e6).toFixed(2)} MB, gzip ${(after / 1e6).toFixed(2)} MB`)
