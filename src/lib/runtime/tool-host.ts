/**
 * Tools agents call (issue 14, vision §6): each has a name, a description and an
 * input and output JSON Schema; every call is checked against three grants, its
 * arguments and answer are validated against the schemas (`@cfworker/json-schema`,
 * no `eval`, so it runs under the app's CSP), and it is counted and traced.
 *
 * The grants, checked in this order, each failure a `ToolDeniedError` naming the
 * tool and the missing grant:
 * - `manifest`: the agent's signed manifest declares the tool (`tools`);
 * - `donor`: this peer's settings grant it to the agent (default: only
 *   `kv.scratch` and `llm.complete`, to every agent);
 * - `task` / `origin`: what the call touches is allowed, by the submitter's request
 *   (`TaskRequest.tools`, e.g. the memory namespaces) or by the donor (the origins
 *   `http.fetch` may reach).
 */
import * as v from 'valibot'
import { schemaErrors } from './llm-prompt.ts'
import {
  ToolCallBudgetError,
  ToolDeniedError,
  ToolDepthError,
  ToolError,
  ToolInputError,
  ToolOutputError,
  ToolTimeoutError,
  UnknownToolError
} from './errors.ts'

/** A tool name: dotted lowercase words (`memory.get`, `kv.scratch`). */
export const TOOL_NAME = /^[a-z][a-z0-9-]*(?:\.[a-z][a-z0-9-]*)*$/

/** Largest JSON of a tool call's arguments (bytes). */
export const MAX_TOOL_ARGS_BYTES = 256 * 1024
/** Largest JSON of a tool's answer (bytes). */
export const MAX_TOOL_RESULT_BYTES = 1024 * 1024
/** Default deadline of one tool call (ms); a tool may ask for less or more. */
export const DEFAULT_TOOL_TIMEOUT_MS = 15_000

/** What the submitter lets a task touch (`TaskRequest.tools`); sent to the donor with each step. */
export const ToolScopeSchema = v.object({
  /** Memory namespaces `memory.get` / `memory.set` may use. None: memory is out of reach. */
  memory: v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(128))), v.maxLength(16))),
  /**
   * How deep in nested tool calls the task is: absent or 0 for a task a user submitted, n for a task an
   * agent started with `agent.call` or `llm.complete` n levels down. Each nested call passes it on one
   * deeper, and a peer refuses a call past its `MAX_TOOL_CALL_DEPTH` (`ToolDepthError`). Optional: a
   * peer without it reads 0 (an older one drops it).
   */
  depth: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(64)))
})
/** What the submitter lets a task touch. */
export type ToolScope = v.InferOutput<typeof ToolScopeSchema>

/** The donor's grants (Settings → Tools), saved per profile. */
export const ToolGrantsSchema = v.object({
  /** Tools every agent may call here. */
  all: v.pipe(v.array(v.pipe(v.string(), v.regex(TOOL_NAME))), v.maxLength(64)),
  /** Tools granted to agents by name (`'*'`: any agent). */
  agents: v.pipe(
    v.record(v.pipe(v.string(), v.minLength(1), v.maxLength(64)), v.pipe(v.array(v.pipe(v.string(), v.regex(TOOL_NAME))), v.maxLength(64))),
    v.check((r) => Object.keys(r).length <= 256, 'at most 256 agents')
  ),
  /** Origins `http.fetch` may reach (`https://example.org`). */
  httpOrigins: v.pipe(v.array(v.pipe(v.string(), v.maxLength(256))), v.maxLength(64)),
  /** Largest body `http.fetch` reads (bytes). Default 1 MiB. */
  httpMaxBytes: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_TOOL_RESULT_BYTES))),
  /** Deadline of one `http.fetch` (ms). Default 10 s. */
  httpTimeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(60_000)))
})
/** The donor's grants. */
export type ToolGrants = v.InferOutput<typeof ToolGrantsSchema>

/** The default grants: every agent may use its task's scratch space and ask an LLM agent; nothing else. */
export const DEFAULT_TOOL_GRANTS: Readonly<ToolGrants> = Object.freeze({ all: ['kv.scratch', 'llm.complete'], agents: {}, httpOrigins: [] })

/** Validate grants read back from storage; the defaults when they are not valid. */
export function parseToolGrants(value: unknown): ToolGrants {
  const res = v.safeParse(ToolGrantsSchema, value)
  return res.success ? res.output : { ...DEFAULT_TOOL_GRANTS, all: [...DEFAULT_TOOL_GRANTS.all] }
}

/** One tool span (the donor's step span is its parent). */
export interface ToolSpan {
  end(status: 'ok' | 'error', attributes?: Record<string, unknown>): void
}

/** Who calls and for which task: what the grants are checked against. */
export interface ToolCallContext {
  /** The calling agent: its id, name and the tools its manifest declares. */
  agent: { id: string; name: string; tools: readonly string[] }
  taskId: string
  stepId?: string
  /** The submitter's peer. */
  from?: string
  /** What the submitter lets the task touch. */
  scope?: ToolScope
  signal?: AbortSignal
  /** Start the span of one call. */
  span?: (tool: string, attributes: Record<string, unknown>) => ToolSpan
}

/** What a tool's code gets besides its arguments. */
export interface ToolRunContext extends ToolCallContext {
  grants: ToolGrants
  signal: AbortSignal
}

/** A missing grant a tool found in what a call touches. */
export interface MissingGrant {
  grant: 'task' | 'origin'
  message: string
}

/** A tool: its contract and its code. */
export interface Tool {
  name: string
  description: string
  /** JSON Schema of the arguments. */
  input: Record<string, unknown>
  /** JSON Schema of the answer. */
  output: Record<string, unknown>
  /** Deadline of one call (ms). Default `DEFAULT_TOOL_TIMEOUT_MS`. */
  timeoutMs?: number
  /** Whether the task or the donor allows what this call touches (after the schema check). */
  authorize?(args: unknown, ctx: ToolRunContext): MissingGrant | undefined
  run(args: unknown, ctx: ToolRunContext): Promise<unknown>
}

/** A tool's contract as agents and pages see it. */
export type ToolSpec = Pick<Tool, 'name' | 'description' | 'input' | 'output'>

/** A call's answer as the sandbox hands it to the agent. */
export type ToolReply = { ok: true; value: unknown } | { ok: false; error: { name: string; message: string; tool: string; grant?: string } }

/** Runs tool calls for agents. */
export interface ToolHost {
  /** Every tool here. */
  list(): ToolSpec[]
  /** The donor's grants now. */
  grants(): ToolGrants
  /** Call a tool; rejects with a `ToolError` subclass. */
  call(name: string, args: unknown, ctx: ToolCallContext): Promise<unknown>
  /** Call a tool with JSON arguments; the answer or the error as a `ToolReply` (never rejects). */
  reply(name: string, argsJson: string, ctx: ToolCallContext): Promise<ToolReply>
  /**
   * Counters: `tools.calls`, `tools.ok`, `tools.denied`, `tools.failed`, `tools.calls.<tool>`, and the nested
   * calls refused by a limit: `tools.tooDeep` (`ToolDepthError`), `tools.overBudget` (`ToolCallBudgetError`).
   */
  stats(): Record<string, number>
}

/** Options of `createToolHost`. */
export interface ToolHostInit {
  tools: readonly Tool[]
  /** The donor's grants (read at every call: Settings may change them). Default `DEFAULT_TOOL_GRANTS`. */
  grants?: () => ToolGrants
}

/** Whether `grants` give `tool` to the agent named `agent`. */
export function granted(grants: ToolGrants, agent: string, tool: string): boolean {
  return grants.all.includes(tool) || (grants.agents[agent]?.includes(tool) ?? false) || (grants.agents['*']?.includes(tool) ?? false)
}

function denied(tool: string, grant: string, message: string): ToolDeniedError {
  const err = new ToolDeniedError(message)
  err.tool = tool
  err.grant = grant
  return err
}

function tagged<E extends ToolError>(err: E, tool: string): E {
  err.tool = tool
  return err
}

/** `createToolHost(init)`: the tools, the grants, validation both ways, counters and spans. */
export function createToolHost(init: ToolHostInit): ToolHost {
  const tools = new Map(init.tools.map((t) => [t.name, t]))
  const grantsOf = init.grants ?? (() => DEFAULT_TOOL_GRANTS)
  const counts: Record<string, number> = { 'tools.calls': 0, 'tools.ok': 0, 'tools.denied': 0, 'tools.failed': 0, 'tools.tooDeep': 0, 'tools.overBudget': 0 }

  /** Check the grants and the arguments; the tool and its context when the call may go ahead. */
  function admit(name: string, args: unknown, ctx: ToolCallContext, grants: ToolGrants, signal: AbortSignal): { tool: Tool; run: ToolRunContext } {
    const tool = tools.get(name)
    const who = `the agent "${ctx.agent.name}"`
    if (tool == null)
      throw tagged(new UnknownToolError(`${who} called "${name.slice(0, 64)}", which is not a tool here (tools: ${[...tools.keys()].join(', ')})`), name)
    if (!ctx.agent.tools.includes(name))
      throw denied(name, 'manifest', `${who} may not call ${name}: its manifest does not declare it (add "${name}" to the manifest's "tools")`)
    if (!granted(grants, ctx.agent.name, name))
      throw denied(name, 'donor', `${who} may not call ${name} on this peer: the donor has not granted it (Settings → Tools)`)
    const invalid = schemaErrors(tool.input, args)
    if (invalid != null) throw tagged(new ToolInputError(`the arguments of ${name} do not match its input schema: ${invalid}`), name)
    const run: ToolRunContext = { ...ctx, grants, signal }
    const missing = tool.authorize?.(args, run)
    if (missing != null) throw denied(name, missing.grant, `${who} may not call ${name} here: ${missing.message}`)
    return { tool, run }
  }

  async function call(name: string, args: unknown, ctx: ToolCallContext): Promise<unknown> {
    counts['tools.calls']++
    counts[`tools.calls.${name.slice(0, 64)}`] = (counts[`tools.calls.${name.slice(0, 64)}`] ?? 0) + 1
    const span = ctx.span?.(name, { 'tool.name': name, 'agent.name': ctx.agent.name })
    const tool = tools.get(name)
    const timeoutMs = tool?.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = ctx.signal != null ? AbortSignal.any([ctx.signal, timeout]) : timeout
    try {
      const admitted = admit(name, args, ctx, grantsOf(), signal)
      const value = await Promise.race([
        admitted.tool.run(args, admitted.run),
        new Promise<never>((_, reject) => {
          const fail = (): void =>
            reject(
              timeout.aborted
                ? tagged(new ToolTimeoutError(`${name} did not answer within ${timeoutMs} ms`), name)
                : tagged(new ToolError(`the call of ${name} was cancelled`), name)
            )
          if (signal.aborted) fail()
          else signal.addEventListener('abort', fail, { once: true })
        })
      ])
      const wrong = schemaErrors(admitted.tool.output, value)
      if (wrong != null) throw tagged(new ToolOutputError(`${name} answered outside its output schema: ${wrong}`), name)
      counts['tools.ok']++
      span?.end('ok')
      return value
    } catch (err) {
      const e =
        err instanceof ToolError ? err : tagged(new ToolError(`${name} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }), name)
      if (e instanceof ToolDeniedError) counts['tools.denied']++
      else if (e instanceof ToolDepthError) counts['tools.tooDeep']++
      else if (e instanceof ToolCallBudgetError) counts['tools.overBudget']++
      else counts['tools.failed']++
      span?.end('error', { error: e.message.slice(0, 200), 'error.name': e.name, ...(e instanceof ToolDeniedError ? { 'tool.grant': e.grant } : {}) })
      throw e
    }
  }

  return {
    list: () => [...tools.values()].map(({ name, description, input, output }) => ({ name, description, input, output })),
    grants: () => grantsOf(),
    call,
    async reply(name, argsJson, ctx) {
      try {
        if (argsJson.length > MAX_TOOL_ARGS_BYTES)
          throw tagged(new ToolInputError(`the arguments of ${name} are larger than ${MAX_TOOL_ARGS_BYTES} bytes`), name)
        let args: unknown
        try {
          args = argsJson === '' ? {} : JSON.parse(argsJson)
        } catch {
          counts['tools.calls']++
          counts['tools.failed']++
          throw tagged(new ToolInputError(`the arguments of ${name} are not JSON: ${argsJson.slice(0, 80)}`), name)
        }
        const value = await call(name, args, ctx)
        if (JSON.stringify(value ?? null).length > MAX_TOOL_RESULT_BYTES) {
          throw tagged(new ToolOutputError(`${name} answered more than ${MAX_TOOL_RESULT_BYTES} bytes`), name)
        }
        return { ok: true, value: value ?? null }
      } catch (err) {
        const e = err instanceof ToolError ? err : tagged(new ToolError(String(err)), name)
        return {
          ok: false,
          error: { name: e.name, message: e.message, tool: e.tool ?? name, ...(e instanceof ToolDeniedError && e.grant ? { grant: e.grant } : {}) }
        }
      }
    },
    stats: () => ({ ...counts })
  }
}
