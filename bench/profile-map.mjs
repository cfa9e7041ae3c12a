// Dev tools' helper: where a CPU-profile frame of the built app comes from, through the
// build's source maps when it has them (`npx vite build --sourcemap`), else the chunk.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { TraceMap, originalPositionFor } from '@jridgewell/trace-mapping'

const ROOT = new URL('..', import.meta.url).pathname
const maps = new Map()

function mapOf(url) {
  if (!maps.has(url)) {
    const path = join(ROOT, 'build', new URL(url).pathname)
    maps.set(url, existsSync(`${path}.map`) ? new TraceMap(readFileSync(`${path}.map`, 'utf8')) : null)
  }
  return maps.get(url)
}

/** The original source, line and name of a frame (chunk and line when the build has no maps). */
export function sourceOf(frame) {
  if (frame.url === '' || !frame.url.startsWith('http')) return { source: '', line: 0, name: frame.functionName || '(native)' }
  const map = mapOf(frame.url)
  if (map == null) return { source: frame.url.split('/').pop(), line: frame.lineNumber + 1, name: frame.functionName || '(anon)' }
  const pos = originalPositionFor(map, { line: frame.lineNumber + 1, column: frame.columnNumber })
  const src = (pos.source ?? '?').replace(/^(\.\.\/)+/, '')
  const nm = src.lastIndexOf('node_modules/')
  return { source: nm >= 0 ? src.slice(nm + 13) : src, line: pos.line ?? 0, name: pos.name ?? frame.functionName ?? '(anon)' }
}

/** What a frame belongs to: an npm package, a file of src/lib, or the chunk. */
export function groupOf(frame) {
  const { source, name } = sourceOf(frame)
  if (source === '') return name
  if (!source.includes('/')) return source
  const lib = source.indexOf('src/lib/')
  if (lib >= 0) return source.slice(lib + 8)
  const parts = source.split('/')
  return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]
}

/** A frame as `name source:line`. */
export function frameName(frame) {
  const { source, line, name } = sourceOf(frame)
  return source === '' ? name : `${name} ${source}:${line}`
}
