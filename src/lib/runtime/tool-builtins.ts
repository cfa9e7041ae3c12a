/**
 * The built-in tools (issue 14): `memory.get` / `memory.set` (a namespace the task
 * grants), `llm.complete` (a prompt to an LLM agent on the mesh), `agent.call`
 * (another agent by name or capability, routed like a step), `http.fetch` (only to
 * origins the donor allows, with size and time caps) and `kv.scratch` (per-task
 * scratch space). What they reach (the memory layer, the orchestrator, `fetch`) is
 * handed in by the composition root: the runtime imports none of it.
 */
import { ToolCallBudgetError, ToolDepthError } from './errors.ts'
import type { MissingGrant, Tool, ToolRunContext, ToolScope } from './tool-host.ts'

/**
 * What the built-ins reach; a tool whose backend is missing is not offered. The nested-call backends
 * (`llm`, `agent`) get the context of the task they start: its `scope` is the caller's, one level
 * deeper (`scope.depth`), to pass on as that task's `TaskRequest.tools`.
 */
export interface BuiltinToolBackends {
  memory?: { get(namespace: string, key: string): unknown; set(namespace: string, key: string, value: unknown): Promise<void> }
  /** Run a prompt on an LLM agent of the mesh (by name; default the composition root's choice); the answer's text. */
  llm?: (req: { prompt: string; agent?: string }, ctx: ToolRunContext & { scope: ToolScope }) => Promise<string>
  /** Run another agent (by name or id, or by capability), routed like a step; its output. */
  agent?: (req: { agent?: string; capability?: string; input?: unknown }, ctx: ToolRunContext & { scope: ToolScope }) => Promise<unknown>
  /** Limits of nested calls on this peer. Defaults `MAX_TOOL_CALL_DEPTH` and `NESTED_CALLS_PER_TASK`. */
  limits?: { depth?: number; callsPerTask?: number }
  /** `fetch` for `http.fetch`. Default the global one. */
  fetch?: typeof fetch
}

/** The built-in tools' names: what a manifest may declare under `tools`. */
export const BUILTIN_TOOL_NAMES = ['memory.get', 'memory.set', 'llm.complete', 'agent.call', 'http.fetch', 'kv.scratch'] as const
/** A built-in tool's name. */
export type BuiltinToolName = (typeof BUILTIN_TOOL_NAMES)[number]

/** Default cap of an `http.fetch` body (bytes). */
export const HTTP_FETCH_MAX_BYTES = 1024 * 1024
/** Default deadline of an `http.fetch` (ms). */
export const HTTP_FETCH_TIMEOUT_MS = 10_000
/**
 * How deep nested tool calls may go: a task a user submitted is at depth 0, and its agents' `agent.call`
 * and `llm.complete` start tasks at depth 1, theirs at 2, …; a call that would start one deeper than
 * this is refused with `ToolDepthError`. Carried with the request (`TaskRequest.tools.depth`, in each
 * offer), so it holds across the peers of the chain that keep it.
 */
export const MAX_TOOL_CALL_DEPTH = 3
/**
 * Nested calls (`agent.call`, `llm.complete`) one task's agents may make on this peer, all its steps
 * and runs here together; past it, `ToolCallBudgetError`. Each nested call is a task this donor submits
 * and pays for, so with the depth limit it bounds what one task can make a donor spend.
 */
export const NESTED_CALLS_PER_TASK = 16

/** Scratch space per task: entries, bytes of JSON, and tasks kept. */
export const SCRATCH_MAX_KEYS = 1024
export const SCRATCH_MAX_BYTES = 1024 * 1024
export const SCRATCH_TASKS = 256

const KEY = { type: 'string', minLength: 1, maxLength: 256 }
const NAMESPACE = { type: 'string', minLength: 1, maxLength: 128 }

function memoryScope(args: unknown, ctx: ToolRunContext): MissingGrant | undefined {
  const ns = (args as { namespace: string }).namespace
  const allowed = ctx.scope?.memory ?? []
  if (allowed.includes(ns)) return undefined
  return {
    grant: 'task',
    message: `the task does not allow memory namespace "${ns}" (the submitter lists it in TaskRequest.tools.memory${allowed.length ? `; allowed: ${allowed.join(', ')}` : ''})`
  }
}

/** The origin of a URL, or undefined when it is not http(s). */
function originOf(url: string): string | undefined {
  try {
    const u = new URL(url)
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : undefined
  } catch {
    return undefined
  }
}

async function readCapped(res: Response, max: number): Promise<{ body: string; truncated: boolean }> {
  const reader = res.body?.getReader()
  if (reader == null) return { body: '', truncated: false }
  const chunks: Uint8Array[] = []
  let size = 0
  let truncated = false
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    if (size + value.byteLength > max) {
      chunks.push(value.subarray(0, max - size))
      size = max
      truncated = true
      await reader.cancel().catch(() => {})
      break
    }
    chunks.push(value)
    size += value.byteLength
  }
  const all = new Uint8Array(size)
  let at = 0
  for (const c of chunks) {
    all.set(c, at)
    at += c.byteLength
  }
  return { body: new TextDecoder().decode(all), truncated }
}

/** The built-in tools over `backends` (kv.scratch always; the others when their backend is given). */
export function builtinTools(backends: BuiltinToolBackends = {}): Tool[] {
  const scratch = new Map<string, Map<string, string>>()
  const maxDepth = backends.limits?.depth ?? MAX_TOOL_CALL_DEPTH
  const callsPerTask = backends.limits?.callsPerTask ?? NESTED_CALLS_PER_TASK
  /** Nested calls made per task id here (the newest SCRATCH_TASKS tasks). */
  const nestedCalls = new Map<string, number>()
  /** The context of the task a nested call starts (the caller's scope, one level deeper), or the limit it is past. */
  const nested = (tool: string, ctx: ToolRunContext): ToolRunContext & { scope: ToolScope } => {
    const depth = (ctx.scope?.depth ?? 0) + 1
    if (depth > maxDepth) {
      const err = new ToolDepthError(
        `${tool} from the agent "${ctx.agent.name}" would start a task ${depth} levels deep in nested tool calls; this peer allows ${maxDepth} (MAX_TOOL_CALL_DEPTH)`
      )
      err.tool = tool
      throw err
    }
    const made = nestedCalls.get(ctx.taskId) ?? 0
    if (made >= callsPerTask) {
      const err = new ToolCallBudgetError(
        `${tool} from the agent "${ctx.agent.name}": task ${ctx.taskId.slice(0, 64)} already made ${made} nested calls on this peer, which allows ${callsPerTask} per task (NESTED_CALLS_PER_TASK)`
      )
      err.tool = tool
      throw err
    }
    nestedCalls.delete(ctx.taskId)
    nestedCalls.set(ctx.taskId, made + 1)
    if (nestedCalls.size > SCRATCH_TASKS) nestedCalls.delete(nestedCalls.keys().next().value!)
    return { ...ctx, scope: { ...ctx.scope, depth } }
  }
  const tools: Tool[] = [
    {
      name: 'kv.scratch',
      description: 'Scratch space of this task on this peer: get, set, delete or list keys (JSON values, 1 MiB per task).',
      input: {
        type: 'object',
        properties: { op: { enum: ['get', 'set', 'delete', 'keys'] }, key: KEY, value: {} },
        required: ['op'],
        additionalProperties: false
      },
      output: { type: 'object', properties: { value: {}, keys: { type: 'array', items: { type: 'string' } } } },
      async run(args, ctx) {
        const { op, key, value } = args as { op: 'get' | 'set' | 'delete' | 'keys'; key?: string; value?: unknown }
        let space = scratch.get(ctx.taskId)
        if (space == null) {
          space = new Map()
          scratch.set(ctx.taskId, space)
          if (scratch.size > SCRATCH_TASKS) scratch.delete(scratch.keys().next().value!)
        }
        if (op === 'keys') return { keys: [...space.keys()] }
        if (key == null) throw new Error(`kv.scratch ${op} needs a key`)
        if (op === 'get') return { value: space.has(key) ? JSON.parse(space.get(key)!) : null }
        if (op === 'delete') {
          space.delete(key)
          return {}
        }
        const json = JSON.stringify(value ?? null)
        let bytes = json.length
        for (const [k, v] of space) if (k !== key) bytes += v.length
        if (bytes > SCRATCH_MAX_BYTES || (!space.has(key) && space.size >= SCRATCH_MAX_KEYS)) {
          throw new Error(`the task's scratch space is full (${SCRATCH_MAX_KEYS} keys, ${SCRATCH_MAX_BYTES} bytes)`)
        }
        space.set(key, json)
        return {}
      }
    }
  ]
  const memory = backends.memory
  if (memory != null) {
    tools.push(
      {
        name: 'memory.get',
        description: 'Read a key of a shared-memory namespace the task allows.',
        input: { type: 'object', properties: { namespace: NAMESPACE, key: KEY }, required: ['namespace', 'key'], additionalProperties: false },
        output: { type: 'object', properties: { value: {} }, required: ['value'] },
        authorize: memoryScope,
        run: async (args) => {
          const { namespace, key } = args as { namespace: string; key: string }
          return { value: memory.get(namespace, key) ?? null }
        }
      },
      {
        name: 'memory.set',
        description: 'Write a key of a shared-memory namespace the task allows.',
        input: {
          type: 'object',
          properties: { namespace: NAMESPACE, key: KEY, value: {} },
          required: ['namespace', 'key', 'value'],
          additionalProperties: false
        },
        output: { type: 'object', properties: { ok: { const: true } }, required: ['ok'] },
        authorize: memoryScope,
        run: async (args) => {
          const { namespace, key, value } = args as { namespace: string; key: string; value: unknown }
          await memory.set(namespace, key, value)
          return { ok: true }
        }
      }
    )
  }
  const llm = backends.llm
  if (llm != null) {
    tools.push({
      name: 'llm.complete',
      description: 'Send a prompt to an LLM agent on the mesh (a peer with a model loaded) and get its text.',
      input: {
        type: 'object',
        properties: { prompt: { type: 'string', minLength: 1, maxLength: 16_000 }, agent: { type: 'string', maxLength: 128 } },
        required: ['prompt'],
        additionalProperties: false
      },
      output: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
      timeoutMs: 120_000,
      run: async (args, ctx) => ({ text: await llm(args as { prompt: string; agent?: string }, nested('llm.complete', ctx)) })
    })
  }
  const agent = backends.agent
  if (agent != null) {
    tools.push({
      name: 'agent.call',
      description: 'Run another agent, by name or id or by capability, routed like a step; its output.',
      input: {
        type: 'object',
        properties: { agent: { type: 'string', minLength: 1, maxLength: 128 }, capability: { type: 'string', minLength: 1, maxLength: 64 }, input: {} },
        anyOf: [{ required: ['agent'] }, { required: ['capability'] }],
        additionalProperties: false
      },
      output: { type: 'object', properties: { output: {} }, required: ['output'] },
      timeoutMs: 60_000,
      run: async (args, ctx) => ({ output: (await agent(args as { agent?: string; capability?: string; input?: unknown }, nested('agent.call', ctx))) ?? null })
    })
  }
  const fetchFn = backends.fetch ?? (typeof fetch === 'function' ? fetch.bind(globalThis) : undefined)
  if (fetchFn != null) {
    tools.push({
      name: 'http.fetch',
      description: 'GET or POST a URL on an origin the donor allows (Settings → Tools); the status and the text of the body, capped.',
      input: {
        type: 'object',
        properties: {
          url: { type: 'string', minLength: 1, maxLength: 2048 },
          method: { enum: ['GET', 'POST'] },
          body: { type: 'string', maxLength: 256 * 1024 },
          headers: { type: 'object', additionalProperties: { type: 'string', maxLength: 1024 }, maxProperties: 16 }
        },
        required: ['url'],
        additionalProperties: false
      },
      output: {
        type: 'object',
        properties: { status: { type: 'integer' }, body: { type: 'string' }, truncated: { type: 'boolean' }, contentType: { type: 'string' } },
        required: ['status', 'body', 'truncated']
      },
      timeoutMs: 60_000,
      authorize(args, ctx) {
        const url = (args as { url: string }).url
        const origin = originOf(url)
        if (origin == null) return { grant: 'origin', message: `"${url.slice(0, 120)}" is not an http(s) URL` }
        if (ctx.grants.httpOrigins.includes(origin)) return undefined
        return {
          grant: 'origin',
          message: `the donor does not allow ${origin} (Settings → Tools lists the origins http.fetch may reach${ctx.grants.httpOrigins.length ? `: ${ctx.grants.httpOrigins.join(', ')}` : '; none yet'})`
        }
      },
      async run(args, ctx) {
        const { url, method, body, headers } = args as { url: string; method?: string; body?: string; headers?: Record<string, string> }
        const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.grants.httpTimeoutMs ?? HTTP_FETCH_TIMEOUT_MS)])
        // No credentials and no redirects: a redirect could leave the allowed origin.
        const res = await fetchFn(url, { method: method ?? 'GET', body, headers, signal, credentials: 'omit', redirect: 'error' })
        const read = await readCapped(res, ctx.grants.httpMaxBytes ?? HTTP_FETCH_MAX_BYTES)
        const contentType = res.headers.get('content-type')
        return { status: res.status, body: read.body, truncated: read.truncated, ...(contentType != null ? { contentType } : {}) }
      }
    })
  }
  return tools
}
