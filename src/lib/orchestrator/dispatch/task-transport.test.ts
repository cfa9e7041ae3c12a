import type { Stream } from '@libp2p/interface'
import { MemoryTaskNetwork } from './memory-task-transport.ts'
import { Libp2pTaskTransport, type StreamHost } from './libp2p-task-transport.ts'
import { runTaskTransportConformance } from './task-transport-conformance.ts'
import { streamNetwork } from '../test-fixtures.ts'

runTaskTransportConformance('MemoryTaskTransport', async () => {
  const net = new MemoryTaskNetwork()
  const a = net.transport('peer-a')
  const b = net.transport('peer-b')
  await a.start()
  await b.start()
  return {
    a,
    b,
    killB: () => {
      net.kill('peer-b')
    },
    teardown: async () => {
      await a.stop()
      await b.stop()
    }
  }
})

/** Two fake hosts joined by in-memory libp2p stream pairs. */
function hosts(): { a: StreamHost; b: StreamHost; streams: Stream[] } {
  const { host, streams } = streamNetwork()
  return { a: host('peer-a'), b: host('peer-b'), streams }
}

runTaskTransportConformance('Libp2pTaskTransport', async () => {
  const h = hosts()
  const a = new Libp2pTaskTransport({ host: h.a })
  const b = new Libp2pTaskTransport({ host: h.b })
  await a.start()
  await b.start()
  return {
    a,
    b,
    killB: async () => {
      await b.stop()
      for (const s of h.streams) s.abort(new Error('peer died'))
    },
    teardown: async () => {
      await a.stop()
      await b.stop()
    }
  }
})
