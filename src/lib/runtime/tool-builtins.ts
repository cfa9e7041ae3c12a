/**
 * The built-in tools (issue 14): `memory.get` / `memory.set` (a namespace the task
 * grants), `llm.complete` (a prompt to an LLM agent on the mesh), `agent.call`
 * (another agent by name or capability, routed like a step), `http.fetch` (only to
 * origins the donor allows, with size and time caps) and `kv.scratch` (per-task
 * scratch space). What they reach (the memory layer, the orchestrator, `fetch`) is
 * handed in by the composition root: the runtime imports none of it.
 */
import type { MissingGrant, Tool, ToolRunContext } from './tool-host.ts'

/** What the built-ins reach; a tool whose backend is missing is not offered. */
export interface BuiltinToolBackends {
  memory?: { get(namespace: string, key: string): unknown; set(namespace: string, key: string, value: unknown): Promise<void> }
  /** Run a prompt on an LLM agent of the mesh (by name; default the composition root's choice); the answer's text. */
  llm?: (req: { prompt: string; agent?: string }, ctx: ToolRunContext) => Promise<string>
  /** Run another agent (by name or id, or by capability), routed like a step; its output. */
  agent?: (req: { agent?: string; capability?: string; input?: unknown }, ctx: ToolRunContext) => Promise<unknown>
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
      run: async (args, ctx) => ({ text: await llm(args as { prompt: string; agent?: string }, ctx) })
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
      run: async (args, ctx) => ({ output: (await agent(args as { agent?: string; capability?: string; input?: unknown }, ctx)) ?? null })
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
