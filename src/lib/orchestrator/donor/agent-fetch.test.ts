import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from '../dispatch/index.ts'
import { fetchAgent, serveAgentFetch, sha256Hex } from './agent-fetch.ts'
import { AgentIntegrityError, PeerUnavailableError } from '../errors.ts'
import { aid } from '../test-fixtures.ts'

async function pair() {
  const net = new MemoryTaskNetwork()
  const holder = net.transport('holder')
  const asker = net.transport('asker')
  await holder.start()
  await asker.start()
  const bytes = new Uint8Array(30_000).map((_, i) => (i * 31) & 0xff)
  const store = new Map([[aid('x'), bytes]])
  serveAgentFetch(holder, { get: async (id) => store.get(id), put: async () => {} })
  return { net, asker, bytes }
}

describe('agent-fetch', () => {
  it('fetches a module in ≤ 12 KiB base64 chunks and checks its hash', async () => {
    const { net, asker, bytes } = await pair()
    const got = await fetchAgent(asker, 'holder', aid('x'), { expectedSha256: sha256Hex(bytes) })
    expect(got).toEqual(bytes)
    const chunks = net.log.filter((l) => l.message.type === 'agent-chunk')
    expect(chunks).toHaveLength(4)
    expect(chunks.every((c) => c.message.type === 'agent-chunk' && c.message.data.length <= 12 * 1024)).toBe(true)
  })

  it('rejects a corrupted chunk by the total hash', async () => {
    const { net, asker } = await pair()
    net.faults.drop = () => false
    const original = net.deliver.bind(net)
    net.deliver = (from, to, m) => {
      if (m.type === 'agent-chunk' && m.index === 2) m = { ...m, data: `AAAA${m.data.slice(4)}` }
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
