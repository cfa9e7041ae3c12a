#!/usr/bin/env node
// The `zerostate` command (src/cli): a Node peer of the mesh. Node 20 first gets what the
// mesh code expects of its platform (Promise.withResolvers, a WebSocket), then TypeScript
// is loaded through tsx, as `npm run relay` does.
import { register } from 'tsx/esm/api'

register()
await import('../src/lib/core/polyfills.ts')
await import('../src/cli/node-globals.ts')
const { cli } = await import('../src/cli/main.ts')

const stop = Promise.withResolvers()
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => stop.resolve())
const { run } = cli({ stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, interrupted: () => stop.promise })
const code = await run(process.argv.slice(2))
// Workers, sockets and timers of the peer are stopped; exit now rather than wait on a straggler.
process.exit(code)
