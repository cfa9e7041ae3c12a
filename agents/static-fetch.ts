// The agent tests' `fetch`: app URLs answered from static/ on disk, as the app server would serve them.
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

export const staticFetch = (async (url: string | URL | Request) => {
  const path = `${root}static${new URL(String(url)).pathname}`
  if (!existsSync(path)) return new Response('missing', { status: 404 })
  return new Response(readFileSync(path))
}) as typeof fetch
