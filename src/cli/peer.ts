/**
 * The terminal peer: the same `createZeroState` as a tab (mesh, memory, runtime,
 * orchestrator from src/lib), in Node: WebSockets to the relays the app lists, WebRTC to
 * the tabs through node-datachannel, agents in worker_threads, the signing key in a file.
 */
import { homedir } from 'node:os'
import { join } from 'node:path'
import { createZeroState, RELAYS_PATH, type ZeroStateApi } from '../lib/index.ts'
import { CliTimeoutError, MeshUnreachableError } from './errors.ts'
import { FileKeyStore } from './key-store.ts'

export interface PeerOptions {
  /** The app's URL: its relay list and bundled agents are read from there. */
  app: string
  /** The profile directory (the signing key). */
  profile: string
  /** How long joining may take, in ms. */
  joinTimeoutMs: number
}

/** The default profile directory: $ZEROSTATE_HOME, else ~/.zerostate. */
export function defaultProfileDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.ZEROSTATE_HOME ?? join(homedir(), '.zerostate')
}

/** Join the mesh of the app at `opts.app`; rejects with MeshUnreachableError when no relay or peer answers in time. */
export async function joinMesh(opts: PeerOptions): Promise<ZeroStateApi> {
  let app: URL
  try {
    app = new URL(opts.app)
  } catch {
    throw new MeshUnreachableError(`--app ${JSON.stringify(opts.app)} is not a URL (e.g. http://127.0.0.1:8080/)`)
  }
  const relaysUrl = new URL(RELAYS_PATH, app).href
  // The relay list first: a wrong --app says so at once rather than after a timeout.
  const res = await fetch(relaysUrl, { signal: AbortSignal.timeout(opts.joinTimeoutMs) }).catch((err: Error) => {
    throw new MeshUnreachableError(`The app at ${app.href} did not answer (${err.message}): is \`npm start\` running there?`)
  })
  if (!res.ok) throw new MeshUnreachableError(`The app at ${app.href} has no relay list (HTTP ${res.status} for ${relaysUrl})`)
  const zs = await createZeroState({
    persist: false,
    keyStore: new FileKeyStore(opts.profile),
    mesh: { relaysUrl },
    agentsBaseUrl: new URL('agents/', app).href
  })
  try {
    await within(zs.ready, opts.joinTimeoutMs, () => new MeshUnreachableError(`No relay of ${app.href} could be reached in ${opts.joinTimeoutMs} ms`))
  } catch (err) {
    await zs.stop().catch(() => {})
    throw err
  }
  return zs
}

/** Resolve when `test()` holds (checked on every change of `zs`), or reject with `error()` after `ms`. */
export function until(zs: ZeroStateApi, test: () => boolean, ms: number, error: () => Error): Promise<void> {
  if (test()) return Promise.resolve()
  const { promise, resolve, reject } = Promise.withResolvers<void>()
  const off = zs.subscribe(() => {
    if (test()) resolve()
  })
  const timer = setTimeout(() => reject(error()), ms)
  return promise.finally(() => {
    off()
    clearTimeout(timer)
  })
}

/** `p`, or `error()` after `ms`. */
export function within<T>(p: Promise<T>, ms: number, error: () => Error = () => new CliTimeoutError(`timed out after ${ms} ms`)): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}
