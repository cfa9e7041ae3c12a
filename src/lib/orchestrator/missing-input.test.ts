// Issue 10 item 1: a task with no input is planned on the description's own input or
// refused at once, never offered to a peer that would then be blamed for it.
import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from './dispatch/index.ts'
import { donorService } from './donor/index.ts'
import { MissingInputError } from './errors.ts'
import { createOrchestrator } from './index.ts'
import { agent, catalogOf, fnExecutor, peer } from './test-fixtures.ts'

const mathEval = agent('math-eval', ['math-evaluation'], 0)
const summarize = agent('summarize', ['text-summarization'], 0)
const catalog = catalogOf([mathEval, summarize])

async function mesh() {
  const net = new MemoryTaskNetwork()
  const t = net.transport('donor')
  await t.start()
  const seen: unknown[] = []
  const executor = fnExecutor(
    {
      [mathEval.id]: async (i: unknown) => {
        seen.push(i)
        if (i !== '2*(3+4)') throw new Error(`not an expression: ${JSON.stringify(i)}`)
        return 14
      },
      [summarize.id]: async (i: unknown) => {
        seen.push(i)
        return { summary: String(i) }
      }
    },
    2
  )
  const donor = donorService({})({ transport: t, executor })
  await donor.start()
  const orch = createOrchestrator({ catalog, peers: { peers: () => [peer('donor')] }, transport: net.transport('me') }, { dispatcher: { offerTimeoutMs: 300 } })
  await orch.start()
  return {
    orch,
    seen,
    stop: async () => {
      await orch.stop()
      await donor.stop()
    }
  }
}

describe('a task without input', () => {
  it('"calculate 2*(3+4)" with no input runs on the expression from the description', async () => {
    const { orch, seen, stop } = await mesh()
    const r = await orch.submit({ description: 'calculate 2*(3+4)' }).done
    expect(r.output).toBe(14)
    expect(seen).toEqual(['2*(3+4)'])
    await stop()
  })

  it('an empty string counts as no input', async () => {
    const { orch, seen, stop } = await mesh()
    const r = await orch.submit({ description: 'calculate 2*(3+4)', input: '  ' }).done
    expect(r.output).toBe(14)
    expect(seen).toEqual(['2*(3+4)'])
    await stop()
  })

  it('"summarize this article" with no input is refused before any peer is asked', async () => {
    const { orch, seen, stop } = await mesh()
    const started = Date.now()
    const err = await orch.submit({ description: 'summarize this article' }).done.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MissingInputError)
    expect((err as Error).message).toMatch(/needs an input/)
    expect((err as Error).message).not.toMatch(/12D3|did not answer|peer/)
    expect(seen).toEqual([])
    expect(Date.now() - started).toBeLessThan(2000)
    expect(orch.stats().offers ?? 0).toBe(0)
    await stop()
  })
})
