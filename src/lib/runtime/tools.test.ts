// Tools (issue 14): manifest declarations, the three grants, schemas both ways, and the sync bridge
// (Node worker_threads: Atomics.wait + receiveMessageOnPort) for both WebAssembly ABIs.
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  AgentTimeoutError,
  DEFAULT_TOOL_GRANTS,
  InvalidManifestError,
  ToolDeniedError,
  ToolInputError,
  ToolOutputError,
  ToolsUnavailableError,
  UnknownToolError,
  builtinTools,
  checkManifest,
  createAgentRuntime,
  createToolHost,
  parseToolGrants,
  type AgentRuntime,
  type Tool,
  type ToolCallContext,
  type ToolGrants
} from './index.ts'
import { toolImports } from './tool-bridge.ts'
import { testManifest, testPackage } from './test-helpers.ts'
import { wat } from '../../../test/fixtures/runtime-wat.mjs'

const assemble = wat as (text: string) => Uint8Array

/** A WASI agent: stdin is the arguments of `name`; it calls the tool `times` times and prints the last reply; exits 1 unless it was ok. */
function wasiToolAgent(name: string, times = 1): Uint8Array {
  const calls = Array.from(
    { length: times },
    () => `(local.set $len (call $tool_call (i32.const 64) (i32.const ${name.length}) (i32.const 4096) (local.get $n)))`
  ).join('\n')
  return assemble(`(module
    (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
    (import "zerostate" "tool_call" (func $tool_call (param i32 i32 i32 i32) (result i32)))
    (import "zerostate" "tool_result" (func $tool_result (param i32 i32) (result i32)))
    (memory (export "memory") 4)
    (data (i32.const 64) "${name}")
    (func (export "_start") (local $n i32) (local $len i32)
      (i32.store (i32.const 0) (i32.const 4096))
      (i32.store (i32.const 4) (i32.const 60000))
      (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $n (i32.load (i32.const 8)))
      ${calls}
      (local.set $len (call $tool_result (i32.const 131072) (local.get $len)))
      (i32.store (i32.const 16) (i32.const 131072))
      (i32.store (i32.const 20) (local.get $len))
      (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
      ;; {"ok":t… at offset 6 is 't' (116) when the call succeeded
      (if (i32.ne (i32.load8_u (i32.const 131078)) (i32.const 116)) (then (call $proc_exit (i32.const 1))))))`)
}

/** A json-v1 agent: its input is the arguments of `name`; it returns the tool's reply. */
function jsonToolAgent(name: string): Uint8Array {
  return assemble(`(module
    (import "zerostate" "tool_call" (func $tool_call (param i32 i32 i32 i32) (result i32)))
    (import "zerostate" "tool_result" (func $tool_result (param i32 i32) (result i32)))
    (memory (export "memory") 4)
    (data (i32.const 64) "${name}")
    (func (export "alloc") (param i32) (result i32) (i32.const 4096))
    (func (export "run") (param $p i32) (param $n i32) (result i64) (local $len i32)
      (local.set $len (call $tool_call (i32.const 64) (i32.const ${name.length}) (local.get $p) (local.get $n)))
      (local.set $len (call $tool_result (i32.const 131072) (local.get $len)))
      (i64.or (i64.shl (i64.const 131072) (i64.const 32)) (i64.extend_i32_u (local.get $len)))))`)
}

const ctx = (tools: string[], extra: Partial<ToolCallContext> = {}): ToolCallContext => ({
  agent: { id: 'a'.repeat(64), name: 'notes', tools },
  taskId: 't1',
  ...extra
})

describe('manifest tool declarations', () => {
  test('known tools are accepted, unknown and repeated ones get a sentence under "tools"', () => {
    expect(checkManifest(testManifest('json-v1', { tools: ['kv.scratch', 'memory.get'] }))).toEqual([])
    const unknown = checkManifest(testManifest('json-v1', { tools: ['kv.scratch', 'shell.exec'] as never }))
    expect(unknown).toEqual([{ field: 'tools', message: expect.stringMatching(/"shell\.exec" does not exist: the tools are memory\.get, .*kv\.scratch/) }])
    expect(checkManifest(testManifest('json-v1', { tools: ['kv.scratch', 'kv.scratch'] }))[0]).toMatchObject({ field: 'tools', message: /each tool once/ })
    expect(checkManifest(testManifest('json-v1', { tools: 'kv.scratch' as never }))[0]).toMatchObject({ field: 'tools', message: /a list of tool names/ })
  })
  test('a signed package keeps its tools, and changing them breaks the signature', async () => {
    const pkg = await testPackage(jsonToolAgent('kv.scratch'), 'json-v1', { tools: ['kv.scratch'] })
    expect(pkg.manifest.tools).toEqual(['kv.scratch'])
    await expect(testPackage(jsonToolAgent('kv.scratch'), 'json-v1', { tools: ['rm -rf'] as never })).rejects.toBeInstanceOf(InvalidManifestError)
  })
})

describe('the tool host', () => {
  const memory = new Map<string, unknown>()
  const backends = {
    memory: {
      get: (ns: string, key: string) => memory.get(`${ns}/${key}`),
      set: async (ns: string, key: string, value: unknown) => {
        memory.set(`${ns}/${key}`, value)
      }
    }
  }
  let grants: ToolGrants = parseToolGrants(undefined)
  const host = createToolHost({ tools: builtinTools(backends), grants: () => grants })

  test('by default only kv.scratch and llm.complete are granted', async () => {
    expect(DEFAULT_TOOL_GRANTS.all).toEqual(['kv.scratch', 'llm.complete'])
    await expect(host.call('kv.scratch', { op: 'set', key: 'a', value: 1 }, ctx(['kv.scratch']))).resolves.toEqual({})
    await expect(host.call('kv.scratch', { op: 'get', key: 'a' }, ctx(['kv.scratch']))).resolves.toEqual({ value: 1 })
    // Scratch space is per task.
    await expect(host.call('kv.scratch', { op: 'get', key: 'a' }, ctx(['kv.scratch'], { taskId: 't2' }))).resolves.toEqual({ value: null })
    const err = await host
      .call('memory.set', { namespace: 'n', key: 'k', value: 1 }, ctx(['memory.set'], { scope: { memory: ['n'] } }))
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ToolDeniedError)
    expect(err).toMatchObject({
      tool: 'memory.set',
      grant: 'donor',
      message: expect.stringMatching(/"notes" may not call memory\.set .*donor has not granted/)
    })
    expect(memory.size).toBe(0)
  })

  test('each grant is checked: manifest, donor, task', async () => {
    grants = { ...grants, agents: { notes: ['memory.set', 'memory.get'] } }
    // Not declared in the manifest.
    await expect(host.call('memory.set', { namespace: 'n', key: 'k', value: 1 }, ctx([], { scope: { memory: ['n'] } }))).rejects.toMatchObject({
      name: 'ToolDeniedError',
      grant: 'manifest'
    })
    // Granted by the donor to "notes" only: another agent is refused.
    await expect(
      host.call(
        'memory.set',
        { namespace: 'n', key: 'k', value: 1 },
        { ...ctx(['memory.set'], { scope: { memory: ['n'] } }), agent: { id: 'b', name: 'other', tools: ['memory.set'] } }
      )
    ).rejects.toMatchObject({ grant: 'donor' })
    // The task does not allow that namespace.
    await expect(
      host.call('memory.set', { namespace: 'secrets', key: 'k', value: 1 }, ctx(['memory.set'], { scope: { memory: ['n'] } }))
    ).rejects.toMatchObject({
      grant: 'task',
      message: expect.stringMatching(/namespace "secrets"/)
    })
    expect(memory.size).toBe(0)
    // All three granted.
    await expect(host.call('memory.set', { namespace: 'n', key: 'k', value: { x: 1 } }, ctx(['memory.set'], { scope: { memory: ['n'] } }))).resolves.toEqual({
      ok: true
    })
    await expect(host.call('memory.get', { namespace: 'n', key: 'k' }, ctx(['memory.get'], { scope: { memory: ['n'] } }))).resolves.toEqual({ value: { x: 1 } })
  })

  test('http.fetch reaches only the origins the donor allows', async () => {
    const fetched: string[] = []
    const h = createToolHost({
      tools: builtinTools({
        fetch: (async (url: string) => {
          fetched.push(url)
          return new Response('x'.repeat(50))
        }) as typeof fetch
      }),
      grants: () => ({ all: ['http.fetch'], agents: {}, httpOrigins: ['https://ok.example'], httpMaxBytes: 10 })
    })
    await expect(h.call('http.fetch', { url: 'https://evil.example/a' }, ctx(['http.fetch']))).rejects.toMatchObject({ grant: 'origin' })
    await expect(h.call('http.fetch', { url: 'file:///etc/passwd' }, ctx(['http.fetch']))).rejects.toMatchObject({ grant: 'origin' })
    expect(fetched).toEqual([])
    await expect(h.call('http.fetch', { url: 'https://ok.example/a' }, ctx(['http.fetch']))).resolves.toMatchObject({
      status: 200,
      body: 'x'.repeat(10),
      truncated: true
    })
  })

  test('arguments and answers are checked against the schemas', async () => {
    await expect(host.call('kv.scratch', { op: 'drop-table' }, ctx(['kv.scratch']))).rejects.toBeInstanceOf(ToolInputError)
    await expect(host.call('nope.tool', {}, ctx(['kv.scratch']))).rejects.toBeInstanceOf(UnknownToolError)
    const liar: Tool = {
      name: 'liar.tool',
      description: 'answers outside its schema',
      input: { type: 'object' },
      output: { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] },
      run: async () => ({ n: 'not a number' })
    }
    const h = createToolHost({ tools: [liar], grants: () => ({ all: ['liar.tool'], agents: {}, httpOrigins: [] }) })
    await expect(h.call('liar.tool', {}, { ...ctx(['liar.tool']) })).rejects.toBeInstanceOf(ToolOutputError)
    const reply = await h.reply('liar.tool', 'not json', ctx(['liar.tool']))
    expect(reply).toMatchObject({ ok: false, error: { name: 'ToolInputError', tool: 'liar.tool' } })
  })

  test('every call is counted and traced', async () => {
    const spans: Array<{ tool: string; status: string; grant?: unknown }> = []
    const h = createToolHost({ tools: builtinTools(), grants: () => DEFAULT_TOOL_GRANTS })
    const traced = ctx(['kv.scratch', 'http.fetch'], {
      span: (tool) => ({ end: (status, attrs) => spans.push({ tool, status, grant: attrs?.['tool.grant'] }) })
    })
    await h.call('kv.scratch', { op: 'keys' }, traced)
    await h.call('http.fetch', { url: 'https://x.example' }, traced).catch(() => {})
    expect(spans).toEqual([
      { tool: 'kv.scratch', status: 'ok', grant: undefined },
      { tool: 'http.fetch', status: 'error', grant: 'donor' }
    ])
    expect(h.stats()).toMatchObject({ 'tools.calls': 2, 'tools.ok': 1, 'tools.denied': 1, 'tools.calls.kv.scratch': 1 })
  })
})

describe('the sync bridge in Node workers (Atomics.wait + receiveMessageOnPort)', () => {
  let rt: AgentRuntime
  let grants: ToolGrants = parseToolGrants(undefined)
  beforeAll(async () => {
    rt = createAgentRuntime({ workers: 1, tools: createToolHost({ tools: builtinTools(), grants: () => grants }) })
    await rt.start()
  })
  afterAll(() => rt.stop())

  test('a WASI agent calls a tool twice and gets the answers (the worker blocks, the host answers)', async () => {
    const pkg = await testPackage(wasiToolAgent('kv.scratch', 2), 'wasi-preview1', { tools: ['kv.scratch'] })
    const task = { taskId: 'wasi-task' }
    expect((await rt.run(pkg, { op: 'set', key: 'k', value: 42 }, { task })).output).toEqual({ ok: true, value: {} })
    // The same task's scratch space holds what the first run set.
    expect((await rt.run(pkg, { op: 'get', key: 'k' }, { task })).output).toEqual({ ok: true, value: { value: 42 } })
    expect((await rt.run(pkg, { op: 'get', key: 'k' }, { task: { taskId: 'other' } })).output).toEqual({ ok: true, value: { value: null } })
  })

  test('a json-v1 agent calls a tool', async () => {
    const pkg = await testPackage(jsonToolAgent('kv.scratch'), 'json-v1', { tools: ['kv.scratch'] })
    expect((await rt.run(pkg, { op: 'keys' }, { task: { taskId: 'j' } })).output).toEqual({ ok: true, value: { keys: [] } })
  })

  test('a denied call reaches the agent as a typed reply; an agent that then fails fails with ToolDeniedError', async () => {
    const json = await testPackage(jsonToolAgent('http.fetch'), 'json-v1', { tools: ['http.fetch'] })
    expect((await rt.run(json, { url: 'https://example.org/' })).output).toMatchObject({
      ok: false,
      error: { name: 'ToolDeniedError', tool: 'http.fetch', grant: 'donor' }
    })
    const wasi = await testPackage(wasiToolAgent('http.fetch'), 'wasi-preview1', { tools: ['http.fetch'] })
    const err = await rt.run(wasi, { url: 'https://example.org/' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ToolDeniedError)
    expect(err).toMatchObject({ tool: 'http.fetch', grant: 'donor' })
    // Undeclared in the manifest: refused in the worker, without a channel.
    const undeclared = await testPackage(wasiToolAgent('kv.scratch'), 'wasi-preview1', { name: 'undeclared' })
    await expect(rt.run(undeclared, { op: 'keys' })).rejects.toMatchObject({ name: 'ToolDeniedError', grant: 'manifest' })
  })

  test('the donor granting a tool lets the same agent through', async () => {
    const pkg = await testPackage(wasiToolAgent('memory.get'), 'wasi-preview1', { tools: ['memory.get'] })
    const mem = createAgentRuntime({
      workers: 1,
      tools: createToolHost({ tools: builtinTools({ memory: { get: () => 'v', set: async () => {} } }), grants: () => grants })
    })
    try {
      const task = { taskId: 'm', scope: { memory: ['team'] } }
      await expect(mem.run(pkg, { namespace: 'team', key: 'k' }, { task })).rejects.toMatchObject({ name: 'ToolDeniedError', grant: 'donor' })
      grants = { ...grants, agents: { 'test-agent': ['memory.get'] } }
      expect((await mem.run(pkg, { namespace: 'team', key: 'k' }, { task })).output).toEqual({ ok: true, value: { value: 'v' } })
    } finally {
      grants = parseToolGrants(undefined)
      await mem.stop()
    }
  })

  test('a tool that never answers is bounded by the call deadline; the worker is replaced', async () => {
    let hang = true
    const scratch: Tool = {
      name: 'kv.scratch',
      description: 'answers after a while, or never',
      input: { type: 'object' },
      output: { type: 'object' },
      timeoutMs: 60_000,
      run: () => (hang ? new Promise(() => {}) : new Promise((r) => setTimeout(() => r({ late: true }), 50)))
    }
    const pkg = await testPackage(wasiToolAgent('kv.scratch'), 'wasi-preview1', { tools: ['kv.scratch'] })
    const r = createAgentRuntime({ workers: 1, tools: createToolHost({ tools: [scratch] }) })
    try {
      await r.start()
      // The agent is parked in Atomics.wait inside the tool call: the sandbox's deadline, not the tool's 60 s, ends it.
      const err = await r.run(pkg, {}, { timeoutMs: 400 }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(AgentTimeoutError)
      expect((err as Error).message).toMatch(/did not finish within 400 ms/)
      hang = false
      // The only worker was blocked for good: the next call answering means it was terminated and replaced.
      expect((await r.run(pkg, {})).output).toEqual({ ok: true, value: { late: true } })
    } finally {
      await r.stop()
    }
  })
})

describe('toolImports without JSPI or shared memory', () => {
  test('a call answers ToolsUnavailableError at once instead of blocking', () => {
    const memory = new WebAssembly.Memory({ initial: 1 })
    new Uint8Array(memory.buffer).set(new TextEncoder().encode('kv.scratch'), 0)
    const { port1 } = new MessageChannel()
    const t = toolImports({ channel: { port: port1 }, memory: () => memory, reject: () => '' })
    const n = (t.imports.tool_call as (a: number, b: number, c: number, d: number) => number)(0, 10, 0, 0)
    const got = (t.imports.tool_result as (p: number, l: number) => number)(100, n)
    const reply = JSON.parse(new TextDecoder().decode(new Uint8Array(memory.buffer, 100, got)))
    expect(reply).toMatchObject({ ok: false, error: { name: new ToolsUnavailableError().name, tool: 'kv.scratch' } })
    port1.close()
  })
})

describe('llm-prompt tool calling (function-calling JSON, held by the engine grammar)', () => {
  /** A runner answering `turns` in order, recording what it was asked. */
  function scripted(turns: string[]) {
    const requests: Array<{ prompt: string; system?: string; jsonSchema?: Record<string, unknown> }> = []
    return {
      requests,
      runner: {
        models: () => [{ name: 'tiny', family: 'llama', context: 512 }],
        generate: async (req: { prompt: string; system?: string; jsonSchema?: Record<string, unknown> }) => {
          requests.push(req)
          return { text: turns[requests.length - 1]!, model: 'tiny', tokens: 3 }
        }
      }
    }
  }

  test('tools are offered with their descriptions and argument schemas; calls run through the tool host and their answers are fed back', async () => {
    const { runner, requests } = scripted([
      '{"tool":"kv.scratch","arguments":{"op":"set","key":"k","value":7}}',
      '{"tool":"kv.scratch","arguments":{"op":"get","key":"k"}}',
      '{"tool":"kv.scratch","arguments":{"op":"nope"}}',
      '{"answer":"done"}'
    ])
    const host = createToolHost({ tools: builtinTools({ memory: { get: () => null, set: async () => {} } }) })
    const rt = createAgentRuntime({ workers: 1, llm: () => runner, tools: host })
    const pkg = await testPackage(new Uint8Array(), 'llm-prompt', {
      name: 'tool-llm',
      tools: ['kv.scratch', 'memory.set'],
      llm: { prompt: 'Do: {{input}}' }
    })
    try {
      const res = await rt.run(pkg, 'something', { task: { taskId: 'llm-task', scope: { memory: ['n'] } } })
      expect(res.output).toBe('done')
      expect(requests).toHaveLength(4)
      // The function specs: each tool's description and argument schema, in the system text and (one branch per tool) in the grammar.
      expect(requests[0]!.system).toContain('- kv.scratch: Scratch space of this task')
      expect(requests[0]!.system).toContain('"op":{"enum":["get","set","delete","keys"]}')
      const branches = (requests[0]!.jsonSchema as { anyOf: Array<{ properties: Record<string, Record<string, unknown>> }> }).anyOf
      expect(branches.map((b) => b.properties.tool?.const ?? Object.keys(b.properties)[0])).toEqual(['kv.scratch', 'memory.set', 'answer'])
      expect(branches[0]!.properties.arguments).toMatchObject({ properties: { op: { enum: ['get', 'set', 'delete', 'keys'] } }, additionalProperties: false })
      // The call's answer is fed back: the value set by the first call is read by the second.
      expect(requests[2]!.prompt).toContain('Tool kv.scratch answered: {"value":{"value":7}}')
      // Arguments outside the tool's schema: the model sees ToolInputError and goes on.
      expect(requests[3]!.prompt).toMatch(/Tool kv\.scratch answered: \{"error":\{"name":"ToolInputError"/)
      expect(host.stats()).toMatchObject({ 'tools.calls': 3, 'tools.ok': 2, 'tools.calls.kv.scratch': 3 })
    } finally {
      await rt.stop()
    }
  })

  test('a call the donor has not granted fails the run with ToolDeniedError naming the tool and the grant', async () => {
    const { runner, requests } = scripted(['{"tool":"memory.set","arguments":{"namespace":"n","key":"k","value":1}}', '{"answer":"never"}'])
    const host = createToolHost({ tools: builtinTools({ memory: { get: () => null, set: async () => {} } }) })
    const rt = createAgentRuntime({ workers: 1, llm: () => runner, tools: host })
    const pkg = await testPackage(new Uint8Array(), 'llm-prompt', { name: 'tool-llm', tools: ['memory.set'], llm: { prompt: 'Do: {{input}}' } })
    try {
      const err = await rt.run(pkg, 'x', { task: { taskId: 't', scope: { memory: ['n'] } } }).catch((e: unknown) => e as ToolDeniedError)
      expect(err).toBeInstanceOf(ToolDeniedError)
      expect(err).toMatchObject({ tool: 'memory.set', grant: 'donor' })
      expect((err as Error).message).toMatch(/"tool-llm" may not call memory\.set on this peer: the donor has not granted it/)
      expect(requests).toHaveLength(1)
      expect(host.stats()).toMatchObject({ 'tools.denied': 1 })
    } finally {
      await rt.stop()
    }
  })

  test('toolChoice "required": the first turn may only call a tool, later turns may answer, the last may only answer', async () => {
    const { toolTurnSchema } = await import('./tool-llm.ts')
    const specs = createToolHost({ tools: builtinTools() }).list()
    const first = toolTurnSchema(['kv.scratch'], undefined, true, specs, true)
    expect(first).toMatchObject({ properties: { tool: { const: 'kv.scratch' } }, required: ['tool', 'arguments'] })
    expect(toolTurnSchema(['kv.scratch'], undefined, true, specs, false)).toHaveProperty('anyOf')
    expect(toolTurnSchema(['kv.scratch'], undefined, false, specs, false)).toMatchObject({ required: ['answer'] })
  })

  test('grammarSchema bounds every value: untyped values, free strings, lists and extra properties', async () => {
    const { grammarSchema, GRAMMAR_STRING_MAX } = await import('./tool-llm.ts')
    const g = grammarSchema({
      type: 'object',
      properties: { s: { type: 'string' }, k: { type: 'string', maxLength: 9 }, any: {}, list: { type: 'array', items: {} } }
    })
    const p = g.properties as Record<string, Record<string, unknown>>
    expect(g.additionalProperties).toBe(false)
    expect(p.s).toEqual({ type: 'string', maxLength: GRAMMAR_STRING_MAX })
    expect(p.k).toEqual({ type: 'string', maxLength: 9 })
    expect(p.any).toHaveProperty('anyOf')
    expect(p.list).toMatchObject({ maxItems: 16, items: { anyOf: expect.any(Array) } })
    expect(grammarSchema({ type: 'object' })).toEqual({ type: 'object', properties: {}, additionalProperties: false })
  })
})

describe('cutTextAnswer', () => {
  test('a text answer cut by the token limit is read up to the cut; other broken turns are not', async () => {
    const { cutTextAnswer } = await import('./tool-llm.ts')
    expect(cutTextAnswer('{\n"answer" :"hello wor')).toBe('hello wor')
    expect(cutTextAnswer('{"answer":"tab\\tthen \\u00')).toBe('tab\tthen ')
    expect(cutTextAnswer('{"tool":"kv.scratch","argu')).toBeUndefined()
    expect(cutTextAnswer('not json at all')).toBeUndefined()
  })
})
