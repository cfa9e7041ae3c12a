import { MemoryNetwork, MemorySyncTransport } from './memory-sync-transport.ts'
import { syncTransportConformance } from './sync-transport-conformance.ts'

syncTransportConformance('MemorySyncTransport', async () => {
  const net = new MemoryNetwork()
  const transports = ['peer-a', 'peer-b', 'peer-c'].map((id) => new MemorySyncTransport(net, id))
  for (const t of transports) await t.start()
  return {
    transports,
    cleanup: async () => {
      for (const t of transports) await t.stop()
    }
  }
})
