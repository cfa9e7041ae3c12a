import { describe, expect, it, vi } from 'vitest'
import { MemoryTaskNetwork } from './dispatch/index.ts'
import { orchestratorService, TASK_CATALOG_WAIT_MS } from './orchestrator.ts'
import { agent, catalogOf, fnExecutor } from './test-fixtures.ts'

// A task submitted as the peer starts (a script calling submit when the page opens, a simulated
// peer just started) came before the bundled agents were in the catalog and failed with "No agent
// … is known". It now waits, bounded, for the catalog's first fill.
const hash = agent('hasher', ['hashing'], 0.02)

async function start(ready?: Promise<unknown>) {
  const catalog = catalogOf([])
  const executor = fnExecutor({ [hash.id]: (i) => `h(${JSON.stringify(i)})` })
  const orch = orchestratorService()({
    catalog,
    peers: { peers: () => [] },
    transport: new MemoryTaskNetwork().transport('me'),
    executor,
    ...(ready != null ? { catalogReady: ready } : {})
  })
  await orch.start()
  return { orch, catalog }
}

describe('a task submitted before the catalog is filled', () => {
  it('waits for the catalog, then runs: by agent name and by description', async () => {
    const filled = Promise.withResolvers<void>()
    const { orch, catalog } = await start(filled.promise)
    const byName = orch.submit({ description: 'hash it', agent: 'hasher', input: 'x' })
    const planned = orch.submit({ description: 'hash this text', input: 'y' })
    // The bundled agents arrive later (fetched over the network), then the catalog says it is filled.
    await new Promise((r) => setTimeout(r, 20))
    catalog.agents.push(hash)
    filled.resolve()
    expect((await byName.done).output).toBe('h("x")')
    expect((await planned.done).output).toBe('h("y")')
    await orch.stop()
  })

  it('without the wait, the same submit fails as before', async () => {
    const { orch, catalog } = await start()
    const h = orch.submit({ description: 'hash it', agent: 'hasher', input: 'x' })
    await expect(h.done).rejects.toMatchObject({ name: 'UnknownAgentError' })
    catalog.agents.push(hash)
    await orch.stop()
  })

  it('waits at most TASK_CATALOG_WAIT_MS, and a cancel ends the wait at once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const { orch } = await start(new Promise(() => {}))
      const late = orch.submit({ description: 'hash it', agent: 'hasher', input: 'x' })
      const failed = expect(late.done).rejects.toMatchObject({ name: 'UnknownAgentError' })
      await vi.advanceTimersByTimeAsync(TASK_CATALOG_WAIT_MS - 1)
      let settled = false
      late.done
        .catch(() => {})
        .finally(() => {
          settled = true
        })
      await Promise.resolve()
      expect(settled, 'still waiting just before the bound').toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      await failed
      const cancelled = orch.submit({ description: 'hash it', agent: 'hasher', input: 'x' })
      const ended = expect(cancelled.done).rejects.toMatchObject({ name: 'TaskCancelledError' })
      await vi.advanceTimersByTimeAsync(10)
      cancelled.cancel()
      await ended
      await orch.stop()
    } finally {
      vi.useRealTimers()
    }
  })
})
