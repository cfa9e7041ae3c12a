import { beforeEach, describe, expect, it, vi } from 'vitest'
import { clearLogs, logRecords, setLogLevel, TypedEventEmitter } from '../core/index.ts'
import type { RelayStatus } from '../mesh/index.ts'
import { activityLog } from './activity-log.ts'

type Peer = { id: string; relay?: boolean; transport: string }

class FakeMesh extends TypedEventEmitter<{ change: Event; status: CustomEvent<RelayStatus> }> {
  readonly peerId = '12D3KooWSelfSelfSelfSelfSelfSelf'
  status: RelayStatus = { state: 'starting', relays: [], connected: [] }
  list: Peer[] = []
  readonly ready: Promise<void>
  #resolve!: () => void
  constructor() {
    super()
    this.ready = new Promise((r) => (this.#resolve = r))
  }
  peers(): Peer[] {
    return this.list
  }
  join(): void {
    this.#resolve()
  }
  setStatus(s: Partial<RelayStatus>): void {
    this.status = { ...this.status, ...s }
    this.safeDispatchEvent('status', { detail: this.status })
  }
  change(list: Peer[]): void {
    this.list = list
    this.dispatchEvent(new Event('change'))
  }
}

const infos = () => logRecords((r) => r.module.startsWith('app:') && (r.level === 'info' || r.level === 'warn')).map((r) => `${r.level} ${r.message}`)

describe('activity log (Logs page at info level)', () => {
  beforeEach(() => {
    setLogLevel('info')
    clearLogs()
  })

  it('logs the start, the relay link, peers joining, going direct and leaving, at info', async () => {
    const mesh = new FakeMesh()
    const stop = activityLog({ mesh, everyMs: 0, publicKey: 'ed25519:abcdefghijklmnopqrstuvwxyz' })
    mesh.setStatus({ state: 'connecting' })
    mesh.setStatus({ state: 'connected', connected: ['12D3KooWRelayRelayRelayRelayRelay'] })
    mesh.join()
    await mesh.ready
    await Promise.resolve()
    // The relay itself is not an app peer: it is named by the relay record, not as a joining peer.
    mesh.change([
      { id: '12D3KooWRelayRelayRelayRelayRelay', relay: true, transport: 'websockets' },
      { id: '12D3KooWPeerBPeerBPeerBPeerBPeerB', transport: 'circuit' }
    ])
    mesh.change([{ id: '12D3KooWPeerBPeerBPeerBPeerBPeerB', transport: 'webrtc' }])
    mesh.change([{ id: '12D3KooWPeerBPeerBPeerBPeerBPeerB', transport: 'webrtc' }])
    mesh.change([])
    mesh.setStatus({ state: 'unreachable', error: 'no relay answered' })
    stop()
    mesh.change([{ id: '12D3KooWPeerCPeerCPeerCPeerCPeerC', transport: 'webrtc' }])
    expect(infos()).toEqual([
      'info peer 12D3KooWSelfSelfSelfSelfSelfSelf starting (profile key ed25519:abcdefghijkl…)',
      'info relay connected (12D3KooW…yRelay)',
      'info peer 12D3KooW…lfSelf joined the mesh',
      'info peer 12D3KooW…BPeerB joined (circuit)',
      'info peer 12D3KooW…BPeerB now over webrtc (was circuit)',
      'info peer 12D3KooW…BPeerB left',
      'warn relay unreachable: no relay answered'
    ])
  })

  it('names a relay already connected at start, and a lost relay link', () => {
    const mesh = new FakeMesh()
    mesh.status = { state: 'connected', relays: [], connected: ['12D3KooWRelayRelayRelayRelayRelay'] }
    const stop = activityLog({ mesh, everyMs: 0 })
    mesh.setStatus({ state: 'connecting', connected: [] })
    stop()
    expect(infos().slice(1)).toEqual(['info relay connected (12D3KooW…yRelay)', 'warn relay link lost: reconnecting'])
  })

  it('logs donation switched on (with its workers) and off, only when it changes', () => {
    const mesh = new FakeMesh()
    let state = { enabled: false, workers: 2 }
    const listeners = new Set<() => void>()
    const changes = {
      subscribe(l: () => void) {
        listeners.add(l)
        return () => listeners.delete(l)
      }
    }
    const stop = activityLog({ mesh, donation: { state: () => state }, changes })
    const tell = () => {
      for (const l of listeners) l()
    }
    tell()
    state = { enabled: true, workers: 1 }
    tell()
    tell()
    state = { enabled: false, workers: 1 }
    tell()
    stop()
    state = { enabled: true, workers: 3 }
    tell()
    expect(logRecords((r) => r.module === 'app:donation').map((r) => r.message)).toEqual(['donating compute: on, 1 worker', 'donating compute: off'])
  })

  it('compares peers at most every everyMs when the mesh changes often', async () => {
    const mesh = new FakeMesh()
    let reads = 0
    const peers = mesh.peers.bind(mesh)
    mesh.peers = () => {
      reads++
      return peers()
    }
    const stop = activityLog({ mesh, everyMs: 20 })
    const atStart = reads
    for (let i = 0; i < 50; i++) mesh.change([{ id: '12D3KooWPeerBPeerBPeerBPeerBPeerB', transport: 'webrtc' }])
    expect(reads).toBe(atStart)
    await vi.waitFor(() => expect(reads).toBe(atStart + 1))
    stop()
    expect(infos()).toContain('info peer 12D3KooW…BPeerB joined (webrtc)')
  })

  it('keeps nothing of it at warn level but the warnings', () => {
    setLogLevel('warn')
    const mesh = new FakeMesh()
    const stop = activityLog({ mesh, everyMs: 0 })
    mesh.change([{ id: '12D3KooWPeerBPeerBPeerBPeerBPeerB', transport: 'webrtc' }])
    mesh.setStatus({ state: 'unreachable' })
    stop()
    expect(infos()).toEqual(['warn relay unreachable'])
    setLogLevel('info')
  })
})
