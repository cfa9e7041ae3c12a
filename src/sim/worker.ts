/**
 * A worker thread of the simulator: joins the other threads' links (link.ts) through the
 * ports it is given and runs a PeerGroup for the main thread's commands.
 */
import '../lib/core/polyfills.ts'
import { type MessagePort, parentPort, workerData } from 'node:worker_threads'
import { PeerGroup } from './group.ts'
import { joinThreads } from './link.ts'
import { installVerifyCache } from './verify-cache.ts'

const { thread, ports, verifyCache } = workerData as { thread: string; ports: MessagePort[]; verifyCache?: boolean }
if (verifyCache === true) installVerifyCache()
joinThreads(thread, ports)
const group = new PeerGroup()
parentPort?.on('message', (msg: { n: number; cmd: Parameters<PeerGroup['run']>[0] }) => {
  group.run(msg.cmd).then(
    (value) => parentPort?.postMessage({ n: msg.n, value }),
    (err: Error) => parentPort?.postMessage({ n: msg.n, error: err?.message ?? String(err) })
  )
})
parentPort?.postMessage({ ready: true })
