// Issue 14 point 3: a prompt past the model's context fails typed and counted, never as a bare engine
// error; in a tool loop, whose transcript grows with each tool's answer, the error says how many answers
// it holds. The engine tokenizes and refuses (wllama: llama-server's check, mapped in wllama-engine.ts).
import { describe, expect, test } from 'vitest'
import { LlmContextExceededError, createAgentRuntime, publishLocal, runLlmWithTools, type LlmRunner, type UnsignedManifest } from './index.ts'
import type { AgentManifest } from './manifest.ts'
import { testIdentity } from './test-helpers.ts'

/** A runner with a context of `context` "tokens" (characters here) that refuses a longer prompt as an engine does. */
function smallContextRunner(context: number, answers: string[]): LlmRunner & { prompts: string[] } {
  const prompts: string[] = []
  return {
    prompts,
    models: () => [{ name: 'tiny', family: 'llama', context }],
    async generate(req) {
      const prompt = `${req.system ?? ''}\n\n${req.prompt}`
      prompts.push(prompt)
      if (prompt.length > context) {
        const err = new LlmContextExceededError(`The prompt is ${prompt.length} tokens and the model's context is ${context}`)
        err.promptTokens = prompt.length
        err.contextTokens = context
        throw err
      }
      const text = answers.shift() ?? '{"answer":"done"}'
      return { text, model: 'tiny', tokens: text.length }
    }
  }
}

const summarize: UnsignedManifest = {
  name: 'summarize-test',
  version: '1.0.0',
  description: 'summarize',
  capabilities: ['llm-summarization'],
  abi: 'llm-prompt',
  llm: { prompt: 'Summarize: {{input}}', generation: { maxTokens: 16 } }
}

describe('prompts past the context', () => {
  test('the runtime rejects with LlmContextExceededError and counts it by name', async () => {
    const runner = smallContextRunner(200, ['short'])
    const rt = createAgentRuntime({ workers: 1, llm: () => runner })
    const entry = await publishLocal(rt.store, await testIdentity(), { manifest: summarize, wasm: new Uint8Array() })
    const pkg = { id: entry.id, manifest: entry.manifest, wasm: new Uint8Array() }
    expect((await rt.run(pkg, 'a short text')).output).toBe('short')
    await expect(rt.run(pkg, 'x'.repeat(500))).rejects.toSatisfy(
      (e) => e instanceof LlmContextExceededError && (e as LlmContextExceededError).contextTokens === 200
    )
    expect(rt.stats().errors.LlmContextExceededError).toBe(1)
    await rt.stop()
  })

  test('a tool loop whose transcript outgrows the context fails typed, naming the tool answers it holds', async () => {
    const manifest = {
      ...summarize,
      tools: ['kv.scratch'],
      author: 'ed25519:test',
      signature: 'x'
    } as unknown as AgentManifest
    // The first turn fits; each tool answer adds 300 characters, so the third turn does not.
    const runner = smallContextRunner(900, ['{"tool":"kv.scratch","arguments":{"op":"get"}}', '{"tool":"kv.scratch","arguments":{"op":"get"}}'])
    const calls: string[] = []
    const err = await runLlmWithTools(runner, manifest, 'a text', {
      call: async (name) => {
        calls.push(name)
        return 'y'.repeat(300)
      }
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LlmContextExceededError)
    expect((err as Error).message).toMatch(/the transcript holds the answers of 2 tool calls/)
    expect((err as LlmContextExceededError).contextTokens).toBe(900)
    expect(calls).toEqual(['kv.scratch', 'kv.scratch'])
    expect(runner.prompts).toHaveLength(3)
  })
})
