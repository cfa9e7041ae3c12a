/**
 * HTTP side of `npm start`: serves the built app (SPA fallback to index.html)
 * and tells the app which relays to dial at RELAYS_PATH; Prometheus scrapes METRICS_PATH.
 */
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createServer, type Server } from 'node:http'
import sirv from 'sirv'
import { RELAYS_PATH } from '../src/lib/mesh/index.ts'
import { cspDirectives, cspHeader, modelHosts } from './csp.js'

/** Where Prometheus scrapes the relay (text format 0.0.4). */
export const METRICS_PATH = '/metrics'

/** The WebSocket origin (CSP source) of a relay multiaddr, e.g. /ip4/1.2.3.4/tcp/9090/ws → ws://1.2.3.4:9090. */
export function wsOrigin(ma: string): string | undefined {
  const m = /^\/(ip4|ip6|dns|dns4|dns6)\/([^/]+)\/tcp\/(\d+)(\/tls)?\/(wss?)(\/|$)/.exec(ma)
  if (m == null) return undefined
  const secure = m[4] != null || m[5] === 'wss'
  const host = m[1] === 'ip6' ? `[${m[2]}]` : m[2]
  const port = (secure && m[3] === '443') || (!secure && m[3] === '80') ? '' : `:${m[3]}`
  return `${secure ? 'wss' : 'ws'}://${host}${port}`
}

/**
 * The Content-Security-Policy header for the app (issue 11): the policy the build put in
 * index.html's <meta> (so SvelteKit's script hashes match), with connect-src narrowed to
 * these relays' WebSocket origins and the model hosts, and framing forbidden. Without a
 * built policy, relay/csp.js's directives without script hashes.
 */
export function appCsp(builtMeta: string | undefined, relays: string[]): string {
  const origins = relays.map(wsOrigin).filter((o): o is string => o != null)
  const connect = ["'self'", ...origins, ...modelHosts()].join(' ')
  if (builtMeta == null) return cspHeader(cspDirectives({ relays: origins }))
  const parts = builtMeta
    .split(';')
    .map((d) => d.trim())
    .filter((d) => d !== '' && !d.startsWith('connect-src') && !d.startsWith('frame-ancestors'))
  return [...parts, `connect-src ${connect}`, "frame-ancestors 'none'"].join('; ')
}

/** The CSP of a built page's <meta http-equiv>, if any. */
export function builtCsp(html: string): string | undefined {
  const m = /<meta http-equiv="content-security-policy" content="([^"]*)"/i.exec(html)
  return m?.[1]?.replaceAll('&#39;', "'").replaceAll('&quot;', '"').replaceAll('&amp;', '&')
}

/** Options of the app server. */
export interface AppServerOptions {
  host: string
  port: number
  /** Directory of the built app (adapter-static output). */
  root: string
  /** Relay multiaddrs handed to the app; called per request so restarts are seen. */
  relays: () => string[]
  /** Prometheus text for GET METRICS_PATH; without it the path is the app's (404 fallback). */
  metrics?: () => Promise<{ contentType: string; body: string }>
}

/** Start serving the app; resolves once listening, with the bound port. */
export async function startAppServer(opts: AppServerOptions): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  // The built policy, read again when index.html changes (a rebuild changes its hashes).
  let seen = { mtimeMs: -1, meta: undefined as string | undefined }
  const built = (): string | undefined => {
    try {
      const file = join(opts.root, 'index.html')
      const { mtimeMs } = statSync(file)
      if (mtimeMs !== seen.mtimeMs) seen = { mtimeMs, meta: builtCsp(readFileSync(file, 'utf8')) }
    } catch {
      seen = { mtimeMs: -1, meta: undefined }
    }
    return seen.meta
  }
  // On every response: a worker's script carries the policy the worker runs under.
  const csp = (): string => appCsp(built(), opts.relays())
  const assets = sirv(opts.root, {
    single: true,
    etag: true,
    // build/ holds .br and .gz copies of scripts and pages (scripts/precompress.mjs): sent to
    // browsers that accept them (join time, issue 11: a new tab's ~1.5 MB of JavaScript).
    brotli: true,
    gzip: true,
    setHeaders(res, pathname) {
      res.setHeader('Content-Security-Policy', csp())
      // The service worker and its manifest must never be cached by HTTP, or updates stall.
      if (pathname === '/sw.js' || pathname.endsWith('.webmanifest') || pathname === '/index.html') {
        res.setHeader('Cache-Control', 'no-cache')
      } else if (pathname.startsWith('/_app/immutable/')) {
        res.setHeader('Cache-Control', 'public, max-age=31536000, immutable')
      }
    }
  })
  const server = createServer((req, res) => {
    if (req.url?.split('?')[0] === RELAYS_PATH) {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
      res.end(JSON.stringify({ relays: opts.relays() }))
      return
    }
    if (opts.metrics != null && req.url?.split('?')[0] === METRICS_PATH) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end()
        return
      }
      opts.metrics().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' })
          res.end(req.method === 'HEAD' ? undefined : body)
        },
        (err: unknown) => {
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`metrics unavailable: ${(err as Error).message}\n`)
        }
      )
      return
    }
    assets(req, res, () => {
      res.writeHead(404).end('not found')
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => {
      resolve()
    })
  })
  const address = server.address()
  const port = typeof address === 'object' && address != null ? address.port : opts.port
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => {
          resolve()
        })
      })
  }
}
