import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from '../dispatch/index.ts'
import { PAYLOAD_CHUNK_BYTES } from '../../core/index.ts'
import { TASK_MAX_FRAME_BYTES } from '../dispatch/index.ts'
import { fetchAgent, MAX_FETCHED_AGENT_BYTES, serveAgentFetch, sha256Hex } from './agent-fetch.ts'
import { AgentIntegrityError, PeerUnavailableError, RequestTimeoutError } from '../errors.ts'
import { aid } from '../test-fixtures.ts'

async function pair() {
  const net = new MemoryTaskNetwork()
  const holder = net.transport('holder')
  const asker = net.transport('asker')
  await holder.start()
  await asker.start()
  const bytes = new Uint8Array(100_000).map((_, i) => (i * 31) & 0xff)
  const store = new Map([[aid('x'), bytes]])
  serveAgentFetch(holder, { get: async (id) => store.get(id), put: async () => {} })
  return { net, asker, bytes }
}

describe('agent-fetch', () => {
  it('fetches a module as one core payload: a descriptor, then chunks that each fit a frame', async () => {
    const { net, asker, bytes } = await pair()
    const got = await fetchAgent(asker, 'holder', aid('x'), { expectedSha256: sha256Hex(bytes) })
    expect(Buffer.compare(got, bytes)).toBe(0)
    const announced = net.log.filter((l) => l.message.type === 'agent-payload')
    expect(announced.map((l) => l.message.type === 'agent-payload' && l.message.payload.size)).toEqual([100_000])
    const chunks = net.log.filter((l) => l.message.type === 'chunk')
    expect(chunks).toHaveLength(Math.ceil(100_000 / PAYLOAD_CHUNK_BYTES))
    expect(chunks.every((c) => JSON.stringify(c.message).length < TASK_MAX_FRAME_BYTES)).toBe(true)
  })

  it('drops and counts an announcement larger than the cap (it fails the schema), then times out', async () => {
    const { net, asker } = await pair()
    const original = net.deliver.bind(net)
    net.deliver = (from, to, m) => {
      original(from, to, m.type === 'agent-payload' ? { ...m, payload: { ...m.payload, size: MAX_FETCHED_AGENT_BYTES + 1 } } : m)
    }
    await expect(fetchAgent(asker, 'holder', aid('x'), { timeoutMs: 300 })).rejects.toBeInstanceOf(RequestTimeoutError)
    expect(asker.dropped).toBe(1)
  })

  it('rejects a corrupted chunk by the total hash', async () => {
    const { net, asker } = await pair()
    net.faults.drop = () => false
    const original = net.deliver.bind(net)
    net.deliver = (from, to, m) => {
      if (m.type === 'chunk' && m.index === 1) m = { ...m, data: `AAAA${m.data.slice(4)}` }
      original(from, to, m)
    }
    await expect(fetchAgent(asker, 'holder', aid('x'))).rejects.toThrow(
      new AgentIntegrityError('The agent bytes from holder do not match their sha-256: a chunk was corrupted or forged')
    )
  })

  it('rejects bytes whose hash differs from the catalog, and a peer without the agent', async () => {
    const { asker } = await pair()
    await expect(fetchAgent(asker, 'holder', aid('x'), { expectedSha256: 'f'.repeat(64) })).rejects.toBeInstanceOf(AgentIntegrityError)
    await expect(fetchAgent(asker, 'holder', aid('y'))).rejects.toBeInstanceOf(PeerUnavailableError)
  })
})
