// biome-ignore-all lint/suspicious/noTemplateCurlyInString: workflow documents hold ${} templates
/**
 * A run's journal keeps its parsed document, so a resume after a reload does not parse the YAML
 * again (the largest part of a resume's time after the lock): the stored document runs the rest
 * of the run exactly as the parsed one would, and one of another format or shape is not used.
 */
import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from '../dispatch/index.ts'
import { orchestratorService } from '../index.ts'
import { agent, catalogOf, fnExecutor } from '../test-fixtures.ts'
import { createWorkflowEngine } from './engine.ts'
import { MemoryWorkflowJournal } from './memory-journal.ts'
import { parseWorkflow } from './parser.ts'
import { WORKFLOW_DOC_FORMAT, storedDocument } from './stored-doc.ts'
import type { WorkflowEvent } from './types.ts'

const inc = agent('inc', ['increment'], 0)
const hold = agent('hold', ['held'], 0)
const catalog = catalogOf([inc, hold])
type Started = Extract<WorkflowEvent, { type: 'run-started' }>

const chain = (n: number): string => {
  let y = 'name: chain\nsteps:\n  - { id: s0, agent: inc, input: 0 }\n'
  for (let i = 1; i < n; i++) y += `  - { id: s${i}, agent: ${i === n - 1 ? 'hold' : 'inc'}, input: "\${s${i - 1}}" }\n`
  return y
}

describe('the parsed document kept in the journal', () => {
  it('run-started carries the document (no positions) and its hash; a resume from it alone finishes the run, no finished step again', async () => {
    const runs = new Map<string, number>()
    let open = (): void => {}
    const opened = new Promise<void>((r) => {
      open = r
    })
    const count = (name: string): void => {
      runs.set(name, (runs.get(name) ?? 0) + 1)
    }
    const executor = fnExecutor(
      {
        [inc.id]: (i) => {
          count('inc')
          return Number(i) + 1
        },
        [hold.id]: async (i) => {
          count('hold')
          await opened
          return Number(i) * 10
        }
      },
      4
    )
    const net = new MemoryTaskNetwork()
    const orch = orchestratorService({ dispatcher: { offerTimeoutMs: 300 } })({ catalog, peers: { peers: () => [] }, transport: net.transport('me'), executor })
    await orch.start()
    const yaml = chain(12)
    const parsed = parseWorkflow(yaml, { catalog })
    if (!parsed.ok) throw new Error('the chain parses')
    const journal = new MemoryWorkflowJournal()
    const tab = new AbortController()
    const first = createWorkflowEngine({ catalog, runPlan: orch.runPlan }).start(parsed.doc, null, {
      runId: 't-storeddoc0001',
      journal,
      signal: tab.signal,
      yaml,
      hash: parsed.hash
    })
    await new Promise<void>((resolve) => {
      const off = first.subscribe((e) => {
        if (e.type === 'step-started' && e.stepId === 's11') {
          off()
          resolve()
        }
      })
    })
    tab.abort()
    await first.done.catch(() => {})
    const started = journal.events()[0] as Started
    expect(started).toMatchObject({ type: 'run-started', docFormat: WORKFLOW_DOC_FORMAT, docHash: parsed.hash })
    expect(started.doc?.positions).toEqual({})
    const stored = storedDocument(structuredClone(started))
    expect(stored?.hash).toBe(parsed.hash)
    expect(stored?.doc).toEqual({ ...parsed.doc, positions: {} })
    // A new engine (a reloaded tab) over the journal and the stored document: s0..s10 are not run again.
    expect(runs.get('inc')).toBe(11)
    const second = createWorkflowEngine({ catalog, runPlan: orch.runPlan }).start(stored!.doc, null, { runId: 't-storeddoc0001', journal, hash: stored!.hash })
    open()
    const r = await second.done
    expect(r.output).toBe(110)
    expect(runs.get('inc')).toBe(11)
    expect(journal.events().filter((e) => e.type === 'run-resumed')).toHaveLength(1)
    await orch.stop()
  })

  it('a document of another format or shape is not used (the YAML is parsed instead)', () => {
    const parsed = parseWorkflow(chain(3), { catalog })
    if (!parsed.ok) throw new Error('parses')
    const base: Started = {
      type: 'run-started',
      at: 1,
      runId: 'r',
      name: 'chain',
      docHash: parsed.hash,
      input: null,
      doc: parsed.doc,
      docFormat: WORKFLOW_DOC_FORMAT
    }
    expect(storedDocument(base)?.doc.steps).toHaveLength(3)
    expect(storedDocument({ ...base, docFormat: WORKFLOW_DOC_FORMAT + 1 })).toBeUndefined()
    expect(storedDocument({ ...base, docFormat: undefined })).toBeUndefined()
    expect(storedDocument({ ...base, doc: undefined })).toBeUndefined()
    const bad = (patch: object) => ({ ...base, doc: { ...parsed.doc, ...patch } }) as Started
    expect(storedDocument(bad({ steps: [] }))).toBeUndefined()
    expect(storedDocument(bad({ steps: [{ id: 's0' }] }))).toBeUndefined()
    expect(storedDocument(bad({ dependencies: null }))).toBeUndefined()
    expect(storedDocument(bad({ execution: 'fast' }))).toBeUndefined()
  })
})
