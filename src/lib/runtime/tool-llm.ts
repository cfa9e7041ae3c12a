/**
 * Tool calling for `llm-prompt` agents (issue 14): the model answers in a JSON
 * function-calling format, held to it by the engine's JSON Schema grammar (wllama's
 * llama.cpp grammar, WebLLM's JSON mode), so even a tiny model always answers one of
 *   `{"tool": "<one of the manifest's tools>", "arguments": {…that tool's input schema…}}`
 * or `{"answer": …}`. The tools are offered as function specs (name, description and the
 * JSON Schema of their arguments) in the system text and, one branch per tool, in the
 * grammar. A tool call runs through the same tool host as a WebAssembly agent's (grants,
 * schemas, counters, spans); its answer (or its typed error) is appended to the
 * transcript and the model goes on, for at most `MAX_TOOL_ROUNDS` calls; the last
 * round may only answer. A call outside the grants ends the run with the tool host's
 * `ToolDeniedError` (naming the tool and the missing grant), so the submitter learns which
 * grant is missing instead of getting an answer made without the tool. With
 * `llm.toolChoice: "required"` the first turn must be a tool call. The answer is validated
 * against the agent's output schema.
 */
import { AgentBadOutputError, LlmContextExceededError, LlmUnavailableError, ToolDeniedError, ToolError } from './errors.ts'
import { modelFits, renderPrompt, schemaErrors, type LlmRunner } from './llm-prompt.ts'
import type { AgentManifest } from './manifest.ts'
import type { ToolSpec } from './tool-host.ts'

/** Most tool calls one llm-prompt run makes before it must answer. */
export const MAX_TOOL_ROUNDS = 4

/** Options of `runLlmWithTools`. */
export interface LlmToolRunOptions {
  signal?: AbortSignal
  onToken?: (text: string) => void
  /** Call a tool (the runtime's tool host, with this run's context); rejects with a `ToolError`. */
  call: (name: string, args: unknown) => Promise<unknown>
  /** The tools' contracts (the tool host's `list()`): offered to the model with their argument schemas. */
  specs?: readonly ToolSpec[]
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

/** Longest free string a grammar-held tool call may hold (characters): a grammar without a bound lets a model ramble past its token limit. */
export const GRAMMAR_STRING_MAX = 512

/** Any JSON value, as a grammar offers it: a scalar or a short list of scalars. */
const BOUNDED_SCALAR = { anyOf: [{ type: 'string', maxLength: GRAMMAR_STRING_MAX }, { type: 'number' }, { type: 'boolean' }, { type: 'null' }] }
const BOUNDED_ANY = { anyOf: [...BOUNDED_SCALAR.anyOf, { type: 'array', items: BOUNDED_SCALAR, maxItems: 16 }] }

const SCHEMA_WORDS = ['type', 'enum', 'const', 'anyOf', 'oneOf', 'allOf', 'properties', 'items', '$ref']

/**
 * A tool's argument schema as the grammar gets it: every value ends. An untyped value (`{}`) becomes
 * a scalar or a short list, a free string gets `GRAMMAR_STRING_MAX`, an object takes only its own
 * properties (llama.cpp otherwise allows any extra ones). The tool host still validates the call
 * against the tool's own schema.
 */
export function grammarSchema(schema: unknown, depth = 0): Record<string, unknown> {
  if (schema == null || typeof schema !== 'object' || Array.isArray(schema) || depth > 8) return BOUNDED_ANY
  const s = schema as Record<string, unknown>
  if (!SCHEMA_WORDS.some((w) => w in s)) return BOUNDED_ANY
  const out: Record<string, unknown> = { ...s }
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) if (Array.isArray(s[k])) out[k] = (s[k] as unknown[]).map((x) => grammarSchema(x, depth + 1))
  if (s.type === 'string' && s.enum == null && s.const == null && typeof s.maxLength !== 'number') out.maxLength = GRAMMAR_STRING_MAX
  if (s.type === 'string' && typeof s.maxLength === 'number') out.maxLength = Math.min(s.maxLength, GRAMMAR_STRING_MAX)
  if (s.items != null) out.items = grammarSchema(s.items, depth + 1)
  if (s.type === 'array' && typeof s.maxItems !== 'number') out.maxItems = 16
  if (s.properties != null && typeof s.properties === 'object') {
    out.properties = Object.fromEntries(Object.entries(s.properties as Record<string, unknown>).map(([k, x]) => [k, grammarSchema(x, depth + 1)]))
    out.additionalProperties = false
  } else if (s.type === 'object') {
    out.properties = {}
    out.additionalProperties = false
  }
  return out
}

/**
 * The JSON Schema of one turn: a call of one of `tools` (each with its own argument schema when
 * `specs` has it), or the answer (shaped by `output`). `mayCall` false: only the answer;
 * `mustCall` true: only a call.
 */
export function toolTurnSchema(
  tools: readonly string[],
  output: Record<string, unknown> | undefined,
  mayCall: boolean,
  specs: readonly ToolSpec[] = [],
  mustCall = false
): Record<string, unknown> {
  const answer = { type: 'object', properties: { answer: output ?? { type: 'string' } }, required: ['answer'], additionalProperties: false }
  if (!mayCall || tools.length === 0) return answer
  const calls = tools.map((name) => {
    const spec = specs.find((t) => t.name === name)
    return {
      type: 'object',
      properties: { tool: { const: name }, arguments: spec != null ? grammarSchema(spec.input) : { type: 'object' } },
      required: ['tool', 'arguments'],
      additionalProperties: false
    }
  })
  const branches = mustCall ? calls : [...calls, answer]
  return branches.length === 1 ? branches[0]! : { anyOf: branches }
}

/** The system text that tells the model its tools (name, description, arguments) and the format. */
export function toolSystemText(system: string | undefined, tools: readonly string[], specs: readonly ToolSpec[] = []): string {
  const lines = tools.map((name) => {
    const spec = specs.find((t) => t.name === name)
    return spec != null ? `- ${name}: ${spec.description} Arguments (JSON Schema): ${JSON.stringify(spec.input)}` : `- ${name}`
  })
  return [
    system ?? '',
    'You may call tools. To call one, reply only {"tool": NAME, "arguments": {...}}; its answer follows. When you are done, reply only {"answer": ...}.',
    `Tools:\n${lines.join('\n')}`
  ]
    .filter((s) => s !== '')
    .join('\n')
}

/**
 * One turn of the loop. The engine tokenizes each turn's prompt and refuses one past its context
 * (`LlmContextExceededError`) before generating; the transcript grows with every tool's answer, so a
 * refusal after calls says how many answers it holds (the step fails typed; the engine never runs past its context).
 */
async function generateTurn<T>(calls: number, turn: () => Promise<T>): Promise<T> {
  try {
    return await turn()
  } catch (err) {
    if (err instanceof LlmContextExceededError && calls > 0) {
      const e = new LlmContextExceededError(`${err.message} (the transcript holds the answers of ${calls} tool call${calls === 1 ? '' : 's'})`)
      if (err.promptTokens != null) e.promptTokens = err.promptTokens
      if (err.contextTokens != null) e.contextTokens = err.contextTokens
      throw e
    }
    throw err
  }
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
  const specs = opts.specs ?? []
  const g = spec.generation ?? {}
  const system = toolSystemText(spec.system != null ? renderPrompt(spec.system, input) : undefined, tools, specs)
  let transcript = renderPrompt(spec.prompt, input)
  let tokens = 0
  let calls = 0
  for (let round = 0; ; round++) {
    const mayCall = round < MAX_TOOL_ROUNDS
    const res = await generateTurn(calls, () =>
      runner.generate(
        {
          prompt: transcript,
          system,
          maxTokens: g.maxTokens ?? 256,
          temperature: g.temperature ?? 0.7,
          ...(g.topP != null ? { topP: g.topP } : {}),
          ...(g.topK != null ? { topK: g.topK } : {}),
          ...(g.seed != null ? { seed: g.seed } : {}),
          jsonSchema: toolTurnSchema(tools, manifest.output, mayCall, specs, round === 0 && spec.toolChoice === 'required'),
          ...(spec.model != null ? { model: spec.model } : {})
        },
        { ...(opts.signal != null ? { signal: opts.signal } : {}), ...(opts.onToken != null ? { onToken: opts.onToken } : {}) }
      )
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
        // A call outside the grants ends the run: the step fails naming the tool and the missing grant.
        if (err instanceof ToolDeniedError) throw err
        // Any other failure (bad arguments, the tool failed): the model sees the typed error and may go on without the tool.
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
