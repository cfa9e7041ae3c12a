// The rule planner against the REAL bundled agents (agents/*/manifest.json), not a
// made-up capability list: every documented phrase must plan onto a capability a
// bundled agent offers, and name that agent.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { AgentCandidate } from '../components.ts'
import { MissingInputError, PlanningError } from '../errors.ts'
import { catalogOf } from '../test-fixtures.ts'
import { deterministicPlan, deterministicPlanner, inputFromDescription } from './deterministic-planner.ts'
import { resolveInput } from './input-mapping.ts'
import { capabilityCatalog, plannerChain } from './planner.ts'
import { validatePlan } from './validate-plan.ts'

const AGENTS_DIR = join(import.meta.dirname, '../../../../agents')
const manifests = readdirSync(AGENTS_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) => {
    try {
      return [JSON.parse(readFileSync(join(AGENTS_DIR, d.name, 'manifest.json'), 'utf8'))]
    } catch {
      return []
    }
  })
const bundled: AgentCandidate[] = manifests.map((m, i) => ({
  id: i.toString(16).padStart(64, '0'),
  name: m.name,
  version: m.version,
  description: m.description,
  capabilities: m.capabilities,
  price: m.price ?? 0,
  abi: m.abi
}))
const catalog = catalogOf(bundled)
const info = capabilityCatalog(catalog)
/** The bundled agents a plan's steps would run on. */
const agentsOf = (description: string, hasInput?: boolean) =>
  deterministicPlan({ description, hasInput }, info).subtasks.map((s) => bundled.filter((a) => a.capabilities.includes(s.capabilities[0])).map((a) => a.name))

describe('the rule planner with the real bundled agents', () => {
  it('finds the thirteen bundled WASM manifests (three of them media agents in C, one using tools) and the five llm-prompt ones', () => {
    expect(
      bundled
        .filter((a) => a.abi !== 'llm-prompt')
        .map((a) => a.name)
        .sort()
    ).toEqual(
      [
        'audio-edit',
        'csv-json',
        'extract-entities',
        'hash',
        'image-resize',
        'keywords',
        'markdown-html',
        'math-eval',
        'notes',
        'pdf-text',
        'sentiment',
        'summarize',
        'word-stats'
      ].sort()
    )
    expect(
      bundled
        .filter((a) => a.abi === 'llm-prompt')
        .map((a) => a.name)
        .sort()
    ).toEqual(['answer-llm', 'classify-llm', 'extract-json-llm', 'summarize-llm', 'translate-llm'].sort())
  })

  it('never plans by rules onto a capability that only llm-prompt agents offer (it needs a loaded model)', () => {
    const modelOnly = info.filter((c) => c.needsModel).map((c) => c.capability)
    expect(modelOnly.length).toBeGreaterThanOrEqual(5)
    // Either planned onto capabilities that run anywhere, or refused with the capabilities on offer.
    for (const phrase of ['translate this to French', 'classify this ticket', 'answer the question from the context', 'extract the people it names as json']) {
      let planned: string[] = []
      try {
        planned = deterministicPlan({ description: phrase, hasInput: true }, info).subtasks.map((s) => s.capabilities[0]!)
      } catch (err) {
        expect(err).toBeInstanceOf(PlanningError)
        expect((err as Error).message).not.toMatch(/llm-/)
      }
      for (const c of planned) expect(modelOnly).not.toContain(c)
    }
  })

  // Each phrase of PLANNING.md's table, and those a new user typed, with the agent it must reach.
  const PHRASES: Array<[string, string[]]> = [
    ['convert this CSV to JSON', ['csv-json']],
    ['make a thumbnail of this image', ['image-resize']],
    ['strip the exif from this photo', ['image-resize']],
    ['convert this image to jpeg', ['image-resize']],
    ['trim this audio', ['audio-edit']],
    ['extract the text from this pdf', ['pdf-text']],
    ['extract the emails and links', ['extract-entities']],
    ['render this markdown as html', ['markdown-html']],
    ['calculate 2*(3+4)', ['math-eval']],
    ['summarize this article', ['summarize']],
    ['tl;dr', ['summarize']],
    ['extract the keywords', ['keywords']],
    ['what is the sentiment of this review', ['sentiment']],
    ['count the words', ['word-stats']],
    ['readability statistics', ['word-stats']],
    ['sha-256 checksum of this', ['hash']],
    ['parse this csv file', ['csv-json']],
    ['find the urls in this page', ['extract-entities']],
    ['analyze the sentiment and also extract entities', ['sentiment', 'extract-entities']]
  ]
  for (const [phrase, expected] of PHRASES) {
    it(`"${phrase}" → ${expected.join(' + ')}`, () => {
      const agents = agentsOf(phrase)
      expect(agents.map((a) => a[0])).toEqual(expected)
      const p = deterministicPlan({ description: phrase }, info)
      expect(() => validatePlan({ ...p, planner: 'deterministic' }, catalog)).not.toThrow()
    })
  }

  it('says what it did not plan instead of dropping it', () => {
    const p = deterministicPlan({ description: 'Summarize this article and extract the people it names' }, info)
    expect(p.subtasks.map((s) => s.capabilities[0])).toEqual(['text-summarization'])
    expect(p.notes.join('\n')).toMatch(/"extract the people it names" was not planned/)
  })

  it('a plan that maps onto nothing lists the capabilities that do exist', () => {
    let err: unknown
    try {
      deterministicPlan({ description: 'paint me a picture of a horse' }, info)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(PlanningError)
    expect((err as Error).message).toMatch(/Capabilities on offer: .*csv-parsing.*math-evaluation.*text-summarization/)
  })
})

describe('a task without input', () => {
  it('takes the expression of a calculation from the description', async () => {
    const p = deterministicPlan({ description: 'calculate 2*(3+4)', hasInput: false }, info)
    expect(p.subtasks[0].input).toEqual({ value: '2*(3+4)' })
    expect(resolveInput(p.subtasks[0].input, undefined, new Map())).toBe('2*(3+4)')
  })

  it('takes the text after a colon, and plans only the instruction before it', () => {
    const p = deterministicPlan({ description: 'summarize: The cat sat. Then the dog ran. Finally it rained.', hasInput: false }, info)
    expect(p.subtasks.map((s) => s.capabilities[0])).toEqual(['text-summarization'])
    expect(p.subtasks[0].input).toEqual({ value: 'The cat sat. Then the dog ran. Finally it rained.' })
  })

  it('with an input given, the description is not mined for one', () => {
    const p = deterministicPlan({ description: 'calculate 2*(3+4)', hasInput: true }, info)
    expect(p.subtasks[0].input).toEqual({ from: 'task.input' })
  })

  it('is refused at once with MissingInputError when nothing in the description can be the input', async () => {
    const chain = plannerChain([deterministicPlanner()])
    const started = Date.now()
    await expect(chain.plan({ description: 'summarize this article', hasInput: false }, info, (p) => p)).rejects.toThrow(MissingInputError)
    await expect(chain.plan({ description: 'summarize this article', hasInput: false }, info, (p) => p)).rejects.toThrow(/needs an input/)
    expect(Date.now() - started).toBeLessThan(1000)
    // …and the same request with an input plans fine.
    await expect(chain.plan({ description: 'summarize this article', hasInput: true }, info, (p) => p)).resolves.toMatchObject({ planner: 'deterministic' })
  })

  it('inputFromDescription: quoted text, colon, expression; nothing otherwise', () => {
    expect(inputFromDescription('hash "hello world"', 'hashing')).toBe('hello world')
    expect(inputFromDescription('What is 3 + 4?', 'math-evaluation')).toBe('3 + 4')
    expect(inputFromDescription('summarize the article', 'text-summarization')).toBeUndefined()
    expect(inputFromDescription('calculate the total', 'math-evaluation')).toBeUndefined()
  })
})
