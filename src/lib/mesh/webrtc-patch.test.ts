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
