import { readFileSync } from 'node:fs'
import { describe, expect, it, vi } from 'vitest'

// The 20-formation browser test is what catches the race itself (FIELD-NOTES: half of the
// unpatched three-tab runs failed); this guards against installing without the patch.
describe('@libp2p/webrtc init-channel race patch', () => {
  it('is applied to the installed package', () => {
    const url = new URL('../../../node_modules/@libp2p/webrtc/dist/src/private-to-private/initiate-connection.js', import.meta.url)
    const file = readFileSync(url, 'utf8')
    expect(file).toContain("if (channel.readyState === 'connecting')")
    expect(file).not.toMatch(/if \(channel\.readyState !== 'open'\) \{\s*log\.trace\('wait for init channel to open'\);/)
  })
})

describe('@libp2p/webrtc one-send-per-message patch', () => {
  it('sends each message as one RTCDataChannel message that its reader decodes', async () => {
    const { createStream } = await import(new URL('../../../node_modules/@libp2p/webrtc/dist/src/stream.js', import.meta.url).href)
    const { defaultLogger } = await import('@libp2p/logger')
    const sent: Uint8Array[] = []
    const channel = {
      id: 7,
      readyState: 'open',
      bufferedAmount: 0,
      binaryType: 'arraybuffer',
      send: (b: ArrayBuffer | Uint8Array) => {
        sent.push(new Uint8Array(b instanceof ArrayBuffer ? b : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)))
      },
      close: () => {},
      addEventListener: () => {},
      removeEventListener: () => {}
    }
    const stream = createStream({ channel, direction: 'outbound', log: defaultLogger().forComponent('test') })
    stream.send(new Uint8Array([1, 2, 3, 4, 5]))
    expect(sent).toHaveLength(1)
    // The receiving side: the same class, fed that single message.
    const rx = { ...channel, id: 8, send: () => {}, onmessage: undefined as undefined | ((e: { data: ArrayBuffer }) => void) }
    const inbound = createStream({ channel: rx, direction: 'inbound', log: defaultLogger().forComponent('test') })
    const got: number[] = []
    inbound.addEventListener('message', (e: { data: { subarray: () => Uint8Array } }) => {
      got.push(...e.data.subarray())
    })
    rx.onmessage!({ data: sent[0]!.slice().buffer })
    await vi.waitFor(() => {
      expect(got).toEqual([1, 2, 3, 4, 5])
    })
  })
})

describe('@libp2p/webrtc signals only over an open connection to the target', () => {
  /** The initiator's first steps with fake managers: which connection carried the signalling stream, and whether it dialled the relay. */
  async function firstSignal(statuses: string[]) {
    const { initiateConnection } = await import(
      new URL('../../../node_modules/@libp2p/webrtc/dist/src/private-to-private/initiate-connection.js', import.meta.url).href
    )
    const { defaultLogger } = await import('@libp2p/logger')
    const { multiaddr } = await import('@multiformats/multiaddr')
    const target = '12D3KooWSB8ojV8Q6GMVkd3BdNbHJWbgwBqtQ4bpFLpfRcTYpDoS'
    const relay = '12D3KooWBWBtVCPtNjH2g9PM5d8cV5nsXhcqaRQxkXdyxodHiNap'
    const signalledOn: string[] = []
    // Each fake connection fails the stream it is asked for, which ends the dial there.
    const conn = (name: string, status: string) => ({
      status,
      newStream: async () => {
        signalledOn.push(name)
        throw new Error(status === 'open' ? 'stop here' : 'The connection muxer is "closed" and not "open"')
      }
    })
    const existing = statuses.map((s, i) => conn(`existing-${i}-${s}`, s))
    const dialled: string[] = []
    const err = await initiateConnection({
      rtcConfiguration: {},
      dataChannel: {},
      signal: new AbortController().signal,
      multiaddr: multiaddr(`/ip4/127.0.0.1/tcp/1/ws/p2p/${relay}/p2p-circuit/webrtc/p2p/${target}`),
      connectionManager: { getConnections: () => existing },
      transportManager: {
        dial: async (ma: { toString(): string }) => {
          dialled.push(ma.toString())
          return conn('dialled', 'open')
        }
      },
      log: defaultLogger().forComponent('test'),
      logger: defaultLogger()
    }).catch((e: Error) => e)
    return { message: (err as Error).message, signalledOn, dialled }
  }

  it('skips a connection that is closing and signals over the open one', async () => {
    const r = await firstSignal(['closing', 'open'])
    expect(r.signalledOn).toEqual(['existing-1-open'])
    expect(r.dialled).toEqual([])
    expect(r.message).toBe('stop here')
  })

  it('with no open connection to the target, dials the relay circuit instead of failing on a closed one', async () => {
    const r = await firstSignal(['closing', 'closed'])
    expect(r.signalledOn).toEqual(['dialled'])
    expect(r.dialled).toHaveLength(1)
    expect(r.dialled[0]).toContain('/p2p-circuit/p2p/')
  })
})
