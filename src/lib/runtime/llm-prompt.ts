/**
 * The third agent kind (issue 14): `abi: 'llm-prompt'`. Its signed manifest holds a
 * prompt template with `{{input}}` slots, the model it needs, generation settings and,
 * when the answer must be structured, an output JSON Schema (the manifest's `output`).
 * It has no module (its package's bytes are empty). A peer runs it on a model it has
 * loaded, through the narrow `LlmRunner` the composition root hands the runtime; the
 * answer is constrained by the schema (the engine's grammar) and validated against it.
 */
import * as v from 'valibot'
import { Validator, type Schema } from '@cfworker/json-schema'
import { MAX_LLM_TOKENS, MAX_PROMPT_CHARS } from './constants.ts'
import { AgentBadOutputError, LlmUnavailableError } from './errors.ts'

const KEBABISH = /^[a-z0-9][a-z0-9._-]*$/

/** What an `llm-prompt` agent declares under `llm` in its manifest. */
export const LlmPromptSpecSchema = v.object({
  /** The prompt; `{{input}}` is the task input (text as is, anything else as JSON), `{{input.key}}` one field of an object input. */
  prompt: v.pipe(
    v.string(),
    v.minLength(1),
    v.maxLength(MAX_PROMPT_CHARS),
    v.includes('{{input', 'the prompt must use the input: put {{input}} where it goes')
  ),
  /** An optional system text put before the prompt. */
  system: v.optional(v.pipe(v.string(), v.maxLength(MAX_PROMPT_CHARS))),
  /** The model it needs: any of these families (llama, qwen2, …) or names, with at least this context. */
  model: v.optional(
    v.object({
      families: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(64), v.regex(KEBABISH))), v.maxLength(16))),
      models: v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(128))), v.maxLength(16))),
      minContext: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_048_576)))
    })
  ),
  /**
   * For an agent that declares tools: `auto` (default) lets the model call a tool or answer at each
   * turn; `required` makes its first turn a tool call (the grammar allows nothing else), like an
   * OpenAI `tool_choice: "required"`.
   */
  toolChoice: v.optional(v.picklist(['auto', 'required'], 'toolChoice must be "auto" or "required"')),
  /** Generation settings; defaults: 256 tokens, temperature 0.7. */
  generation: v.optional(
    v.object({
      maxTokens: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_LLM_TOKENS))),
      temperature: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(2))),
      topP: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1))),
      topK: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1000))),
      stop: v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(64))), v.maxLength(8))),
      seed: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)))
    })
  )
})

/** The `llm` field of an `llm-prompt` manifest. */
export type LlmPromptSpec = v.InferOutput<typeof LlmPromptSpecSchema>

/** What a model offers, as a peer advertises it. */
export interface LlmModelInfo {
  /** The name it is known by (GGUF `general.name`, or the model id). */
  name: string
  /** Its architecture family (GGUF `general.architecture`: llama, qwen2, …). */
  family: string
  /** Its context in tokens. */
  context: number
}

/** Whether `model` meets an agent's requirements. */
export function modelFits(spec: LlmPromptSpec, model: LlmModelInfo): boolean {
  const need = spec.model
  if (need == null) return true
  if (need.minContext != null && model.context < need.minContext) return false
  const families = need.families ?? []
  const models = need.models ?? []
  if (families.length === 0 && models.length === 0) return true
  return families.includes(model.family.toLowerCase()) || models.includes(model.name)
}

/** One generation as the runtime asks for it. */
export interface LlmGenerateRequest {
  prompt: string
  system?: string
  maxTokens: number
  temperature: number
  topP?: number
  topK?: number
  stop?: string[]
  seed?: number
  /** Constrain the answer to this JSON Schema (the engine's grammar). */
  jsonSchema?: Record<string, unknown>
  /** What the agent requires of the model. */
  model?: LlmPromptSpec['model']
}

/** The answer of one generation. */
export interface LlmGenerateResult {
  text: string
  /** The model that answered. */
  model: string
  tokens: number
}

/** Runs generations on a loaded model; the composition root provides it (an LLM engine). */
export interface LlmRunner {
  /** The loaded models, or none. */
  models(): LlmModelInfo[]
  generate(req: LlmGenerateRequest, opts: { signal?: AbortSignal; onToken?: (text: string) => void }): Promise<LlmGenerateResult>
}

function slot(input: unknown, path: string | undefined): string {
  let value = input
  if (path != null) {
    for (const key of path.split('.')) {
      value = value != null && typeof value === 'object' && Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined
    }
  }
  if (value === undefined) return ''
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** Fill a template's `{{input}}` and `{{input.key.sub}}` slots. */
export function renderPrompt(template: string, input: unknown): string {
  return template.replace(/\{\{\s*input(?:\.([A-Za-z0-9_.-]+))?\s*\}\}/g, (_m, path: string | undefined) => slot(input, path))
}

const validators = new WeakMap<object, Validator>()

/** Validate `value` against `schema`; returns the first errors as one sentence, or undefined. */
export function schemaErrors(schema: Record<string, unknown>, value: unknown): string | undefined {
  let validator = validators.get(schema)
  if (validator == null) {
    validator = new Validator(schema as Schema, '2020-12', false)
    validators.set(schema, validator)
  }
  const res = validator.validate(value)
  if (res.valid) return undefined
  return res.errors
    .slice(0, 3)
    .map((e) => `${e.instanceLocation}: ${e.error}`)
    .join('; ')
}

/**
 * Run one `llm-prompt` call: render the prompt, generate on `runner` (streaming each
 * token to `onToken`), and for a structured agent parse and validate the answer.
 * Rejects with `LlmUnavailableError` when no runner or no fitting model is here and
 * `AgentBadOutputError` when the answer does not parse or validate.
 */
export async function runLlmPrompt(
  runner: LlmRunner | undefined,
  spec: LlmPromptSpec,
  outputSchema: Record<string, unknown> | undefined,
  input: unknown,
  opts: { signal?: AbortSignal; onToken?: (text: string) => void } = {}
): Promise<{ output: unknown; model: string; tokens: number }> {
  if (runner == null) throw new LlmUnavailableError('this peer has no language model loaded, so it cannot run llm-prompt agents')
  const models = runner.models()
  if (!models.some((m) => modelFits(spec, m))) {
    throw new LlmUnavailableError(
      models.length === 0
        ? 'this peer has no language model loaded, so it cannot run llm-prompt agents'
        : `no model loaded here fits this agent (it needs ${JSON.stringify(spec.model)}; loaded: ${models.map((m) => `${m.name} (${m.family}, ${m.context} tokens)`).join(', ')})`
    )
  }
  const g = spec.generation ?? {}
  const res = await runner.generate(
    {
      prompt: renderPrompt(spec.prompt, input),
      ...(spec.system != null ? { system: renderPrompt(spec.system, input) } : {}),
      maxTokens: g.maxTokens ?? 256,
      temperature: g.temperature ?? 0.7,
      ...(g.topP != null ? { topP: g.topP } : {}),
      ...(g.topK != null ? { topK: g.topK } : {}),
      ...(g.stop != null ? { stop: g.stop } : {}),
      ...(g.seed != null ? { seed: g.seed } : {}),
      ...(outputSchema != null ? { jsonSchema: outputSchema } : {}),
      ...(spec.model != null ? { model: spec.model } : {})
    },
    opts
  )
  if (outputSchema == null) return { output: res.text, model: res.model, tokens: res.tokens }
  let parsed: unknown
  try {
    parsed = JSON.parse(res.text)
  } catch {
    throw new AgentBadOutputError(`the model's answer is not JSON (${res.tokens} tokens): ${res.text.slice(0, 120)}`)
  }
  const errors = schemaErrors(outputSchema, parsed)
  if (errors != null) throw new AgentBadOutputError(`the model's answer does not match the agent's output schema: ${errors}`)
  return { output: parsed, model: res.model, tokens: res.tokens }
}
