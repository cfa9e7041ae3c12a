import { describe, expect, test } from 'vitest'
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import {
  AgentBadOutputError,
  AgentTimeoutError,
  InvalidManifestError,
  InvalidModuleError,
  LlmUnavailableError,
  checkManifest,
  createAgentRuntime,
  publishLocal,
  MemoryAgentStore,
  modelFits,
  renderPrompt,
  verifyPackage,
  type LlmGenerateRequest,
  type LlmRunner,
  type UnsignedManifest
} from './index.ts'
import { testIdentity } from './test-helpers.ts'

const classify: UnsignedManifest = {
  name: 'classify-test',
  version: '1.0.0',
  description: 'sentiment',
  capabilities: ['llm-classification'],
  abi: 'llm-prompt',
  output: { type: 'object', properties: { label: { enum: ['positive', 'negative'] } }, required: ['label'], additionalProperties: false },
  llm: { prompt: 'Classify: {{input}}\nJSON:', model: { families: ['llama'], minContext: 256 }, generation: { maxTokens: 32, temperature: 0 } }
}

/** A runner that answers `answers` in turn, token by token, and records what it was asked. */
function fakeRunner(answers: string[], models = [{ name: 'tiny', family: 'llama', context: 512 }]) {
  const asked: LlmGenerateRequest[] = []
  const runner: LlmRunner = {
    models: () => models,
    async generate(req, opts) {
      asked.push(req)
      const text = answers.shift() ?? ''
      for (const piece of text.match(/.{1,3}/gs) ?? []) opts.onToken?.(piece)
      return { text, model: 'tiny', tokens: Math.ceil(text.length / 3) }
    }
  }
  return { runner, asked }
}

describe('llm-prompt manifests', () => {
  test('a valid llm-prompt manifest has no issues; its kind rules are checked across fields', () => {
    expect(checkManifest(classify)).toEqual([])
    const { llm: _drop, ...noLlm } = classify
    expect(checkManifest(noLlm).map((i) => i.field)).toEqual(['llm'])
    expect(checkManifest({ ...classify, abi: 'wasi-preview1' })).toEqual([{ field: 'llm', message: expect.stringMatching(/Only an llm-prompt agent/) }])
    expect(checkManifest({ ...classify, limits: { memoryMiB: 64 } }).map((i) => i.field)).toEqual(['limits.memoryMiB'])
  })

  test('each faulty llm field is named with a sentence', () => {
    const issues = checkManifest({
      ...classify,
      llm: { prompt: 'no slot here', model: { minContext: -1 }, generation: { maxTokens: 99_999, temperature: 5 } }
    })
    expect(issues.map((i) => i.field)).toEqual(['llm.prompt', 'llm.model', 'llm.generation'])
    expect(issues[0]!.message).toMatch(/\{\{input\}\}/)
    expect(checkManifest({ ...classify, abi: 'llm' }).map((i) => i.field)).toEqual(['abi'])
  })

  test('it is signed and published with an empty module; bytes are refused', async () => {
    const store = new MemoryAgentStore()
    const entry = await publishLocal(store, await testIdentity(), { manifest: classify, wasm: new Uint8Array() })
    expect(entry.manifest.abi).toBe('llm-prompt')
    expect(await verifyPackage(entry.manifest, new Uint8Array(), entry.id)).toBe(entry.id)
    await expect(publishLocal(store, await testIdentity(), { manifest: classify, wasm: new Uint8Array([0, 97, 115, 109]) })).rejects.toBeInstanceOf(
      InvalidModuleError
    )
    await expect(publishLocal(store, await testIdentity(), { manifest: { ...classify, llm: undefined }, wasm: new Uint8Array() })).rejects.toBeInstanceOf(
      InvalidManifestError
    )
  })

  test('the five bundled llm agents are valid llm-prompt manifests', () => {
    const root = new URL('../../../agents/', import.meta.url)
    const names = readdirSync(root).filter((n) => existsSync(new URL(`${n}/manifest.json`, root)))
    const llm = names
      .map((n) => JSON.parse(readFileSync(new URL(`${n}/manifest.json`, root), 'utf8')) as UnsignedManifest)
      .filter((m) => m.abi === 'llm-prompt')
    expect(llm.map((m) => m.name).sort()).toEqual(['answer-llm', 'classify-llm', 'extract-json-llm', 'summarize-llm', 'translate-llm'])
    for (const m of llm) expect(checkManifest(m), m.name).toEqual([])
  })
})

describe('running an llm-prompt agent', () => {
  test('slots are filled from the input', () => {
    expect(renderPrompt('Q: {{input}}!', 'why')).toBe('Q: why!')
    expect(renderPrompt('{{input.q}} / {{ input.ctx.a }} / {{input.none}}', { q: 'x', ctx: { a: [1] } })).toBe('x / [1] / ')
    expect(renderPrompt('{{input}}', { a: 1 })).toBe('{"a":1}')
  })

  test('a model fits by family, name and context', () => {
    const spec = classify.llm!
    expect(modelFits(spec, { name: 'a', family: 'llama', context: 512 })).toBe(true)
    expect(modelFits(spec, { name: 'a', family: 'qwen2', context: 512 })).toBe(false)
    expect(modelFits(spec, { name: 'a', family: 'llama', context: 128 })).toBe(false)
    expect(modelFits({ prompt: '{{input}}' }, { name: 'a', family: 'x', context: 1 })).toBe(true)
  })

  test('the runtime renders the prompt, streams tokens, and returns the parsed, validated answer', async () => {
    const { runner, asked } = fakeRunner(['{"label":"positive"}'])
    const rt = createAgentRuntime({ workers: 1, llm: () => runner })
    const entry = await publishLocal(rt.store, await testIdentity(), { manifest: classify, wasm: new Uint8Array() })
    const tokens: string[] = []
    const res = await rt.run({ id: entry.id, manifest: entry.manifest, wasm: new Uint8Array() }, 'I love it', { onToken: (t) => tokens.push(t) })
    expect(res.output).toEqual({ label: 'positive' })
    expect(tokens.join('')).toBe('{"label":"positive"}')
    expect(asked[0]).toMatchObject({ prompt: 'Classify: I love it\nJSON:', maxTokens: 32, temperature: 0, jsonSchema: classify.output })
    await rt.stop()
  })

  test('an answer that does not parse or validate is AgentBadOutputError; no runner or no fitting model is LlmUnavailableError', async () => {
    const { runner } = fakeRunner(['{"label":"maybe"}', 'not json'])
    let current: LlmRunner | undefined = runner
    const rt = createAgentRuntime({ workers: 1, llm: () => current })
    const entry = await publishLocal(rt.store, await testIdentity(), { manifest: classify, wasm: new Uint8Array() })
    const pkg = { id: entry.id, manifest: entry.manifest, wasm: new Uint8Array() }
    await expect(rt.run(pkg, 'x')).rejects.toSatisfy((e) => e instanceof AgentBadOutputError && /label/.test((e as Error).message))
    await expect(rt.run(pkg, 'x')).rejects.toSatisfy((e) => e instanceof AgentBadOutputError && /not JSON/.test((e as Error).message))
    current = fakeRunner([], [{ name: 'q', family: 'qwen2', context: 4096 }]).runner
    await expect(rt.run(pkg, 'x')).rejects.toSatisfy((e) => e instanceof LlmUnavailableError && /qwen2/.test((e as Error).message))
    current = undefined
    await expect(rt.run(pkg, 'x')).rejects.toBeInstanceOf(LlmUnavailableError)
    await rt.stop()
  })

  test('a generation past the deadline is aborted with AgentTimeoutError', async () => {
    let sawAbort = false
    const runner: LlmRunner = {
      models: () => [{ name: 'tiny', family: 'llama', context: 512 }],
      generate: (_req, opts) =>
        new Promise((_resolve, reject) => {
          opts.signal?.addEventListener('abort', () => {
            sawAbort = true
            reject(new Error('aborted'))
          })
        })
    }
    const rt = createAgentRuntime({ workers: 1, llm: () => runner })
    const entry = await publishLocal(rt.store, await testIdentity(), { manifest: classify, wasm: new Uint8Array() })
    await expect(rt.run({ id: entry.id, manifest: entry.manifest, wasm: new Uint8Array() }, 'x', { timeoutMs: 50 })).rejects.toBeInstanceOf(AgentTimeoutError)
    expect(sawAbort).toBe(true)
    await rt.stop()
  })
})
