import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'

// patches/@libp2p+websockets: a write goes out as one WebSocket message, not one per chunk
// (each send() costs a joining tab a trip to the network process: issue 11, join time).
describe('@libp2p/websockets one-send-per-write patch', () => {
  it('sends a write of several chunks as one message holding all its bytes, and nothing for an empty write', async () => {
    const { webSocketToMaConn } = await import(new URL('../../../node_modules/@libp2p/websockets/dist/src/websocket-to-conn.js', import.meta.url).href)
    const { defaultLogger } = await import('@libp2p/logger')
    const { multiaddr } = await import('@multiformats/multiaddr')
    const sent: Uint8Array[] = []
    const websocket = {
      bufferedAmount: 0,
      addEventListener() {},
      send(b: ArrayBuffer | Uint8Array) {
        sent.push(new Uint8Array(b instanceof ArrayBuffer ? b : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)))
      },
      close() {}
    }
    const conn = webSocketToMaConn({
      websocket,
      remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/1/ws'),
      direction: 'outbound',
      log: defaultLogger().forComponent('test'),
      name: 'test'
    })
    const r = conn.sendData(new Uint8ArrayList(Uint8Array.of(1, 2), Uint8Array.of(3), Uint8Array.of(4, 5, 6)))
    expect(sent).toEqual([Uint8Array.of(1, 2, 3, 4, 5, 6)])
    expect(r.sentBytes).toBe(6)
    conn.sendData(new Uint8ArrayList())
    expect(sent).toHaveLength(1)
  })
})
