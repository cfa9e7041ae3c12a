// Issue 14: an offer its donor does not answer within offerTimeoutMs is withdrawn with a 'cancel', so a
// donor that accepts late (or gets the offer late) does not run the step while it runs elsewhere:
// before, the late donor ran it to the end (duplicate work, paid by that donor).
import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from './memory-task-transport.ts'
import { createOrchestrator } from '../index.ts'
import { donorService } from '../donor/index.ts'
import { agent, catalogOf, peer, pollUntil } from '../test-fixtures.ts'
import type { LocalExecutor } from '../components.ts'

const worker = agent('worker', ['text-summarization'], 0)

/** An executor whose run lasts `ms` unless aborted; it records when each run started, ended and whether it was aborted. */
function slowExecutor(ms: number) {
  const runs: Array<{ start: number; end?: number; aborted: boolean }> = []
  const ex: LocalExecutor = {
    has: (id) => id === worker.id,
    freeWorkers: () => 1,
    async run(_id, input, opts) {
      const run = { start: Date.now(), end: undefined as number | undefined, aborted: false }
      runs.push(run)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms)
        opts.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t)
            run.aborted = true
            resolve()
          },
          { once: true }
        )
      })
      run.end = Date.now()
      if (run.aborted) throw opts.signal.reason
      return { output: `done: ${String(input)}`, ms }
    }
  }
  return { ex, runs }
}

async function setup() {
  const net = new MemoryTaskNetwork()
  // 'late' is the router's first choice (lowest round trip); 'spare' runs the step once 'late' is given up on.
  const late = slowExecutor(2000)
  const spare = slowExecutor(300)
  const donors = new Map([
    ['late', late],
    ['spare', spare]
  ])
  const services = new Map<string, ReturnType<ReturnType<typeof donorService>>>()
  for (const [id, d] of donors) {
    const t = net.transport(id)
    await t.start()
    const s = donorService({ leaseMs: 600 })({ transport: t, executor: d.ex })
    await s.start()
    services.set(id, s)
  }
  const peers = [peer('late', { rttMs: 1, freeWorkers: 1 }), peer('spare', { rttMs: 40, freeWorkers: 1 })]
  const orch = createOrchestrator(
    { catalog: catalogOf([worker]), peers: { peers: () => peers }, transport: net.transport('submitter') },
    { dispatcher: { offerTimeoutMs: 100 } }
  )
  await orch.start()
  return { net, orch, late, spare, services }
}

describe('an offer withdrawn after the offer timeout', () => {
  it('a donor whose accept comes late stops the run while the step runs elsewhere', async () => {
    const { net, orch, late, spare, services } = await setup()
    // Everything 'late' says reaches the submitter after the offer timeout.
    net.faults.delayMs = (from) => (from === 'late' ? 250 : 0)
    const r = await orch.submit({ description: 'summarize', agent: worker.id, input: 'text' }).done
    expect(r.steps[0]!.peer).toBe('spare')
    expect(net.log.find((l) => l.message.type === 'offer')?.to).toBe('late')
    expect(net.log.some((l) => l.to === 'late' && l.message.type === 'cancel')).toBe(true)
    expect(late.runs).toHaveLength(1)
    expect(late.runs[0]!.aborted).toBe(true)
    // Stopped while the spare donor was still at it, not when the step committed (the old behaviour).
    expect(late.runs[0]!.end!).toBeLessThan(spare.runs[0]!.end!)
    expect(services.get('late')!.stats().cancelled).toBe(1)
    expect(orch.stats().offersWithdrawn).toBe(1)
  })

  it('a donor that gets the offer after its cancel does not run it', async () => {
    const { net, orch, late, services } = await setup()
    // The offer to 'late' is held in flight past the offer timeout; the cancel that follows it is not.
    net.faults.delayMs = (_from, to, m) => (to === 'late' && m.type === 'offer' ? 250 : 0)
    const r = await orch.submit({ description: 'summarize', agent: worker.id, input: 'text' }).done
    expect(r.steps[0]!.peer).toBe('spare')
    await pollUntil(() => services.get('late')!.stats().withdrawn === 1, "the late offer's arrival")
    expect(late.runs).toHaveLength(0)
    expect(services.get('late')!.stats().accepted).toBe(0)
  })
})
