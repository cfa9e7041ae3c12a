import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork, type StepEvent } from './dispatch/index.ts'
import { orchestratorService, type ProgressEvent } from './orchestrator.ts'
import { agent, catalogOf, fnExecutor } from './test-fixtures.ts'

const count = agent('counter', ['text-statistics'], 0.05)
const hash = agent('hasher', ['hashing'], 0.02)
const catalog = catalogOf([count, hash])

async function localOrchestrator() {
  const net = new MemoryTaskNetwork()
  const executor = fnExecutor({
    [count.id]: (i) => ({ words: String(i).split(/\s+/).length }),
    [hash.id]: (i) => `h(${JSON.stringify(i)})`
  })
  const orch = orchestratorService({ historySize: 10 })({ catalog, peers: { peers: () => [] }, transport: net.transport('me'), executor })
  await orch.start()
  return orch
}

describe('task handle events', () => {
  it('delivers progress and step events (their detail) in order to every listener', async () => {
    const orch = await localOrchestrator()
    const h = orch.submit({ description: 'count the words, then hash it', input: 'a b c' })
    const phases: ProgressEvent['phase'][] = []
    const steps: string[] = []
    const again: string[] = []
    h.on('progress', (e) => phases.push(e.phase))
    h.on('step', (e: StepEvent) => steps.push(`${e.stepId}:${e.status}`))
    h.on('step', (e) => again.push(e.stepId))
    const r = await h.done
    expect(r.output).toBe('h({"words":3})')
    expect(phases).toEqual(['planning', 'planned', 'running', 'running', 'succeeded'])
    expect(steps.filter((s) => s.endsWith(':succeeded'))).toEqual(['s1:succeeded', 's2:succeeded'])
    expect(again).toHaveLength(steps.length)
    await orch.stop()
  })

  it('stops delivering after unsubscribe; a throwing listener neither fails the task nor silences the others', async () => {
    const orch = await localOrchestrator()
    const h = orch.submit({ description: 'hash it', agent: 'hasher', input: 'x' })
    let removed = 0
    const off = h.on('progress', () => removed++)
    off()
    h.on('step', () => {
      throw new Error('a listener bug')
    })
    const seen: string[] = []
    h.on('step', (e) => seen.push(e.status))
    const r = await h.done
    expect(r.output).toBe('h("x")')
    expect(removed).toBe(0)
    expect(seen).toContain('succeeded')
    await orch.stop()
  })
})
