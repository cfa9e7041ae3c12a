// Every bundled agent, built by agents/build.mjs, run through the real runtime (worker pool) with known inputs.
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { staticFetch } from './static-fetch.ts'
import { createHash } from 'node:crypto'
import {
  AgentExitError,
  AgentTrapError,
  MemoryAgentStore,
  bundledAgents,
  createAgentRuntime,
  loadBundledAgent,
  verifyPackage,
  type AgentPackage,
  type AgentRuntime
} from '../src/lib/runtime/index.ts'

const root = fileURLToPath(new URL('..', import.meta.url))

let rt: AgentRuntime
const pkgs = new Map<string, AgentPackage>()
const run = async (name: string, input: unknown) => (await rt.run(pkgs.get(name)!, input)).output

beforeAll(async () => {
  const names = ['word-stats', 'summarize', 'keywords', 'extract-entities', 'markdown-html', 'csv-json', 'sentiment', 'math-eval', 'hash']
  if (!existsSync(`${root}static/agents/index.json`) || names.some((n) => !existsSync(`${root}static/agents/${n}.wasm`))) {
    execFileSync('node', ['agents/build.mjs'], { cwd: root, stdio: 'ignore' })
  }
  const store = new MemoryAgentStore()
  for (const agent of await bundledAgents({ baseUrl: 'http://app.test/agents/', fetch: staticFetch })) {
    pkgs.set(agent.manifest.name, await loadBundledAgent(agent, store, staticFetch))
  }
  rt = createAgentRuntime({ workers: 2 })
  await rt.start()
}, 120_000)
afterAll(() => rt?.stop())

test('the index lists at least 8 signed agents, ≥2 WASI and ≥1 json-v1, whose ids match their content', async () => {
  expect(pkgs.size).toBeGreaterThanOrEqual(8)
  const abis = [...pkgs.values()].map((p) => p.manifest.abi)
  expect(abis.filter((a) => a === 'wasi-preview1').length).toBeGreaterThanOrEqual(2)
  expect(abis.filter((a) => a === 'json-v1').length).toBeGreaterThanOrEqual(1)
  for (const p of pkgs.values()) expect(await verifyPackage(p.manifest, p.wasm, p.id)).toBe(p.id)
})

describe('word-stats', () => {
  test('counts words, sentences, paragraphs, lines and top content words', async () => {
    const out = await run('word-stats', 'The cat sat on the mat. The dog chased the cat!\n\nCats and dogs are animals.\n')
    expect(out).toEqual({
      characters: 76,
      charactersNoSpaces: 59,
      words: 16,
      uniqueWords: 12,
      sentences: 3,
      paragraphs: 2,
      lines: 3,
      averageWordLength: 3.5,
      averageSentenceLength: 5.333,
      topWords: [
        { word: 'cat', count: 2 },
        { word: 'animals', count: 1 },
        { word: 'cats', count: 1 },
        { word: 'chased', count: 1 },
        { word: 'dog', count: 1 }
      ]
    })
  })
  test('empty input gives zeros', async () => {
    expect(await run('word-stats', '')).toMatchObject({ characters: 0, words: 0, sentences: 0, lines: 0, topWords: [] })
  })
})

describe('summarize', () => {
  const text =
    'Solar panels convert sunlight into electricity. Many homes now install solar panels on their roofs. ' +
    'The weather today is cloudy. Electricity from solar panels can power homes and charge cars. ' +
    'My neighbour owns a red bicycle. Solar electricity reduces the cost of power for homes.'
  test('keeps the three most central sentences in text order', async () => {
    const out = (await run('summarize', text)) as { summary: string; sentences: number[]; totalSentences: number }
    expect(out.totalSentences).toBe(6)
    expect(out.sentences).toHaveLength(3)
    expect(out.sentences).not.toContain(2)
    expect(out.sentences).not.toContain(4)
    expect(out.sentences).toEqual([...out.sentences].sort((a, b) => a - b))
    expect(out.summary).toContain('Electricity from solar panels can power homes and charge cars.')
  })
  test('no sentences is an exit error with a reason', async () => {
    await expect(rt.run(pkgs.get('summarize')!, '   ')).rejects.toSatisfy((e) => e instanceof AgentExitError && /no sentences/.test(e.stderr))
  })
})

test('keywords ranks content words by count, then alphabetically', async () => {
  const out = (await run('keywords', 'Rust and Rust again; WebAssembly runs Rust. WebAssembly is fast. The 2024 plan.')) as {
    keywords: Array<{ word: string; count: number }>
    totalWords: number
  }
  expect(out.keywords.slice(0, 3)).toEqual([
    { word: 'rust', count: 3, score: 0.375 },
    { word: 'webassembly', count: 2, score: 0.25 },
    { word: 'fast', count: 1, score: 0.125 }
  ])
  expect(out.keywords.map((k) => k.word)).not.toContain('2024')
  expect(out.keywords.map((k) => k.word)).not.toContain('the')
  expect(out.keywords.map((k) => k.word)).not.toContain('again')
  expect(out.totalWords).toBe(13)
})

test('extract-entities finds e-mails, URLs and numbers once each', async () => {
  const out = await run(
    'extract-entities',
    'Write to Ann.Lee@Example.org or ann.lee@example.org; docs: https://zerostate.dev/a?b=1). Pay 1,250.50 now, -3 later, not v2, and 42 or 42.'
  )
  expect(out).toEqual({ emails: ['ann.lee@example.org'], urls: ['https://zerostate.dev/a?b=1'], numbers: [1250.5, -3, 42] })
})

test('markdown-html renders blocks and inlines, escapes HTML and drops javascript: links', async () => {
  const out = await run(
    'markdown-html',
    '# Hi <b>\n\nSome **bold**, *em*, `a<b` and [x](https://x.y) [y](javascript:alert).\n\n- one\n- two\n\n```js\n1 < 2\n```'
  )
  expect(out).toBe(
    '<h1>Hi &lt;b&gt;</h1>\n<p>Some <strong>bold</strong>, <em>em</em>, <code>a&lt;b</code> and <a href="https://x.y">x</a> y.</p>\n<ul><li>one</li><li>two</li></ul>\n<pre><code class="language-js">1 &lt; 2</code></pre>'
  )
})

describe('csv-json', () => {
  test('parses quoted fields, numbers and empty values', async () => {
    expect(await run('csv-json', 'name,age,city\r\n"Smith, J",42,"New ""York"""\r\nAnn,,Paris\r\n')).toEqual([
      { name: 'Smith, J', age: 42, city: 'New "York"' },
      { name: 'Ann', age: null, city: 'Paris' }
    ])
  })
  test('a ragged row is an exit error naming the row', async () => {
    await expect(rt.run(pkgs.get('csv-json')!, 'a,b\n1,2\n3\n')).rejects.toSatisfy(
      (e) => e instanceof AgentExitError && /row 3 has 1 fields; the header has 2/.test(e.stderr)
    )
  })
})

test('sentiment scores with negation (json-v1)', async () => {
  expect(await run('sentiment', 'I love this app, it is not bad at all. But sync is slow.')).toEqual({
    score: 4,
    comparative: 0.286,
    label: 'positive',
    positive: ['love', 'not bad'],
    negative: ['slow'],
    words: 14
  })
  expect(await run('sentiment', 'terrible and useless')).toMatchObject({ score: -6, label: 'negative' })
  await expect(rt.run(pkgs.get('sentiment')!, { text: 1 })).rejects.toThrow(/must be a JSON string/)
})

describe('math-eval (json-v1)', () => {
  test.each([
    ['2 + 3 * (4 - 1) ^ 2 / 3', 11],
    ['-2 ^ 2', -4],
    ['2 ^ 3 ^ 2', 512],
    ['max(1, sqrt(16), 3) + min(7, 2)', 6],
    ['round(pi * 100) / 100', 3.14],
    ['10 % 4 + ln(e)', 3],
    ['1.5e3 / 3', 500],
    ['log(1000) + log2(8)', 6]
  ])('%s = %d', async (expression, value) => {
    expect(await run('math-eval', expression)).toEqual({ expression, value })
  })
  test('errors say what and where', async () => {
    await expect(rt.run(pkgs.get('math-eval')!, '2 + * 3')).rejects.toSatisfy(
      (e) => e instanceof AgentTrapError && /unexpected '\*' at position 4/.test((e as Error).message)
    )
    await expect(rt.run(pkgs.get('math-eval')!, '1 / (2 - 2)')).rejects.toThrow(/division by zero/)
    await expect(rt.run(pkgs.get('math-eval')!, 'foo(1)')).rejects.toThrow(/unknown function 'foo'/)
  })
})

test('hash matches node:crypto SHA-256 and zlib CRC-32 (json-v1)', async () => {
  for (const text of ['', 'abc', 'héllo wörld ✓', 'x'.repeat(1000)]) {
    const out = (await run('hash', text)) as { sha256: string; crc32: string; bytes: number }
    expect(out.sha256).toBe(createHash('sha256').update(text).digest('hex'))
    expect(out.bytes).toBe(Buffer.byteLength(text))
  }
  expect(await run('hash', 'The quick brown fox jumps over the lazy dog')).toMatchObject({ crc32: '414fa339' })
})
