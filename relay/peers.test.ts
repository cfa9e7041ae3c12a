import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { parseRelayPeers, peersFromArgs, RelayPeerError } from './peers.ts'

const newId = async (): Promise<string> => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

describe('relay peers (--peer / --relay)', () => {
  it('parses /…/ws/p2p/<id> into peer id and address, dropping duplicates and itself', async () => {
    const [a, b, self] = [await newId(), await newId(), await newId()]
    const peers = parseRelayPeers(
      [
        `/ip4/127.0.0.1/tcp/9001/ws/p2p/${a}`,
        ` /dns4/relay.example/tcp/443/wss/p2p/${b} `,
        `/ip4/127.0.0.1/tcp/9002/ws/p2p/${a}`,
        `/ip4/127.0.0.1/tcp/9003/ws/p2p/${self}`
      ],
      self
    )
    expect(peers.map((p) => p.id.toString())).toEqual([a, b])
    expect(peers.map((p) => p.addr.toString())).toEqual([`/ip4/127.0.0.1/tcp/9001/ws/p2p/${a}`, `/dns4/relay.example/tcp/443/wss/p2p/${b}`])
  })

  it('refuses an entry that is no multiaddr, names no peer id or a bad one, with a typed error naming it', () => {
    expect(() => parseRelayPeers(['not a multiaddr'])).toThrow(RelayPeerError)
    expect(() => parseRelayPeers(['not a multiaddr'])).toThrow(/"not a multiaddr" is not a multiaddr/)
    expect(() => parseRelayPeers(['/ip4/127.0.0.1/tcp/9001/ws'])).toThrow(/names no peer id/)
    expect(() => parseRelayPeers(['/ip4/127.0.0.1/tcp/9001/ws/p2p/12D3KooWnotanid'])).toThrow(RelayPeerError)
  })

  it('peers with every --peer and with each --relay that names its peer id; other --relay entries are only listed', async () => {
    const [a, b] = [await newId(), await newId()]
    const peers = peersFromArgs([`/ip4/127.0.0.1/tcp/9001/ws/p2p/${a}`], [`/ip4/127.0.0.1/tcp/9002/ws/p2p/${b}`, '/dns4/relay.example/tcp/443/wss', 'junk'])
    expect(peers.map((p) => p.id.toString())).toEqual([a, b])
    expect(peersFromArgs([], [])).toEqual([])
    expect(() => peersFromArgs(['/dns4/relay.example/tcp/443/wss'], [])).toThrow(RelayPeerError)
  })
})
