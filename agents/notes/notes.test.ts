// The bundled tools example (issue 14): notes, compiled from its AssemblyScript sources, run through the
// real runtime (Node workers: the Atomics bridge) with the real built-in tools over an in-memory store.
import { afterAll, beforeAll, expect, test } from 'vitest'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import asc from 'assemblyscript/asc'
import {
  ToolDeniedError,
  builtinTools,
  createAgentRuntime,
  createToolHost,
  parseToolGrants,
  type AgentPackage,
  type AgentRuntime,
  type ToolGrants
} from '../../src/lib/runtime/index.ts'
import { testIdentity } from '../../src/lib/runtime/test-helpers.ts'
import { signPackage } from '../../src/lib/runtime/index.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const store = new Map<string, unknown>()
let grants: ToolGrants = parseToolGrants(undefined)
let rt: AgentRuntime
let pkg: AgentPackage

beforeAll(async () => {
  const out = `${root}node_modules/.cache/notes-test.wasm`
  const { error } = await asc.main(['agents/notes/index.ts', '--outFile', out, '-O3', '--noAssert', '--runtime', 'incremental'], {
    stdout: { write: () => true },
    stderr: { write: () => true }
  })
  if (error) throw error
  const wasm = new Uint8Array(readFileSync(out))
  const unsigned = JSON.parse(readFileSync(`${root}agents/notes/manifest.json`, 'utf8'))
  const { id, manifest } = await signPackage(await testIdentity(), unsigned, wasm)
  pkg = { id, manifest, wasm }
  const memory = {
    get: (ns: string, key: string) => store.get(`${ns}/${key}`),
    set: async (ns: string, key: string, value: unknown) => {
      store.set(`${ns}/${key}`, value)
    }
  }
  rt = createAgentRuntime({ workers: 1, tools: createToolHost({ tools: builtinTools({ memory }), grants: () => grants }) })
  await rt.start()
}, 120_000)
afterAll(() => rt?.stop())

const input = { namespace: 'team', key: 'todo', text: 'buy "milk" ✓' }

test('by default the donor grants no memory tool: the run fails with ToolDeniedError naming memory.set and the donor grant', async () => {
  const err = await rt.run(pkg, input, { task: { taskId: 't1', scope: { memory: ['team'] } } }).catch((e: unknown) => e)
  expect(err).toBeInstanceOf(ToolDeniedError)
  expect(err).toMatchObject({ tool: 'memory.set', grant: 'donor', message: expect.stringMatching(/"notes" may not call memory\.set/) })
  expect(store.size).toBe(0)
})

test('granted by the donor but not by the task: refused with the task grant', async () => {
  grants = { ...grants, agents: { notes: ['memory.get', 'memory.set'] } }
  await expect(rt.run(pkg, input, { task: { taskId: 't2', scope: { memory: ['other'] } } })).rejects.toMatchObject({ grant: 'task', tool: 'memory.set' })
  expect(store.size).toBe(0)
})

test('granted by both: the note is saved and read back', async () => {
  grants = { ...grants, agents: { notes: ['memory.get', 'memory.set'] } }
  const res = await rt.run(pkg, input, { task: { taskId: 't3', scope: { memory: ['team'] } } })
  expect(res.output).toEqual({ saved: true, namespace: 'team', key: 'todo', read: 'buy "milk" ✓' })
  expect(store.get('team/todo')).toBe('buy "milk" ✓')
})
