import { describe, expect, it } from 'vitest'
import { Counters } from '../../core/index.ts'
import { StrikePolicy } from '../../mesh/index.ts'
import { streamNetwork } from '../test-fixtures.ts'
import { Libp2pTaskTransport } from './libp2p-task-transport.ts'
import { TASK_PROTOCOL_ID } from './task-protocol.ts'

// Issue 11 item 12: invalid task frames cost the sender neither a strike nor a counter.
describe('Libp2pTaskTransport and the strike policy', () => {
  async function victim() {
    const net = streamNetwork()
    const counters = new Counters('mesh')
    const hungUp: string[] = []
    const strikes = new StrikePolicy({ counters, hangUp: (p) => void hungUp.push(p) })
    const t = new Libp2pTaskTransport({ host: net.host('victim'), strikes })
    await t.start()
    return { net, counters, strikes, hungUp, t }
  }

  it('strikes each invalid frame per protocol and reason, and blocks the fifth', async () => {
    const { net, counters, strikes, t } = await victim()
    const s = await net.host('evil').openStream('victim', TASK_PROTOCOL_ID)
    const bad = new TextEncoder().encode('{"type":"offer"}')
    for (let i = 0; i < 5; i++) s.send(Uint8Array.from([bad.byteLength, ...bad]))
    await expect.poll(() => counters.get('strikes.task.InvalidFrameError')).toBe(5)
    expect(strikes.isBlocked('evil')).toBe(true)
    expect(counters.get('peers.blocked')).toBe(1)
    expect(t.dropped).toBe(5)
  })

  it('blocks at once on a length prefix that never ends, and closes that stream', async () => {
    const { net, counters, strikes, hungUp } = await victim()
    const s = await net.host('evil').openStream('victim', TASK_PROTOCOL_ID)
    s.send(new Uint8Array(1 << 20).fill(0x80))
    await expect.poll(() => strikes.isBlocked('evil')).toBe(true)
    expect(counters.get('strikes.task.FrameTooLargeError')).toBe(1)
    await expect.poll(() => hungUp).toEqual(['evil'])
    await expect.poll(() => s.status).not.toBe('open')
  })

  it('strikes a frame that begins and stalls', async () => {
    const net = streamNetwork()
    const counters = new Counters('mesh')
    const strikes = new StrikePolicy({ counters, hangUp: () => {} })
    const t = new Libp2pTaskTransport({ host: net.host('victim'), strikes }, { frameTimeoutMs: 100 })
    await t.start()
    const s = await net.host('slow').openStream('victim', TASK_PROTOCOL_ID)
    // Half a frame, then silence: the frame deadline fires.
    s.send(Uint8Array.from([40, 0x7b]))
    await expect.poll(() => counters.get('strikes.task.FrameTimeoutError')).toBe(1)
  })
})
