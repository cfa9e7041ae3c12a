/**
 * Tool calling for `llm-prompt` agents (issue 14): the model answers in a JSON
 * function-calling format, held to it by the engine's JSON Schema grammar (wllama's
 * llama.cpp grammar, WebLLM's JSON mode), so even a tiny model always answers one of
 *   `{"tool": "<one of the manifest's tools>", "arguments": {…}}`  or  `{"answer": …}`.
 * A tool call runs through the same tool host as a WebAssembly agent's (grants,
 * schemas, counters, spans); its answer (or its typed error) is appended to the
 * transcript and the model goes on, for at most `MAX_TOOL_ROUNDS` calls; the last
 * round may only answer. The answer is validated against the agent's output schema.
 */
import { AgentBadOutputError, LlmUnavailableError, ToolError } from './errors.ts'
import { modelFits, renderPrompt, schemaErrors, type LlmRunner } from './llm-prompt.ts'
import type { AgentManifest } from './manifest.ts'

/** Most tool calls one llm-prompt run makes before it must answer. */
export const MAX_TOOL_ROUNDS = 4

/** Options of `runLlmWithTools`. */
export interface LlmToolRunOptions {
  signal?: AbortSignal
  onToken?: (text: string) => void
  /** Call a tool (the runtime's tool host, with this run's context); rejects with a `ToolError`. */
  call: (name: string, args: unknown) => Promise<unknown>
}

/** The text of an `{"answer": "…` turn the token limit cut inside its string, or undefined for anything else. */
export function cutTextAnswer(text: string): string | undefined {
  const head = /^\s*\{\s*"answer"\s*:\s*"/.exec(text)
  if (head == null) return undefined
  const body = text.slice(head[0].length)
  // Drop an escape the cut left unfinished (at most `\uXXX`), then read the rest as a JSON string.
  for (let drop = 0; drop <= 6 && drop <= body.length; drop++) {
    try {
      return JSON.parse(`"${body.slice(0, body.length - drop)}"`) as string
    } catch {
      // Try a shorter prefix.
    }
  }
  return undefined
}

/** The JSON Schema of one turn: a call of one of `tools`, or the answer (shaped by `output`). */
export function toolTurnSchema(tools: readonly string[], output: Record<string, unknown> | undefined, mayCall: boolean): Record<string, unknown> {
  const answer = { type: 'object', properties: { answer: output ?? { type: 'string' } }, required: ['answer'], additionalProperties: false }
  if (!mayCall || tools.length === 0) return answer
  return {
    anyOf: [
      {
        type: 'object',
        properties: { tool: { enum: [...tools] }, arguments: { type: 'object' } },
        required: ['tool', 'arguments'],
        additionalProperties: false
      },
      answer
    ]
  }
}

/** The system text that tells the model its tools and the format. */
export function toolSystemText(system: string | undefined, tools: readonly string[]): string {
  return [
    system ?? '',
    `You may call tools. To call one, reply only {"tool": NAME, "arguments": {...}}; its answer follows. When you are done, reply only {"answer": ...}. Tools: ${tools.join(', ')}.`
  ]
    .filter((s) => s !== '')
    .join('\n')
}

/**
 * Run an `llm-prompt` agent whose manifest declares tools: the function-calling loop.
 * Rejects like `runLlmPrompt` (`LlmUnavailableError`, `AgentBadOutputError`).
 */
export async function runLlmWithTools(
  runner: LlmRunner | undefined,
  manifest: AgentManifest,
  input: unknown,
  opts: LlmToolRunOptions
): Promise<{ output: unknown; model: string; tokens: number; calls: number }> {
  const spec = manifest.llm!
  if (runner == null || !runner.models().some((m) => modelFits(spec, m))) {
    throw new LlmUnavailableError('this peer has no language model loaded that fits this agent, so it cannot run it')
  }
  const tools = manifest.tools ?? []
  const g = spec.generation ?? {}
  const system = toolSystemText(spec.system != null ? renderPrompt(spec.system, input) : undefined, tools)
  let transcript = renderPrompt(spec.prompt, input)
  let tokens = 0
  let calls = 0
  for (let round = 0; ; round++) {
    const mayCall = round < MAX_TOOL_ROUNDS
    const res = await runner.generate(
      {
        prompt: transcript,
        system,
        maxTokens: g.maxTokens ?? 256,
        temperature: g.temperature ?? 0.7,
        ...(g.topP != null ? { topP: g.topP } : {}),
        ...(g.topK != null ? { topK: g.topK } : {}),
        ...(g.seed != null ? { seed: g.seed } : {}),
        jsonSchema: toolTurnSchema(tools, manifest.output, mayCall),
        ...(spec.model != null ? { model: spec.model } : {})
      },
      { ...(opts.signal != null ? { signal: opts.signal } : {}), ...(opts.onToken != null ? { onToken: opts.onToken } : {}) }
    )
    tokens += res.tokens
    let turn: { tool?: unknown; arguments?: unknown; answer?: unknown }
    try {
      turn = JSON.parse(res.text) as typeof turn
    } catch {
      // A text answer cut at maxTokens is that text, cut, as a plain llm-prompt agent's would be.
      const cut = manifest.output == null ? cutTextAnswer(res.text) : undefined
      if (cut == null) throw new AgentBadOutputError(`the model's turn is not JSON (${res.tokens} tokens): ${res.text.slice(0, 120)}`)
      turn = { answer: cut }
    }
    if (turn == null || typeof turn !== 'object') throw new AgentBadOutputError(`the model's turn is not an object: ${res.text.slice(0, 120)}`)
    if (mayCall && typeof turn.tool === 'string') {
      calls++
      let answer: unknown
      try {
        answer = { value: await opts.call(turn.tool, turn.arguments ?? {}) }
      } catch (err) {
        // The model sees the typed error and may go on without the tool.
        const e = err instanceof ToolError ? err : new ToolError(String(err))
        answer = { error: { name: e.name, message: e.message } }
      }
      transcript += `\n${res.text}\nTool ${turn.tool} answered: ${JSON.stringify(answer)}\n`
      continue
    }
    if (!('answer' in turn)) throw new AgentBadOutputError(`the model neither called a tool nor answered: ${res.text.slice(0, 120)}`)
    const output = turn.answer
    if (manifest.output != null) {
      const wrong = schemaErrors(manifest.output, output)
      if (wrong != null) throw new AgentBadOutputError(`the model's answer does not match the agent's output schema: ${wrong}`)
    } else if (typeof output !== 'string') throw new AgentBadOutputError('the model answered something other than text')
    return { output, model: res.model, tokens, calls }
  }
}
