import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket as WsWebSocket } from 'ws'
import { HOP_PROTOCOL, startRelay, type Relay } from './relay.ts'

// Node 20 has no global WebSocket, which @libp2p/websockets dials with.
globalThis.WebSocket ??= WsWebSocket as unknown as typeof globalThis.WebSocket

// Issue 11 item 3: the relay's hop reader was capped (patches/@libp2p+utils) but the peer
// that sent a length prefix that never ends was not struck: it could come back at once.
describe('relay hop protocol: an over-cap frame blocks its sender', () => {
  let relay: Relay
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'zs-relay-hop-'))
    relay = await startRelay({ dataDir: dir, log: () => {} })
  })
  afterAll(async () => {
    await relay?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const client = () =>
    createLibp2p({ transports: [webSockets()], connectionEncrypters: [noise()], streamMuxers: [yamux()], connectionGater: { denyDialMultiaddr: () => false } })

  it('a prefix of 0x80 bytes on hop: the relay resets it, blocks the sender and refuses its next connection; others still connect', async () => {
    const bomber = await client()
    const ma = multiaddr(relay.multiaddrs()[0] as string)
    const conn = await bomber.dial(ma)
    const stream = await conn.newStream(HOP_PROTOCOL)
    const closed = new Promise((resolve) => stream.addEventListener('close', resolve, { once: true }))
    stream.send(new Uint8Array(64 * 1024).fill(0x80))
    await closed
    await expect.poll(() => relay.admission().blocked, { timeout: 5000 }).toBe(1)
    await expect.poll(() => bomber.getConnections().length, { timeout: 5000 }).toBe(0)
    const again = await bomber.dial(ma, { signal: AbortSignal.timeout(5000) }).then(
      (c) => c.status,
      (err: Error) => err.name
    )
    // Refused after encryption (the gater names the peer): the dial fails or the connection closes at once.
    if (again === 'open') await expect.poll(() => bomber.getConnections().length, { timeout: 5000 }).toBe(0)
    const honest = await client()
    expect((await honest.dial(ma)).status).toBe('open')
    await Promise.all([bomber.stop(), honest.stop()])
  })
})
