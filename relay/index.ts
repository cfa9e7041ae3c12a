/**
 * `npm start` / `npm run relay`: start the bootstrap relay and serve the app.
 *
 *   --host H        interface for HTTP and libp2p (env HOST, default 127.0.0.1)
 *   --port P        HTTP port (env PORT, default 8080); libp2p WebSockets uses --ws-port
 *   --ws-port P     libp2p WebSocket port (default 0 = any free port)
 *   --announce MA   public multiaddr to announce (repeatable), for deployment behind a proxy
 *   --relay MA      another relay the app should also try (repeatable); peered with too when it ends in /p2p/<id>
 *   --peer MA       another relay to peer with (repeatable): /…/ws/p2p/<peer id>; gossip (presence,
 *                   discovery) crosses to it, so tabs that joined through either find each other
 *   --data DIR      where the relay key is kept (default .data/relay)
 *   --root DIR      built app to serve (default build)
 *   --log-level L   debug | info | warn | error | silent (env LOG_LEVEL, default info): JSON log lines
 *   --quiet         same as --log-level silent
 *
 * GET /metrics on the HTTP port answers Prometheus text (relay/metrics.ts).
 */
import '../src/lib/core/polyfills.ts'
import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { isLogLevel, relayLog, LOG_LEVELS } from './log.ts'
import { relayMetrics } from './metrics.ts'
import { peersFromArgs, RelayPeerError, type RelayPeer } from './peers.ts'
import { startRelay } from './relay.ts'
import { startAppServer } from './server.ts'

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
    port: { type: 'string', default: process.env.PORT ?? '8080' },
    'ws-port': { type: 'string', default: process.env.WS_PORT ?? '0' },
    announce: { type: 'string', multiple: true, default: [] },
    relay: { type: 'string', multiple: true, default: [] },
    peer: { type: 'string', multiple: true, default: [] },
    data: { type: 'string', default: process.env.ZEROSTATE_DATA ?? '.data/relay' },
    root: { type: 'string', default: 'build' },
    quiet: { type: 'boolean', default: false },
    'log-level': { type: 'string', default: process.env.LOG_LEVEL ?? 'info' }
  }
})

function port(name: string, value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`--${name} must be a port number from 0 to 65535, got "${value}"`)
    process.exit(2)
  }
  return n
}

if (!existsSync(`${values.root}/index.html`)) {
  console.error(`No built app in ${values.root}/: run \`npm run build\` first (npm start does this for you).`)
  process.exit(2)
}

/**
 * A port that cannot be had is a sentence naming the port and how to choose another, not a stack.
 * Anything else is thrown on.
 */
function portProblem(err: unknown, what: string, value: string, variable: string): never {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  const used = code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(String((err as Error | undefined)?.message))
  if (used || code === 'EACCES') {
    const why = used ? 'is already in use (is ZeroState already running?)' : 'needs privileges this process does not have'
    console.error(
      `${what} port ${value} on ${values.host} ${why}: stop what uses it, or choose another port with ${variable}=<port> (or ${variable}=0 for any free one).`
    )
    process.exit(1)
  }
  throw err
}

const level = values.quiet ? 'silent' : values['log-level']
if (!isLogLevel(level)) {
  console.error(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`)
  process.exit(2)
}
let peers: RelayPeer[] = []
try {
  peers = peersFromArgs(values.peer, values.relay)
} catch (err) {
  if (!(err instanceof RelayPeerError)) throw err
  console.error(`--peer: ${err.message}`)
  process.exit(2)
}
const metrics = relayMetrics()
const httpPort = port('port', values.port)
const wsPort = port('ws-port', values['ws-port'])
// The HTTP server first: its port is the one a second start collides on, before any libp2p work.
let relay: Awaited<ReturnType<typeof startRelay>> | undefined
const app = await startAppServer({
  host: values.host,
  port: httpPort,
  root: values.root,
  // Every relay of the deployment: this one, the --relay ones and the --peer ones (tabs fall back on them).
  relays: () => [...new Set([...(relay?.multiaddrs() ?? []), ...values.relay, ...values.peer])],
  metrics: () => metrics.scrape()
}).catch((err: unknown) => portProblem(err, 'The HTTP', String(httpPort), 'PORT'))
relay = await startRelay({
  host: values.host,
  port: wsPort,
  announce: values.announce,
  dataDir: values.data,
  log: relayLog(level),
  metrics,
  peers
}).catch(async (err: unknown) => {
  await app.close()
  return portProblem(err, 'The relay WebSocket', String(wsPort), 'WS_PORT')
})

const shownHost = values.host.includes(':') ? `[${values.host}]` : values.host
console.log(`[relay] peer id ${relay.peerId} listening on ${relay.multiaddrs().join(' ')}`)
console.log(`ZeroState is running at http://${shownHost}:${app.port}/`)

let stopping = false
async function shutdown(): Promise<void> {
  if (stopping) return
  stopping = true
  await Promise.allSettled([app.close(), relay?.stop()])
  process.exit(0)
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(signal, () => {
    void shutdown()
  })
// Started by scripts/start.mjs with an IPC channel: when that process is gone, so is this one.
if (process.send != null)
  process.on('disconnect', () => {
    void shutdown()
  })
