/**
 * HTTP side of `npm start`: serves the built app (SPA fallback to index.html)
 * and tells the app which relays to dial at RELAYS_PATH.
 */
import { createServer, type Server } from 'node:http'
import sirv from 'sirv'
import { RELAYS_PATH } from '../src/lib/mesh/index.ts'

/** Options of the app server. */
export interface AppServerOptions {
  host: string
  port: number
  /** Directory of the built app (adapter-static output). */
  root: string
  /** Relay multiaddrs handed to the app; called per request so restarts are seen. */
  relays: () => string[]
}

/** Start serving the app; resolves once listening, with the bound port. */
export async function startAppServer(opts: AppServerOptions): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const assets = sirv(opts.root, {
    single: true,
    etag: true,
    setHeaders(res, pathname) {
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
