/**
 * Diagnostics over the mesh: round trips of small messages on one long-lived
 * stream versus a new stream per request, on our echo protocol (libp2p's ping
 * allows one outbound stream, which its connection monitor already uses).
 */
import type { Libp2p, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { byteStream } from '@libp2p/utils'
import { PeerNotConnectedError } from './errors.ts'

/** Echoes every byte it receives; bounded per connection, closes with the stream. */
export const ECHO_PROTOCOL = '/zerostate/echo/1.0.0'
const SIZE = 32
const MAX_ECHO_BYTES = 1 << 20

/**
 * Until `stream` can take more bytes or closes. Not `stream.onDrain()`: @libp2p/utils 7.4
 * keeps one drain promise that is never renewed, so after the first drain it resolves at
 * once and the writer queues without bound.
 */
function drainOrClose(stream: Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.removeEventListener('drain', done)
      stream.removeEventListener('close', done)
      resolve()
    }
    stream.addEventListener('drain', done)
    stream.addEventListener('close', done)
  })
}

/** Serve the echo protocol on `node`. */
export async function handleEcho(node: Libp2p): Promise<void> {
  await node.handle(
    ECHO_PROTOCOL,
    async (stream: Stream) => {
      let total = 0
      try {
        for await (const chunk of stream) {
          total += chunk.byteLength
          if (total > MAX_ECHO_BYTES) {
            stream.abort(new Error('echo limit reached'))
            return
          }
          if (!stream.send(chunk)) await drainOrClose(stream)
        }
        await stream.close()
      } catch (err) {
        stream.abort(err as Error)
      }
    },
    { maxInboundStreams: 16 }
  )
}

/** Round-trip times (ms) of `count` 32-byte echoes to `peerId`. */
export async function echoRtts(node: Libp2p, peerId: string, opts: { count: number; newStreamPerRequest?: boolean; signal?: AbortSignal }): Promise<number[]> {
  const id = peerIdFromString(peerId)
  if (node.getConnections(id).length === 0) throw new PeerNotConnectedError(`peer ${peerId} is not connected`)
  const payload = crypto.getRandomValues(new Uint8Array(SIZE))
  const times: number[] = []
  const open = async () => byteStream(await node.dialProtocol(id, ECHO_PROTOCOL, { signal: opts.signal }))
  const stream = opts.newStreamPerRequest === true ? undefined : await open()
  for (let i = 0; i < opts.count; i++) {
    const t0 = performance.now()
    const s = stream ?? (await open())
    await s.write(payload, { signal: opts.signal })
    const back = await s.read({ bytes: SIZE, signal: opts.signal })
    times.push(performance.now() - t0)
    if (back.byteLength !== SIZE) throw new Error('echo returned a short reply')
    if (stream == null) await s.unwrap().close()
  }
  await stream?.unwrap().close()
  return times
}
