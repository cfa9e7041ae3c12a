import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import type { Command } from 'commander'
import { checkManifest, type ZeroStateApi } from '../lib/index.ts'
import { loadIdentity, Tracer } from '../lib/core/index.ts'
import { createOrchestrator, donorService, MemoryTaskNetwork } from '../lib/orchestrator/index.ts'
import { agent as candidate, catalogOf, fnExecutor, peer } from '../lib/orchestrator/test-fixtures.ts'
import { taskTracing } from '../lib/app/task-tracing.ts'
import { MemoryRunLocks } from '../lib/app/services/run-locks.ts'
import { workflows } from '../lib/app/services/workflows.ts'
import * as Y from 'yjs'
import { cli, DEFAULT_APP } from './main.ts'
import { EXIT } from './errors.ts'
import { FileKeyStore } from './key-store.ts'
import { defaultProfileDir, type PeerOptions } from './peer.ts'
import { TraceJournal, UnknownTaskError } from './trace-journal.ts'
import { findC } from './toolchains.ts'

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

/** Run the command with captured output and no network unless an argument leads to one. */
async function zerostate(...argv: string[]) {
  return zerostateIn({}, ...argv)
}

/** The same, joining the mesh through `join` (an in-memory mesh) when a command joins. */
async function zerostateIn(opts: { join?: (o: PeerOptions) => Promise<ZeroStateApi> }, ...argv: string[]) {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d) => (out += d))
  stderr.on('data', (d) => (err += d))
  const { run } = cli({
    stdout,
    stderr,
    stdin: new PassThrough(),
    env: { HOME: '/nonexistent' },
    interrupted: () => new Promise(() => {}),
    ...(opts.join != null ? { join: opts.join } : {})
  })
  const code = await run(argv)
  return { code, out, err }
}

describe('zerostate (arguments)', () => {
  it('--help lists every command and exits 0', async () => {
    const r = await zerostate('--help')
    expect(r.code).toBe(EXIT.ok)
    for (const c of ['status', 'agents', 'submit', 'donate', 'run', 'publish']) expect(r.out).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'))
    const sub = await zerostate('submit', '--help')
    expect(sub.code).toBe(EXIT.ok)
    expect(sub.out).toContain('--input-file <path>')
  })

  it('usage errors exit 2 with what is wrong, before any network', async () => {
    const unknown = await zerostate('frobnicate')
    expect(unknown.code).toBe(EXIT.usage)
    expect(unknown.err).toMatch(/unknown command 'frobnicate'/)
    const missing = await zerostate('submit')
    expect(missing.code).toBe(EXIT.usage)
    expect(missing.err).toMatch(/missing required argument 'description'/)
    const both = await zerostate('submit', 'x', '--input', 'a', '--input-file', '/nope')
    expect(both.code).toBe(EXIT.usage)
    expect(both.err).toMatch(/--input or --input-file, not both/)
    const badNumber = await zerostate('--join-timeout', '0', 'status')
    expect(badNumber.code).toBe(EXIT.usage)
    expect(badNumber.err).toMatch(/a whole number above 0/)
    const noFile = await zerostate('run', '/no/such/flow.yaml')
    expect(noFile.code).toBe(EXIT.usage)
    expect(noFile.err).toMatch(/no such file/i)
    const noManifest = await zerostate('publish', 'a.wasm')
    expect(noManifest.code).toBe(EXIT.usage)
    expect(noManifest.err).toMatch(/--manifest <file>/)
  })

  it('a wrong --app is "unreachable" (exit 3), not a crash', async () => {
    const r = await zerostate('--app', 'not a url', 'status')
    expect(r.code).toBe(EXIT.unreachable)
    expect(r.err).toMatch(/is not a URL/)
  })

  it('a manifest that is not JSON is refused before joining', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zs-cli-'))
    dirs.push(dir)
    await writeFile(join(dir, 'a.wasm'), new Uint8Array([0, 97, 115, 109]))
    await writeFile(join(dir, 'm.json'), '{ not json')
    const r = await zerostate('--app', 'http://127.0.0.1:9/', 'publish', join(dir, 'a.wasm'), '--manifest', join(dir, 'm.json'))
    expect(r.code).toBe(EXIT.usage)
    expect(r.err).toMatch(/is not JSON/)
  })

  it('defaults: the app on 127.0.0.1:8080 and the profile in $ZEROSTATE_HOME or ~/.zerostate', () => {
    expect(DEFAULT_APP).toBe('http://127.0.0.1:8080/')
    expect(defaultProfileDir({ ZEROSTATE_HOME: '/srv/zs' })).toBe('/srv/zs')
    expect(defaultProfileDir({})).toMatch(/\.zerostate$/)
  })
})

describe('FileKeyStore', () => {
  it('keeps the key in a file only its owner can read, and reads it back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zs-key-'))
    dirs.push(dir)
    const store = new FileKeyStore(join(dir, 'profile'))
    expect(await store.load()).toBeUndefined()
    const key = new Uint8Array([1, 2, 3, 250])
    await store.save(key)
    expect(await store.load()).toEqual(key)
    expect((await stat(store.path)).mode & 0o777).toBe(0o600)
    expect(await new FileKeyStore(join(dir, 'profile')).load()).toEqual(key)
  })
})

describe('agent new', () => {
  it('refuses a bad name or an existing directory; writes the project files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zs-new-'))
    dirs.push(dir)
    const bad = await zerostate('agent', 'new', 'Bad Name', '--dir', dir)
    expect(bad.code).toBe(EXIT.usage)
    expect(bad.err).toMatch(/agent names are 2-40 characters/)
    const lang = await zerostate('agent', 'new', 'x-y', '--lang', 'cobol', '--dir', dir)
    expect(lang.code).toBe(EXIT.usage)
    expect(lang.err).toMatch(/Allowed choices are assemblyscript, rust, c/)
    for (const l of ['assemblyscript', 'rust', 'c']) {
      const r = await zerostate('agent', 'new', `a-${l}`, '--lang', l, '--dir', dir)
      expect(r.code).toBe(EXIT.ok)
      const manifest = JSON.parse(await readFile(join(dir, `a-${l}`, 'manifest.json'), 'utf8'))
      expect(manifest).toMatchObject({ name: `a-${l}`, abi: 'wasi-preview1' })
      expect(checkManifest(manifest)).toEqual([])
      // The schemas come from the project's schema.ts (valibot), written in as JSON Schema.
      expect(await readFile(join(dir, `a-${l}`, 'schema.ts'), 'utf8')).toMatch(/export const output = v\.object\(/)
      expect(manifest.input).toMatchObject({ type: 'string', maxLength: 1_000_000 })
      expect(manifest.output).toMatchObject({
        type: 'object',
        properties: { words: { type: 'integer', minimum: 0 }, characters: { type: 'integer', minimum: 0 } },
        required: ['words', 'characters']
      })
    }
    expect((await zerostate('agent', 'new', 'a-c', '--lang', 'c', '--dir', dir)).code).toBe(EXIT.usage)
    const noBuild = await zerostate('agent', 'test', '--dir', join(dir, 'a-c'))
    expect(noBuild.code).toBe(EXIT.usage)
    expect(noBuild.err).toMatch(/build\/agent\.wasm is missing: run `zerostate agent build` first/)
  })
})

describe('--help', () => {
  it('every command and sub-command answers --help on stdout with its usage, exit 0', async () => {
    const { program } = cli({
      stdout: new PassThrough(),
      stderr: new PassThrough(),
      stdin: new PassThrough(),
      env: {},
      interrupted: () => new Promise(() => {})
    })
    const paths: string[][] = []
    const walk = (c: Command, path: string[]): void => {
      for (const sub of c.commands) {
        paths.push([...path, sub.name()])
        walk(sub, [...path, sub.name()])
      }
    }
    walk(program, [])
    expect(paths.map((p) => p.join(' '))).toEqual(expect.arrayContaining(['trace', 'submit', 'agent new', 'agent build', 'agent test', 'agent publish']))
    for (const path of paths) {
      const r = await zerostate(...path, '--help')
      expect(r.code, path.join(' ')).toBe(EXIT.ok)
      expect(r.out, path.join(' ')).toMatch(new RegExp(`^Usage: zerostate ${path.join(' ')}\\b`))
    }
  })
})

/**
 * An in-memory mesh for the terminal's commands: each join is a new submitter peer (its own
 * orchestrator and tracer, as a `zerostate` process has) on one MemoryTaskNetwork with a donor
 * that signs its spans, as in the app (task-tracing.test.ts).
 */
async function memoryMesh() {
  const net = new MemoryTaskNetwork()
  const upper = candidate('upper', ['text-summarization'], 0.1)
  const broken = candidate('broken', ['hashing'], 0.1)
  const donor = net.transport('donor-peer')
  await donor.start()
  const fns = {
    [upper.id]: (i: unknown) => ({ summary: String(i).toUpperCase() }),
    [broken.id]: () => {
      throw new Error('this agent always fails')
    }
  }
  await donorService()({ transport: donor, executor: fnExecutor(fns), tracer: new Tracer({ peer: 'donor-peer', identity: await loadIdentity() }) }).start()
  const stops: Array<() => Promise<void>> = []
  let joins = 0
  const join = async (): Promise<ZeroStateApi> => {
    const id = `cli-peer-${++joins}`
    const tracer = new Tracer({ peer: id })
    const tracing = taskTracing(tracer)
    const catalog = catalogOf([upper, broken])
    const orch = createOrchestrator({ catalog, peers: { peers: () => [peer('donor-peer')] }, transport: net.transport(id), tracer })
    await orch.start()
    // Workflow runs as the app composes them (zerostate.ts): the run store over a journal doc, the real engine.
    const flows = workflows()({
      journalDoc: new Y.Doc(),
      saved: async () => {},
      catalog,
      orchestrator: orch,
      memory: { get: () => undefined, set: async () => {}, keys: () => [] },
      changes: { changed() {} },
      locks: new MemoryRunLocks()
    })
    stops.push(async () => {
      flows.stop()
      await orch.stop()
    })
    const api = {
      peerId: id,
      ready: Promise.resolve(),
      agents: { list: () => [upper, broken].map((a) => ({ id: a.id, manifest: { name: a.name, version: '0.1.0', capabilities: a.capabilities } })) },
      peers: () => [{ id: 'donor-peer', transport: 'webrtc', donating: true, freeWorkers: 2, capabilities: ['text-summarization', 'hashing'] }],
      subscribe: () => () => {},
      submit: (r: Parameters<ZeroStateApi['submit']>[0]) => tracing.track(orch.submit(r)),
      runWorkflow: (yaml: string, input?: unknown) => tracing.trackRun(flows.runWorkflow(yaml, input)),
      exportTrace: (taskId: string) => tracing.exportTrace(taskId),
      stop: async () => {}
    }
    return api as unknown as ZeroStateApi
  }
  return { join, net, stop: async () => Promise.all(stops.map((s) => s())) }
}

type Otlp = {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> }
    scopeSpans: Array<{ spans: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; status: { code: number } }> }>
  }>
}
const peerOf = (rs: Otlp['resourceSpans'][number]) => rs.resource.attributes.find((a) => a.key === 'service.instance.id')?.value.stringValue

describe('zerostate trace (in-memory mesh)', () => {
  it('a task submitted from the terminal is traced later, by a new process, as OTLP/JSON with the donor spans', async () => {
    const profile = await mkdtemp(join(tmpdir(), 'zs-trace-'))
    dirs.push(profile)
    const mesh = await memoryMesh()
    const sub = await zerostateIn({ join: mesh.join }, '--profile', profile, 'submit', 'Summarize this', '--input', 'hello mesh', '--json')
    expect(sub.code, sub.err).toBe(EXIT.ok)
    const result = JSON.parse(sub.out) as { id: string; output: unknown; steps: Array<{ peer: string }> }
    expect(result.output).toEqual({ summary: 'HELLO MESH' })
    expect(result.steps.map((st) => st.peer)).toEqual(['donor-peer'])
    expect(sub.err).toMatch(new RegExp(`trace kept: \\d+ span\\(s\\) from 2 peer\\(s\\); \`zerostate trace ${result.id}\``))

    // `trace` joins no mesh: what it prints comes from the profile.
    const noMesh = async (): Promise<ZeroStateApi> => {
      throw new Error('trace must not join the mesh')
    }
    const tr = await zerostateIn({ join: noMesh }, '--profile', profile, 'trace', result.id)
    expect(tr.code, tr.err).toBe(EXIT.ok)
    const otlp = JSON.parse(tr.out) as Otlp
    expect(otlp.resourceSpans.map(peerOf).sort()).toEqual(['cli-peer-1', 'donor-peer'])
    const spans = otlp.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))
    const root = spans.find((sp) => sp.parentSpanId == null)!
    expect(root.name).toBe('task.run')
    expect(new Set(spans.map((sp) => sp.traceId))).toEqual(new Set([root.traceId]))
    const donorSpans = otlp.resourceSpans.find((rs) => peerOf(rs) === 'donor-peer')!.scopeSpans.flatMap((ss) => ss.spans)
    expect(donorSpans.map((sp) => sp.name)).toContain('donor.step')
    // Every span hangs in the one tree under the run.
    const ids = new Set(spans.map((sp) => sp.spanId))
    expect(spans.filter((sp) => sp !== root).every((sp) => ids.has(sp.parentSpanId!))).toBe(true)
    expect(tr.err).toMatch(new RegExp(`task ${result.id} \\(succeeded, submitted .*\\): ${spans.length} span\\(s\\) from 2 peer\\(s\\)`))

    // Without an id: the kept traces, as text and as JSON.
    const list = await zerostateIn({ join: noMesh }, '--profile', profile, 'trace', '--json')
    expect(list.code).toBe(EXIT.ok)
    expect(JSON.parse(list.out)).toEqual([
      {
        taskId: result.id,
        description: 'Summarize this',
        submittedAt: expect.any(Number),
        kind: 'task',
        status: 'succeeded',
        spans: spans.length,
        peers: ['cli-peer-1', 'donor-peer']
      }
    ])
    expect((await zerostateIn({}, '--profile', profile, 'trace')).out).toMatch(new RegExp(`^${result.id}  \\d{4}-.*succeeded .*Summarize this$`, 'm'))
    await mesh.stop()
  })

  it('a failed task keeps its trace too (exit 1), its run span an error', async () => {
    const profile = await mkdtemp(join(tmpdir(), 'zs-trace-'))
    dirs.push(profile)
    const mesh = await memoryMesh()
    const sub = await zerostateIn({ join: mesh.join }, '--profile', profile, 'submit', 'Hash this', '--input', 'x', '--json', '--timeout', '20000')
    expect(sub.code, sub.err).toBe(EXIT.failed)
    const failed = JSON.parse(sub.out) as { id: string; status: string }
    expect(failed.status).toBe('failed')
    const tr = await zerostateIn({}, '--profile', profile, 'trace', failed.id)
    expect(tr.code, tr.err).toBe(EXIT.ok)
    const spans = (JSON.parse(tr.out) as Otlp).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))
    expect(spans.find((sp) => sp.name === 'task.run')?.status.code).toBe(2)
    expect(tr.err).toMatch(/\(failed, submitted/)
    await mesh.stop()
  })

  it('a workflow run from the terminal keeps its trace too: every step under the run, donor spans included, listed as a run', async () => {
    const profile = await mkdtemp(join(tmpdir(), 'zs-trace-'))
    dirs.push(profile)
    const flow = join(profile, 'two-steps.yaml')
    await writeFile(
      flow,
      [
        'name: shout-twice',
        'steps:',
        '  - { id: first, agent: upper }',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression, not a JS template
        '  - { id: second, agent: upper, input: "${steps.first.output.summary} again" }',
        ''
      ].join('\n')
    )
    const mesh = await memoryMesh()
    const runCmd = await zerostateIn(
      { join: mesh.join },
      '--profile',
      profile,
      'run',
      flow,
      '--input',
      'hello',
      '--json',
      '--trace',
      join(profile, 'copy.json')
    )
    expect(runCmd.code, runCmd.err).toBe(EXIT.ok)
    const result = JSON.parse(runCmd.out) as { id: string; output: unknown }
    expect(result.output).toEqual({ summary: 'HELLO AGAIN' })
    expect(runCmd.err).toMatch(new RegExp(`trace kept: \\d+ span\\(s\\) from 2 peer\\(s\\); \`zerostate trace ${result.id}\``))

    const tr = await zerostateIn({}, '--profile', profile, 'trace', result.id)
    expect(tr.code, tr.err).toBe(EXIT.ok)
    expect(tr.err).toMatch(new RegExp(`^run ${result.id} \\(succeeded, submitted `))
    const otlp = JSON.parse(tr.out) as Otlp
    // --trace FILE holds the same trace.
    expect(JSON.parse(await readFile(join(profile, 'copy.json'), 'utf8'))).toEqual(otlp)
    const spans = otlp.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))
    const roots = spans.filter((sp) => sp.parentSpanId == null)
    expect(roots.map((sp) => sp.name)).toEqual(['workflow.run'])
    expect(new Set(spans.map((sp) => sp.traceId))).toEqual(new Set([roots[0].traceId]))
    // Both workflow steps hang under the run (before, each step's plan started a 'run' of its own), each with the donor's step under it.
    const byId = new Map(spans.map((sp) => [sp.spanId, sp]))
    const steps = spans.filter((sp) => sp.name === 'step')
    expect(steps).toHaveLength(2)
    expect(steps.every((sp) => sp.parentSpanId === roots[0].spanId)).toBe(true)
    const underStep = (sp: (typeof spans)[number]): boolean => {
      for (let p = byId.get(sp.parentSpanId ?? ''); p != null; p = byId.get(p.parentSpanId ?? '')) if (p.name === 'step') return steps.includes(p)
      return false
    }
    const donorSteps = otlp.resourceSpans
      .filter((rs) => peerOf(rs) === 'donor-peer')
      .flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))
      .filter((sp) => sp.name === 'donor.step')
    expect(donorSteps).toHaveLength(2)
    expect(donorSteps.every(underStep)).toBe(true)
    expect(spans.filter((sp) => sp !== roots[0]).every((sp) => byId.has(sp.parentSpanId!))).toBe(true)

    const list = await zerostateIn({}, '--profile', profile, 'trace', '--json')
    expect(JSON.parse(list.out)).toEqual([
      {
        taskId: result.id,
        kind: 'workflow',
        description: 'shout-twice',
        submittedAt: expect.any(Number),
        status: 'succeeded',
        spans: spans.length,
        peers: ['cli-peer-1', 'donor-peer']
      }
    ])
    expect((await zerostateIn({}, '--profile', profile, 'trace')).out).toMatch(new RegExp(`^${result.id}  \\d{4}-\\S+  workflow succeeded .*shout-twice$`, 'm'))
    await mesh.stop()
  })

  it('a failed workflow run keeps its trace (exit 1), the run span an error', async () => {
    const profile = await mkdtemp(join(tmpdir(), 'zs-trace-'))
    dirs.push(profile)
    const flow = join(profile, 'fails.yaml')
    await writeFile(flow, ['name: always-fails', 'steps:', '  - { id: only, agent: broken }', ''].join('\n'))
    const mesh = await memoryMesh()
    const runCmd = await zerostateIn({ join: mesh.join }, '--profile', profile, 'run', flow, '--input', 'x', '--json', '--timeout', '20000')
    expect(runCmd.code, runCmd.err).toBe(EXIT.failed)
    const failed = JSON.parse(runCmd.out) as { id: string; status: string }
    expect(failed.status).toBe('failed')
    const tr = await zerostateIn({}, '--profile', profile, 'trace', failed.id)
    expect(tr.code, tr.err).toBe(EXIT.ok)
    const spans = (JSON.parse(tr.out) as Otlp).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))
    expect(spans.find((sp) => sp.name === 'workflow.run')?.status.code).toBe(2)
    expect(spans.some((sp) => sp.name === 'step')).toBe(true)
    expect(tr.err).toMatch(new RegExp(`^run ${failed.id} \\(failed, submitted`))
    await mesh.stop()
  })

  it('an unknown task id exits 5 saying where traces are kept; a malformed one is a usage error; a damaged file says so', async () => {
    const profile = await mkdtemp(join(tmpdir(), 'zs-trace-'))
    dirs.push(profile)
    const unknown = await zerostate('--profile', profile, 'trace', 't-0123456789abcdef01234567')
    expect(unknown.code).toBe(EXIT.notFound)
    expect(unknown.out).toBe('')
    expect(unknown.err).toContain(`zerostate: no trace of task t-0123456789abcdef01234567 is kept in ${join(profile, 'traces')}`)
    expect(unknown.err).toMatch(/`zerostate trace` lists them/)
    const bad = await zerostate('--profile', profile, 'trace', '../identity.key')
    expect(bad.code).toBe(EXIT.usage)
    expect(bad.err).toMatch(/"..\/identity.key" is not a task id/)
    await writeFile(join(profile, 'traces', 't-damaged0000.json'), '{"taskId": "t-damaged0000"').catch(async () => {
      const { mkdir } = await import('node:fs/promises')
      await mkdir(join(profile, 'traces'))
      await writeFile(join(profile, 'traces', 't-damaged0000.json'), '{"taskId": "t-damaged0000"')
    })
    const damaged = await zerostate('--profile', profile, 'trace', 't-damaged0000')
    expect(damaged.code).toBe(EXIT.failed)
    expect(damaged.err).toMatch(/the kept trace of t-damaged0000 is damaged \(not JSON\): delete /)
    // A damaged file is not listed and does not break the list.
    expect((await zerostate('--profile', profile, 'trace', '--json')).out.trim()).toBe('[]')
  })
})

describe('TraceJournal', () => {
  const otlp = (peerId: string) => ({
    resourceSpans: [{ resource: { attributes: [{ key: 'service.instance.id', value: { stringValue: peerId } }] }, scopeSpans: [{ spans: [{}, {}] }] }]
  })

  it('keeps the latest `max` traces, newest first; the oldest are dropped', async () => {
    const profile = await mkdtemp(join(tmpdir(), 'zs-journal-'))
    dirs.push(profile)
    const journal = new TraceJournal(profile, { max: 3 })
    const ids = [1, 2, 3, 4, 5].map((n) => `t-task0000${n}`)
    for (const [n, taskId] of ids.entries()) {
      const info = await journal.save({ taskId, description: `task ${n}`, submittedAt: 1000 + n, status: 'succeeded', otlp: otlp(`p${n}`) })
      expect(info).toMatchObject({ spans: 2, peers: [`p${n}`] })
    }
    expect((await journal.list()).map((t) => t.taskId)).toEqual(ids.slice(2).reverse())
    await expect(journal.read(ids[0])).rejects.toBeInstanceOf(UnknownTaskError)
    expect((await journal.read(ids[4])).otlp).toEqual(otlp('p4'))
    // Saving a task again replaces its trace rather than adding one.
    await journal.save({ taskId: ids[2], description: 'again', submittedAt: 2000, status: 'failed', otlp: otlp('q') })
    expect((await journal.list()).map((t) => [t.taskId, t.status])).toEqual([
      [ids[2], 'failed'],
      [ids[4], 'succeeded'],
      [ids[3], 'succeeded']
    ])
    expect((await stat(join(profile, 'traces', `${ids[4]}.json`))).mode & 0o777).toBe(0o600)
  })

  it('refuses what is not a trace or not a task id, keeping nothing', async () => {
    const profile = await mkdtemp(join(tmpdir(), 'zs-journal-'))
    dirs.push(profile)
    const journal = new TraceJournal(profile)
    await expect(journal.save({ taskId: '../../etc/passwd', description: '', submittedAt: 0, status: 'succeeded', otlp: otlp('p') })).rejects.toThrow(
      /was not kept/
    )
    await expect(
      journal.save({ taskId: 't-task00001', description: '', submittedAt: 0, status: 'succeeded', otlp: { spans: [] } as unknown as ReturnType<typeof otlp> })
    ).rejects.toThrow(/was not kept/)
    expect(await journal.list()).toEqual([])
  })
})

describe('agent new / build --json', () => {
  it('new --json names the project; build --json names the module and the schemas written; a broken schema.ts fails the build (exit 1)', async (ctx) => {
    const c = findC()
    if (!c.ok) ctx.skip(`C toolchain missing: ${c.why}`)
    const dir = await mkdtemp(join(tmpdir(), 'zs-build-'))
    dirs.push(dir)
    const made = await zerostate('agent', 'new', 'c-json', '--lang', 'c', '--dir', dir, '--json')
    expect(made.code, made.err).toBe(EXIT.ok)
    expect(JSON.parse(made.out)).toEqual({ root: join(dir, 'c-json'), lang: 'c' })
    const root = join(dir, 'c-json')
    const built = await zerostate('agent', 'build', '--dir', root, '--json')
    expect(built.code, built.err).toBe(EXIT.ok)
    const info = JSON.parse(built.out)
    expect(info).toEqual({ wasm: join(root, 'build', 'agent.wasm'), bytes: (await stat(info.wasm)).size, lang: 'c', schemas: ['input', 'output'] })
    expect(info.bytes).toBeGreaterThan(1000)
    await writeFile(join(root, 'schema.ts'), "import * as v from 'valibot'\nexport const output = v.pipe(v.string(), v.transform((s) => s.length))\n")
    await rm(join(root, 'build'), { recursive: true })
    const broken = await zerostate('agent', 'build', '--dir', root)
    expect(broken.code).toBe(EXIT.failed)
    expect(broken.err).toMatch(/zerostate: schema\.ts: the output schema cannot be written as JSON Schema/)
    expect(broken.out).toBe('')
    await expect(stat(join(root, 'build', 'agent.wasm'))).rejects.toThrow(/ENOENT/)
  })
})
