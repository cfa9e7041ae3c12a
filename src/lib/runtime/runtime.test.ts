import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { Worker } from 'node:worker_threads'
import nodeEndpoint, { type NodeEndpoint } from 'comlink/dist/esm/node-adapter.mjs'
import {
  AgentAbortedError,
  AgentBadOutputError,
  AgentExitError,
  AgentMemoryLimitError,
  AgentOutputTooLargeError,
  AgentTimeoutError,
  AgentTrapError,
  ForbiddenImportError,
  InvalidModuleError,
  SignatureMismatchError,
  WorkerCrashedError,
  createAgentRuntime,
  type AgentRuntime
} from './index.ts'
import { nodeWorkerFactory } from './node-worker.ts'
import type { WorkerFactory } from './worker-factory.ts'
import { testPackage } from './test-helpers.ts'
import { modules as rawModules } from '../../../test/fixtures/runtime-wat.mjs'

const modules = rawModules as Record<string, () => Uint8Array>
const wasi = (name: string, extra = {}) => testPackage(modules[name]!(), 'wasi-preview1', extra)
const json = (name: string, extra = {}) => testPackage(modules[name]!(), 'json-v1', extra)

let rt: AgentRuntime
beforeAll(async () => {
  rt = createAgentRuntime({ workers: 2 })
  await rt.start()
})
afterAll(() => rt.stop())

describe('wasi-preview1', () => {
  test('a string arrives as text on stdin and non-JSON stdout comes back as a string', async () => {
    const res = await rt.run(await wasi('wasiCat'), 'hello wörld')
    expect(res.output).toBe('hello wörld')
    expect(res.ms).toBeGreaterThan(0)
  })
  test('other input arrives as JSON and JSON stdout is parsed', async () => {
    expect((await rt.run(await wasi('wasiCat'), { a: [1, 'x'], b: null })).output).toEqual({ a: [1, 'x'], b: null })
  })
  test('bytes arrive on stdin as they are, and stdout that is not UTF-8 comes back as bytes', async () => {
    const bytes = new Uint8Array(200_000).map((_, i) => (i * 7 + (i >> 8)) & 0xff)
    const res = await rt.run(await wasi('wasiCat'), bytes)
    expect(res.output).toBeInstanceOf(Uint8Array)
    expect(Buffer.compare(res.output as Uint8Array, bytes)).toBe(0)
    // UTF-8 bytes in are text out (the agent cannot tell them from a string).
    expect((await rt.run(await wasi('wasiCat'), new TextEncoder().encode('plain text'))).output).toBe('plain text')
  })
  test('a non-zero exit is an AgentExitError carrying stderr and the status', async () => {
    const err = await rt.run(await wasi('wasiExit'), '').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AgentExitError)
    expect((err as AgentExitError).stderr).toBe('bad input\n')
    expect((err as AgentExitError).exitCode).toBe(3)
    expect((err as Error).message).toMatch(/status 3: bad input/)
  })
  test('a trap is an AgentTrapError', async () => {
    await expect(rt.run(await wasi('wasiTrap'), '')).rejects.toSatisfy((e) => e instanceof AgentTrapError && /unreachable/.test((e as Error).message))
  })
  test('output past the cap is an AgentOutputTooLargeError', async () => {
    const small = createAgentRuntime({ workers: 1, limits: { outputBytes: 200_000 } })
    try {
      await expect(small.run(await wasi('wasiFlood'), '')).rejects.toBeInstanceOf(AgentOutputTooLargeError)
    } finally {
      await small.stop()
    }
  })
})

describe('json-v1', () => {
  test('input goes in as JSON and the returned range comes back parsed', async () => {
    expect((await rt.run(await json('jsonEcho'), { n: 42, s: 'é' })).output).toEqual({ n: 42, s: 'é' })
  })
  test('no state survives between calls (memory is fresh or zeroed each time)', async () => {
    const pkg = await json('jsonSticky')
    const outs = []
    for (let i = 0; i < 5; i++) outs.push((await rt.run(pkg, i)).output)
    expect(outs).toEqual([0, 0, 0, 0, 0])
  })
  test('hundreds of calls in a burst do not exhaust wasm memory reservations', async () => {
    const pkg = await json('jsonEcho')
    const outs = await Promise.all(Array.from({ length: 400 }, (_, i) => rt.run(pkg, i)))
    expect(outs.map((o) => o.output)).toEqual(Array.from({ length: 400 }, (_, i) => i))
  })
  test('bytes that are not JSON are an AgentBadOutputError', async () => {
    await expect(rt.run(await json('jsonGarbage'), 1)).rejects.toBeInstanceOf(AgentBadOutputError)
  })
})

describe('memory caps', () => {
  test('a module declaring its own 4 GiB maximum is stopped at the 128 MiB cap', async () => {
    const err = await rt.run(await wasi('memoryBombOwnMax'), '').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AgentMemoryLimitError)
    const used = Number(/\(([\d.]+) MiB in use\)/.exec((err as Error).message)?.[1])
    expect(used).toBeLessThanOrEqual(128)
    expect(used).toBeGreaterThan(120)
  })
  test('a module with no maximum is capped too, and the manifest can ask for less', async () => {
    const err = await rt.run(await wasi('memoryBombNoMax', { limits: { memoryMiB: 16 } }), '').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AgentMemoryLimitError)
    expect(Number(/\(([\d.]+) MiB in use\)/.exec((err as Error).message)?.[1])).toBeLessThanOrEqual(16)
  })
  test('the donor setting lowers the cap below the manifest', async () => {
    const small = createAgentRuntime({ workers: 1, limits: { memoryMiB: 8 } })
    try {
      const err = await small.run(await wasi('memoryBombOwnMax', { limits: { memoryMiB: 64 } }), '').catch((e: unknown) => e)
      expect((err as Error).message).toMatch(/cap of 8 MiB/)
    } finally {
      await small.stop()
    }
  })
  test('initial memory above the cap is refused before running', async () => {
    await expect(rt.run(await wasi('bigInitial'), '')).rejects.toThrow(/asks for 256 MiB of initial memory; the cap is 128 MiB/)
  })
})

describe('validation', () => {
  test('an import outside the ABI is refused with a sentence naming it', async () => {
    const err = await rt.run(await json('forbiddenImport'), 1).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ForbiddenImportError)
    expect((err as Error).message).toBe('module imports "env.fetch", which the json-v1 ABI does not allow (only "env.abort", "env.log")')
  })
  test('an imported memory is refused', async () => {
    await expect(rt.run(await wasi('importsMemory'), '')).rejects.toThrow(/imports "wasi_snapshot_preview1.memory" as a memory/)
  })
  test('a WASI module without _start is refused', async () => {
    await expect(rt.run(await wasi('noStart'), '')).rejects.toSatisfy(
      (e) => e instanceof InvalidModuleError && /does not export "_start"/.test((e as Error).message)
    )
  })
  test('a json-v1 module run as WASI is refused (wrong import module)', async () => {
    await expect(rt.run(await testPackage(modules['jsonEcho']!(), 'wasi-preview1'), '')).rejects.toThrow(
      /imports "env.abort", which the wasi-preview1 ABI does not allow/
    )
  })
  test('tampered bytes or manifest fail the signature', async () => {
    const pkg = await wasi('wasiCat')
    const wasm = pkg.wasm.slice()
    wasm[wasm.length - 1] ^= 1
    await expect(rt.run({ ...pkg, wasm }, '')).rejects.toBeInstanceOf(SignatureMismatchError)
    await expect(rt.run({ ...pkg, manifest: { ...pkg.manifest, price: 5 } }, '')).rejects.toBeInstanceOf(SignatureMismatchError)
    await expect(rt.run({ ...pkg, id: '0'.repeat(64) }, '')).rejects.toThrow(/claims id 000000000000/)
  })
})

describe('deadlines, cancellation, crashes', () => {
  test('an infinite loop is stopped at its deadline, the worker replaced, and the next call succeeds', async () => {
    const before = rt.stats()
    const looping = await wasi('wasiLoop')
    const t0 = performance.now()
    await expect(rt.run(looping, '', { timeoutMs: 200 })).rejects.toSatisfy((e) => e instanceof AgentTimeoutError && /200 ms/.test((e as Error).message))
    const took = performance.now() - t0
    // The 200 ms deadline (not the 30 s default) ended it; promptness is measured by bench:runtime.
    expect(took).toBeGreaterThanOrEqual(195)
    expect(took).toBeLessThan(5000)
    const after = rt.stats()
    expect(after.workers).toBe(before.workers)
    expect(after.replaced).toBe(before.replaced + 1)
    expect(after.errors['AgentTimeoutError']).toBe((before.errors['AgentTimeoutError'] ?? 0) + 1)
    expect((await rt.run(await json('jsonEcho'), 'ok')).output).toBe('ok')
  })
  test('the manifest time limit applies when the call gives none', async () => {
    await expect(rt.run(await json('jsonLoop', { limits: { timeMs: 150 } }), 1)).rejects.toThrow(/within 150 ms/)
  })
  test('aborting a running call rejects at once with AgentAbortedError and keeps the pool size', async () => {
    const ac = new AbortController()
    const p = rt.run(await wasi('wasiLoop'), '', { signal: ac.signal })
    setTimeout(() => ac.abort(), 100)
    await expect(p).rejects.toBeInstanceOf(AgentAbortedError)
    expect(rt.stats().workers).toBe(2)
    await expect(rt.run(await json('jsonEcho'), 1, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AgentAbortedError)
  })
  test('concurrent calls beyond the pool size queue and all complete with their own outputs', async () => {
    const pkg = await wasi('wasiCat')
    const inputs = Array.from({ length: 12 }, (_, i) => ({ i }))
    const outs = await Promise.all(inputs.map((x) => rt.run(pkg, x)))
    expect(outs.map((o) => o.output)).toEqual(inputs)
  })
  test('two runaways at once on a 2-worker pool: both time out, the pool still has 2 workers that work', async () => {
    const loop = await wasi('wasiLoop')
    const results = await Promise.allSettled([
      rt.run(loop, '', { timeoutMs: 150 }),
      rt.run(loop, '', { timeoutMs: 150 }),
      rt.run(await json('jsonEcho'), 7, { timeoutMs: 10_000 })
    ])
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled'])
    expect(rt.stats().workers).toBe(2)
    expect(rt.stats().busy).toBe(0)
  })
  test('resize grows and shrinks the pool; never below 1', async () => {
    rt.resize(3)
    expect(rt.stats().workers).toBe(3)
    rt.resize(0)
    expect(rt.stats().workers).toBe(1)
    rt.resize(2)
    expect(rt.stats().workers).toBe(2)
  })
  test('a worker that dies rejects its call with WorkerCrashedError and is replaced', async () => {
    let first = true
    const crashing: WorkerFactory = () => {
      if (!first) return nodeWorkerFactory()
      first = false
      const w = new Worker(
        "let n = 0; require('node:worker_threads').parentPort.on('message', (m) => { if (++n === 2) process.exit(7); else require('node:worker_threads').parentPort.postMessage({ id: m.id, type: 'RAW', value: 0 }) })",
        { eval: true }
      )
      let l: ((e: Error) => void) | undefined
      w.on('exit', (code) => l?.(new Error(`exit ${code}`)))
      return {
        endpoint: nodeEndpoint(w as unknown as NodeEndpoint),
        terminate: () => {
          l = undefined
          void w.terminate()
        },
        onCrash: (f) => {
          l = f
        }
      }
    }
    const crt = createAgentRuntime({ workers: 1, workerFactory: crashing })
    try {
      await crt.start()
      const pkg = await json('jsonEcho')
      await expect(crt.run(pkg, 1)).rejects.toBeInstanceOf(WorkerCrashedError)
      expect(crt.stats().workers).toBe(1)
      expect((await crt.run(pkg, 'after')).output).toBe('after')
    } finally {
      await crt.stop()
    }
  })
})
