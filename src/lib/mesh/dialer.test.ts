import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { circuitRelayOf, dialAllowed, dialableAddrs, isPrivateHost } from './dialer.ts'

const RELAY = '12D3KooWRJbgdJz8hXYpkSv4NLE9Hi38jx5kZUv3TNNvFGHGrJkk'
const OTHER_RELAY = '12D3KooWSk5Bf5bwmCuZTwQKsNSyZjoQAGtXAJeGExZoXBgfzJkd'
const PEER = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const ours = multiaddr(`/ip4/127.0.0.1/tcp/4001/ws/p2p/${RELAY}`)

describe('discovery dials (issue 11 item 10)', () => {
  it('dials only through a relay this tab reached, on its own address of that relay', () => {
    const announced = [
      // An honest announcement, through our relay.
      multiaddr(`/ip4/127.0.0.1/tcp/4001/ws/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`),
      // Our relay's id behind an attacker-chosen host and port: rebuilt on our address.
      multiaddr(`/ip4/10.9.8.7/tcp/22/ws/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`),
      // A relay we do not know, a plain ws:// address, a non-circuit webrtc address.
      multiaddr(`/dns4/evil.example/tcp/443/wss/p2p/${OTHER_RELAY}/p2p-circuit/webrtc/p2p/${PEER}`),
      multiaddr('/ip4/192.168.1.1/tcp/80/ws'),
      multiaddr(`/ip4/1.2.3.4/udp/9/webrtc/p2p/${PEER}`)
    ]
    expect(dialableAddrs(PEER, announced, [ours]).map(String)).toEqual([`${ours.toString()}/p2p-circuit/webrtc/p2p/${PEER}`])
    expect(dialableAddrs(PEER, announced, [])).toEqual([])
  })

  it('gates every outbound dial: our relays and circuits through them, private hosts only where allowed', () => {
    const scope = { ids: new Set([RELAY]), addrs: new Set([ours.toString()]) }
    const circuit = multiaddr(`${ours.toString()}/p2p-circuit/webrtc/p2p/${PEER}`)
    expect(dialAllowed(ours, scope, true)).toBe(true)
    expect(dialAllowed(circuit, scope, true)).toBe(true)
    // Private hosts need the deployment's word.
    expect(dialAllowed(ours, scope, false)).toBe(false)
    expect(dialAllowed(circuit, scope, false)).toBe(false)
    // Attacker-chosen hosts, even naming our relay's id or a public host, are refused.
    expect(dialAllowed(multiaddr(`/ip4/10.9.8.7/tcp/22/ws/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`), scope, true)).toBe(false)
    expect(dialAllowed(multiaddr('/ip4/8.8.8.8/tcp/80/ws'), scope, true)).toBe(false)
    expect(dialAllowed(multiaddr(`/ip4/8.8.8.8/tcp/80/ws/p2p/${PEER}`), scope, true)).toBe(false)
    expect(dialAllowed(multiaddr(`/ip4/8.8.8.8/udp/9/webrtc-direct/p2p/${PEER}`), scope, true)).toBe(false)
    // A public relay of the deployment is allowed without private hosts.
    const pub = multiaddr(`/dns4/relay.example.org/tcp/443/wss/p2p/${RELAY}`)
    const pubScope = { ids: new Set([RELAY]), addrs: new Set([pub.toString()]) }
    expect(dialAllowed(pub, pubScope, false)).toBe(true)
    expect(dialAllowed(multiaddr(`${pub.toString()}/p2p-circuit/webrtc/p2p/${PEER}`), pubScope, false)).toBe(true)
  })

  it('knows private hosts', () => {
    for (const h of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.5.4',
      '172.31.255.255',
      '192.168.0.1',
      '169.254.1.1',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      'fd00::1',
      'fe80::1',
      'localhost',
      'printer.local'
    ])
      expect(isPrivateHost(h), h).toBe(true)
    for (const h of ['8.8.8.8', '172.32.0.1', '100.128.0.1', '2001:db8::1', 'relay.example.org']) expect(isPrivateHost(h), h).toBe(false)
    expect(circuitRelayOf(multiaddr(`${ours.toString()}/p2p-circuit/webrtc/p2p/${PEER}`))).toEqual({ relayId: RELAY, relayAddr: ours.toString() })
  })
})
