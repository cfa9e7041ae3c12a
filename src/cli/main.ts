/**
 * `zerostate`: a Node peer of the mesh from a terminal (API.md "From a terminal").
 * Progress goes to stderr (a spinner on a terminal, plain lines otherwise), results to
 * stdout (`--json` for scripts); the exit code says how it ended (errors.ts EXIT).
 */
import { readFile, stat, writeFile } from 'node:fs/promises'
import { createInterface } from 'node:readline/promises'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import ora, { type Ora } from 'ora'
import type { PeerInfo, TaskRequest, ZeroStateApi } from '../lib/index.ts'
import { CliError, CliTimeoutError, EXIT } from './errors.ts'
import { type AgentLang, buildAgent, LANGS, newAgent, readProject, testAgent } from './agent-sdk.ts'
import { defaultProfileDir, joinMesh, type PeerOptions, until, within } from './peer.ts'
import { type KeptTrace, MAX_TRACES, TraceJournal } from './trace-journal.ts'

export const DEFAULT_APP = 'http://127.0.0.1:8080/'
/** `publish` hands its record over once this peer's direct links have been still this long. */
const LINKS_SETTLE_MS = 1500

/** Where a command writes: injectable for tests. */
export interface Io {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream & { isTTY?: boolean }
  stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  /** Resolves when the user asks to stop (Ctrl-C, SIGTERM). */
  interrupted: () => Promise<void>
  env: NodeJS.ProcessEnv
  /** How a command joins the mesh. Default `joinMesh` (the app's relays); tests pass an in-memory mesh. */
  join?: (opts: PeerOptions) => Promise<ZeroStateApi>
}

interface Globals {
  app: string
  profile: string
  joinTimeout: number
}

const positiveInt = (v: string): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('a whole number above 0')
  return n
}

/** Build the program; `run(argv)` parses and runs one command, resolving with its exit code. */
export function cli(io: Io): { program: Command; run(argv: string[]): Promise<number> } {
  let code: number = EXIT.ok
  const open: ZeroStateApi[] = []
  const program = new Command('zerostate')
    .description('A terminal peer of a ZeroState mesh: donate compute, submit tasks, run workflows, publish agents.')
    .addOption(new Option('--app <url>', 'the app whose mesh to join (its relays and bundled agents)').env('ZEROSTATE_APP').default(DEFAULT_APP))
    .addOption(new Option('--profile <dir>', "this machine's profile directory (its signing key)").env('ZEROSTATE_HOME').default(defaultProfileDir(io.env)))
    .addOption(new Option('--join-timeout <ms>', 'how long joining the mesh may take').argParser(positiveInt).default(20_000))
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride()
    .showHelpAfterError()

  const spinner = (json: boolean): Ora => ora({ stream: io.stderr as NodeJS.WriteStream, isEnabled: io.stderr.isTTY === true && !json, discardStdin: false })
  const join = async (cmd: Command, s: Ora): Promise<ZeroStateApi> => {
    const g = cmd.optsWithGlobals<Globals>()
    s.start(`joining the mesh of ${g.app}`)
    const zs = await (io.join ?? joinMesh)({ app: g.app, profile: g.profile, joinTimeoutMs: g.joinTimeout })
    open.push(zs)
    return zs
  }
  const out = (line: string): void => {
    io.stdout.write(`${line}\n`)
  }
  const readInput = async (o: { input?: string; inputFile?: string }): Promise<unknown> => {
    if (o.input != null && o.inputFile != null) throw new CliError('give --input or --input-file, not both')
    if (o.inputFile == null) return o.input
    return readFile(o.inputFile, 'utf8').catch((err: Error) => {
      throw new CliError(`--input-file: ${err.message}`)
    })
  }
  const text = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v, null, 2))
  const short = (id: string): string => id.slice(-8)
  const offers = (p: PeerInfo, agent: { capabilities: string[] } | undefined): boolean =>
    p.donating && p.freeWorkers > 0 && (agent == null || agent.capabilities.some((c) => p.capabilities.includes(c)))
  /**
   * Keep a task's or a run's trace in the profile (for `zerostate trace`) and write it to --trace FILE;
   * a failure to keep it is said on stderr, never fatal (a failure to write FILE makes the exit 1).
   */
  const keepTraceOf = async (cmd: Command, zs: ZeroStateApi, s: Ora, entry: Omit<KeptTrace, 'spans' | 'peers' | 'otlp'>, file: unknown): Promise<void> => {
    const what = entry.kind === 'workflow' ? 'run' : 'task'
    s.start(`${what} ${entry.taskId}: keeping its trace`)
    let otlp: unknown
    try {
      otlp = await zs.exportTrace(entry.taskId)
      const kept = await new TraceJournal(cmd.optsWithGlobals<Globals>().profile).save({ ...entry, otlp })
      s.stop()
      io.stderr.write(`trace kept: ${kept.spans} span(s) from ${kept.peers.length} peer(s); \`zerostate trace ${entry.taskId}\` prints it\n`)
    } catch (err) {
      s.stop()
      // The journal's own refusals already say whose trace was not kept.
      const message = (err as Error).message
      io.stderr.write(`${message.startsWith('the trace of') ? message : `the trace of ${what} ${entry.taskId} was not kept: ${message}`}\n`)
    }
    if (file != null && otlp !== undefined)
      await writeFile(String(file), JSON.stringify(otlp, null, 2)).catch((err: Error) => {
        io.stderr.write(`--trace ${String(file)}: ${err.message}\n`)
        code = EXIT.failed
      })
  }

  program
    .command('status')
    .description('join, then print this peer, the relays and the peers it reached')
    .option('--json', 'print JSON on stdout')
    .option('--settle <ms>', 'wait until the peer list has not changed for this long', positiveInt, 1500)
    .action(async (o: { json?: boolean; settle: number }, cmd: Command) => {
      const s = spinner(o.json === true)
      const zs = await join(cmd, s)
      s.text = 'listening for peers'
      // Peers arrive over a second or two: report once the list has been still for --settle ms.
      const shape = (): string => JSON.stringify(zs.peers().map((p) => [p.id, p.transport, p.donating, p.freeWorkers]))
      await new Promise<void>((resolve) => {
        let last = shape()
        let timer = setTimeout(done, o.settle)
        const off = zs.subscribe(() => {
          const now = shape()
          if (now === last) return
          last = now
          clearTimeout(timer)
          timer = setTimeout(done, o.settle)
        })
        function done(): void {
          off()
          resolve()
        }
      })
      s.stop()
      const status = { peerId: zs.peerId, publicKey: zs.publicKey, relay: zs.relayStatus(), donation: zs.donation(), peers: zs.peers() }
      if (o.json) return out(JSON.stringify(status, null, 2))
      out(`peer     ${status.peerId}`)
      out(`key      ${status.publicKey}`)
      out(`relay    ${status.relay.state} (${status.relay.connected.length} of ${status.relay.relays.length} connected)`)
      out(`peers    ${status.peers.length}`)
      for (const p of status.peers)
        out(`  ${short(p.id)}  ${p.transport.padEnd(10)} ${p.donating ? `donating (${p.freeWorkers} free)` : 'not donating'}  ${p.capabilities.join(', ')}`)
    })

  program
    .command('agents')
    .description("list the mesh registry's agents")
    .argument('[text]', 'only agents whose name or description contains this')
    .option('--capability <name>', 'only agents with this capability')
    .option('--json', 'print JSON on stdout')
    .action(async (textFilter: string | undefined, o: { capability?: string; json?: boolean }, cmd: Command) => {
      const s = spinner(o.json === true)
      const zs = await join(cmd, s)
      s.text = 'reading the registry'
      await until(
        zs,
        () => zs.agents.list().length > 0,
        10_000,
        () => new CliTimeoutError('the registry stayed empty for 10 s')
      )
      s.stop()
      const list = zs.agents.list({ ...(o.capability != null ? { capability: o.capability } : {}), ...(textFilter != null ? { text: textFilter } : {}) })
      if (o.json) return out(JSON.stringify(list, null, 2))
      for (const a of list)
        out(`${a.manifest.name.padEnd(20)} ${a.manifest.version.padEnd(8)} ${a.manifest.capabilities.join(', ').padEnd(28)} ${a.id.slice(0, 12)}`)
      if (list.length === 0) io.stderr.write('no agent matches\n')
    })

  program
    .command('submit')
    .description('submit a task to the mesh and print its result')
    .argument('<description>', 'what to do (planned into steps unless --agent names one)')
    .option('--input <text>', 'the input')
    .option('--input-file <path>', 'read the input from a file')
    .option('--agent <name|id>', 'run this agent instead of planning')
    .option('--strategy <name>', 'routing strategy (balanced, cost, speed, ...)')
    .option('--verification <mode>', 'none, spot-check, replicate or quorum')
    .option('--max-cost <credits>', 'the most this task may spend', Number)
    .option('--wait-donor <ms>', 'how long to wait for a donor to appear before running here', positiveInt, 10_000)
    .option('--timeout <ms>', 'how long the task may take', positiveInt, 120_000)
    .option('--trace <file>', 'write the run as an OTLP/JSON trace to this file')
    .option('--json', 'print the TaskResult as JSON on stdout')
    .action(async (description: string, o: Record<string, string | number | boolean | undefined>, cmd: Command) => {
      const json = o.json === true
      const input = await readInput(o as { input?: string; inputFile?: string })
      const s = spinner(json)
      const zs = await join(cmd, s)
      s.text = 'waiting for the registry'
      await until(
        zs,
        () => zs.agents.list().length > 0,
        10_000,
        () => new CliTimeoutError('the registry stayed empty for 10 s')
      )
      const named = o.agent == null ? undefined : zs.agents.list().find((a) => a.id === o.agent || a.manifest.name === o.agent)?.manifest
      if (o.agent != null && named == null)
        throw new CliError(`no agent named ${JSON.stringify(o.agent)} is in the registry (see \`zerostate agents\`)`, EXIT.failed)
      s.text = 'waiting for a donor'
      const donor = await until(
        zs,
        () => zs.peers().some((p) => offers(p, named)),
        Number(o.waitDonor),
        () => new Error('none')
      ).then(
        () => true,
        () => false
      )
      if (!donor) s.info(`no donor offered ${named?.name ?? 'this'} within ${o.waitDonor} ms: it may run on this machine`).start()
      const preferences: Record<string, unknown> = {}
      if (o.strategy != null) preferences.strategy = o.strategy
      if (o.verification != null) preferences.verification = o.verification
      if (o.maxCost != null) preferences.max_cost = o.maxCost
      const request: TaskRequest = {
        description,
        ...(input !== undefined ? { input } : {}),
        ...(o.agent != null ? { agent: String(o.agent) } : {}),
        ...(Object.keys(preferences).length > 0 ? { preferences: preferences as TaskRequest['preferences'] } : {})
      }
      const t0 = performance.now()
      const submittedAt = Date.now()
      const handle = zs.submit(request)
      const keepTrace = (status: 'succeeded' | 'failed'): Promise<void> =>
        keepTraceOf(cmd, zs, s, { taskId: handle.id, kind: 'task', description, submittedAt, status }, o.trace)
      s.text = `task ${handle.id}: planning`
      handle.on('progress', (e) => {
        s.text = `task ${handle.id}: ${e.phase} (${e.stepsDone}/${e.steps} steps)`
      })
      handle.on('step', (e) => {
        s.text = `task ${handle.id}: step ${e.stepId} ${e.status}${e.peer ? ` on ${short(e.peer)}` : ''}`
      })
      try {
        const result = await within(handle.done, Number(o.timeout), () => new CliTimeoutError(`task ${handle.id} took longer than ${o.timeout} ms`))
        const where = [...new Set(result.steps.map((st) => (st.peer === zs.peerId ? 'here' : short(st.peer))))].join(', ')
        s.succeed(`task ${result.id} succeeded in ${Math.round(performance.now() - t0)} ms (${result.steps.length} step(s) on ${where}, cost ${result.cost})`)
        out(json ? JSON.stringify(result, null, 2) : text(result.output))
      } catch (err) {
        handle.cancel()
        if (err instanceof CliError) {
          await keepTrace('failed')
          throw err
        }
        const e = err as Error
        s.fail(`task ${handle.id} failed: ${e.name}: ${e.message}`)
        if (json) out(JSON.stringify({ id: handle.id, status: 'failed', error: { name: e.name, message: e.message } }, null, 2))
        code = EXIT.failed
        await keepTrace('failed')
        return
      }
      await keepTrace('succeeded')
    })

  program
    .command('donate')
    .description('run agents for the mesh until stopped (Ctrl-C)')
    .option('--workers <n>', 'how many agents may run at once', positiveInt, 1)
    .option('--json', 'when stopped, print what was served as JSON on stdout')
    .action(async (o: { workers: number; json?: boolean }, cmd: Command) => {
      const s = spinner(false)
      const zs = await join(cmd, s)
      await zs.donate({ enabled: true, workers: o.workers })
      s.succeed(`donating ${zs.donation().workers} worker(s) as ${zs.peerId} (Ctrl-C to stop)`)
      let served = 0
      const off = zs.subscribe(() => {
        const d = zs.donation()
        if (d.served !== served) {
          served = d.served
          io.stderr.write(`served ${served} step(s) for the mesh (${d.busy} running)\n`)
        }
      })
      await io.interrupted()
      off()
      await zs.donate({ enabled: false })
      io.stderr.write(`stopped donating after ${served} step(s)\n`)
      if (o.json) out(JSON.stringify({ peerId: zs.peerId, served }, null, 2))
    })

  program
    .command('run')
    .description('run a workflow (WORKFLOWS.md); approvals are asked on the terminal')
    .argument('<workflow>', 'the workflow document (YAML)')
    .option('--input <text>', 'the input')
    .option('--input-file <path>', 'read the input from a file')
    .option('--approve', 'approve every approval without asking')
    .option('--reject', 'reject every approval without asking')
    .option('--timeout <ms>', 'how long the run may take', positiveInt, 600_000)
    .option('--trace <file>', 'write the run as an OTLP/JSON trace to this file')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (file: string, o: Record<string, string | number | boolean | undefined>, cmd: Command) => {
      if (o.approve === true && o.reject === true) throw new CliError('give --approve or --reject, not both')
      const json = o.json === true
      const yaml = await readFile(file, 'utf8').catch((err: Error) => {
        throw new CliError(`${file}: ${err.message}`)
      })
      const input = await readInput(o as { input?: string; inputFile?: string })
      const s = spinner(json)
      const zs = await join(cmd, s)
      await until(
        zs,
        () => zs.agents.list().length > 0,
        10_000,
        () => new CliTimeoutError('the registry stayed empty for 10 s')
      )
      const submittedAt = Date.now()
      const handle = zs.runWorkflow(yaml, input)
      // The run's name (its document's `name:`) describes it in `zerostate trace`'s list, else the file.
      const description = /^name:\s*["']?([^"'#\n]+?)["']?\s*(#.*)?$/m.exec(yaml)?.[1]?.trim() ?? file
      const keepTrace = (status: 'succeeded' | 'failed'): Promise<void> =>
        keepTraceOf(cmd, zs, s, { taskId: handle.id, kind: 'workflow', description: description.slice(0, 200), submittedAt, status }, o.trace)
      s.text = `run ${handle.id}: starting`
      handle.on('progress', (e) => {
        s.text = `run ${handle.id}: ${e.phase} (${e.stepsDone}/${e.steps} steps)`
      })
      // Answers are read line by line as they come: an answer piped ahead of its question is kept.
      let lines: ReturnType<typeof createInterface> | undefined
      let answers: AsyncIterator<string> | undefined
      const ask = async (question: string): Promise<string> => {
        io.stderr.write(question)
        if (answers == null) {
          lines = createInterface({ input: io.stdin, terminal: false })
          answers = lines[Symbol.asyncIterator]()
        }
        const next = await answers.next()
        return next.done === true ? '' : next.value
      }
      handle.on('approval', (e) => {
        void (async () => {
          s.stop()
          io.stderr.write(`approval ${e.stepId}: ${e.prompt}\n`)
          if (e.show !== undefined) io.stderr.write(`${text(e.show)}\n`)
          const approved = o.approve === true || (o.reject !== true && /^y(es)?$/i.test((await ask('approve? [y/N] ')).trim()))
          io.stderr.write(`${approved ? 'approved' : 'rejected'} ${e.stepId}\n`)
          await handle.approve(e.stepId, { approved })
          s.start(`run ${handle.id}: running`)
        })().catch((err: Error) => io.stderr.write(`the approval could not be recorded: ${err.message}\n`))
      })
      try {
        const result = await within(handle.done, Number(o.timeout), () => new CliTimeoutError(`run ${handle.id} took longer than ${o.timeout} ms`))
        s.succeed(`run ${result.id} succeeded (${result.steps.length} unit(s), cost ${result.cost})`)
        out(json ? JSON.stringify(result, null, 2) : text(result.output))
        await keepTrace('succeeded')
      } catch (err) {
        if (err instanceof CliError) {
          handle.cancel()
          await keepTrace('failed')
          throw err
        }
        const e = err as Error & { errors?: Array<{ line?: number; column?: number; message: string }> }
        s.fail(`run ${handle.id} failed: ${e.name}: ${e.message}`)
        for (const x of e.errors ?? []) io.stderr.write(`  ${file}:${x.line ?? '?'}:${x.column ?? '?'} ${x.message}\n`)
        if (json) out(JSON.stringify({ id: handle.id, status: 'failed', error: { name: e.name, message: e.message } }, null, 2))
        code = EXIT.failed
        await keepTrace('failed')
      } finally {
        lines?.close()
      }
    })

  program
    .command('trace')
    .description(
      "print the OTLP/JSON trace of a task or workflow run started from this profile (every peer's spans, for Jaeger or any OTLP tool); without TASK_ID, list the traces kept"
    )
    .argument('[taskId]', 'the task or run (its id, as `submit` or `run` printed it)')
    .option('--json', 'list the kept traces as JSON (a trace is printed as JSON anyway)')
    .addHelpText(
      'after',
      `\nThe traces of the latest ${MAX_TRACES} tasks and workflow runs started from this profile are kept in PROFILE/traces\n(a run's trace holds every step of it). Exit 5 when no trace of TASK_ID is kept here.`
    )
    .action(async (taskId: string | undefined, o: { json?: boolean }, cmd: Command) => {
      const journal = new TraceJournal(cmd.optsWithGlobals<Globals>().profile)
      if (taskId == null) {
        const kept = await journal.list()
        if (o.json) return out(JSON.stringify(kept, null, 2))
        for (const t of kept)
          out(
            `${t.taskId}  ${new Date(t.submittedAt).toISOString()}  ${(t.kind ?? 'task').padEnd(8)} ${t.status.padEnd(9)} ${String(t.spans).padStart(4)} span(s)  ${t.description.slice(0, 60)}`
          )
        if (kept.length === 0) io.stderr.write(`no trace is kept in ${journal.dir}: \`zerostate submit\` and \`zerostate run\` keep one each\n`)
        return
      }
      const kept = await journal.read(taskId)
      io.stderr.write(
        `${kept.kind === 'workflow' ? 'run' : 'task'} ${kept.taskId} (${kept.status}, submitted ${new Date(kept.submittedAt).toISOString()}): ${kept.spans} span(s) from ${kept.peers.length} peer(s)\n`
      )
      out(JSON.stringify(kept.otlp, null, 2))
    })

  const agent = program.command('agent').description('write, build, test and publish an agent (the agent SDK)')
  agent
    .command('new')
    .description('write a buildable agent project: manifest, schema.ts, examples, sources, README')
    .argument('<name>', 'the agent name (a-z, 0-9, -)')
    .addOption(new Option('--lang <lang>', 'its language').choices([...LANGS]).default('assemblyscript'))
    .option('--dir <dir>', 'where to create it', '.')
    .option('--json', 'print { root, lang } as JSON on stdout')
    .action(async (name: string, o: { lang: AgentLang; dir: string; json?: boolean }) => {
      const root = await newAgent(o.dir, name, o.lang)
      io.stderr.write(`wrote ${o.lang} agent ${name}: cd ${root} && npx zerostate agent build && npx zerostate agent test\n`)
      out(o.json ? JSON.stringify({ root, lang: o.lang }, null, 2) : root)
    })
  agent
    .command('build')
    .description('write schema.ts into manifest.json as JSON Schema, then compile the agent in this directory (or --dir) to build/agent.wasm')
    .option('--dir <dir>', 'the agent project', '.')
    .option('--no-optimize', 'skip optimization (a quicker build while iterating)')
    .option('--json', 'print { wasm, bytes, lang, schemas } as JSON on stdout')
    .action(async (o: { dir: string; optimize: boolean; json?: boolean }) => {
      const s = spinner(o.json === true).start(o.optimize ? 'compiling (optimized)' : 'compiling (not optimized)')
      let built: Awaited<ReturnType<typeof buildAgent>>
      try {
        built = await buildAgent(o.dir, { optimize: o.optimize })
      } catch (err) {
        s.stop()
        throw err
      }
      const bytes = (await stat(built.wasm)).size
      const schemas = Object.keys(built.schemas ?? {})
      s.succeed(
        `built ${built.wasm} (${bytes} bytes)${schemas.length > 0 ? `; ${schemas.join(' and ')} schema written into manifest.json from schema.ts` : ''}`
      )
      out(o.json ? JSON.stringify({ wasm: built.wasm, bytes, lang: built.lang, schemas }, null, 2) : built.wasm)
    })
  agent
    .command('test')
    .description("run the agent against examples.json in the mesh's sandbox")
    .option('--dir <dir>', 'the agent project', '.')
    .option('--json', 'print the results as JSON on stdout')
    .action(async (o: { dir: string; json?: boolean }, cmd: Command) => {
      const results = await testAgent(o.dir, cmd.optsWithGlobals<Globals>().profile)
      if (o.json) out(JSON.stringify(results, null, 2))
      else
        for (const r of results)
          out(
            `${r.ok ? 'ok  ' : 'FAIL'} ${JSON.stringify(r.input).slice(0, 60)} → ${r.error ?? JSON.stringify(r.output)}${r.ok ? '' : ` (expected ${JSON.stringify(r.expected)})`}`
          )
      const failed = results.filter((r) => !r.ok).length
      io.stderr.write(`${results.length - failed} of ${results.length} examples pass\n`)
      if (failed > 0 || results.length === 0) code = EXIT.failed
    })
  agent
    .command('publish')
    .description("sign the built agent with this machine's key and publish it to the mesh")
    .option('--dir <dir>', 'the agent project', '.')
    .option('--wait-peer <ms>', 'how long to wait for a peer to hand the record to', positiveInt, 15_000)
    .option('--hold', 'keep running (until Ctrl-C) to serve the module to peers that fetch it')
    .option('--json', 'print the registry entry as JSON on stdout')
    .action(async (o: { dir: string; waitPeer: number; hold?: boolean; json?: boolean }, cmd: Command) => {
      const { manifest, wasm } = await readProject(o.dir)
      await publishBundle(cmd, { manifest, wasm }, o)
    })

  /** Resolve once this peer's direct links have not changed for `quietMs`, or after `maxMs`. */
  function linksSettled(zs: ZeroStateApi, quietMs: number, maxMs: number): Promise<void> {
    const key = (): string =>
      zs
        .peers()
        .filter((p) => p.transport === 'webrtc')
        .map((p) => p.id)
        .sort()
        .join()
    const { promise, resolve } = Promise.withResolvers<void>()
    let last = key()
    let quiet = setTimeout(resolve, quietMs)
    const off = zs.subscribe(() => {
      const now = key()
      if (now === last) return
      last = now
      clearTimeout(quiet)
      quiet = setTimeout(resolve, quietMs)
    })
    const cap = setTimeout(resolve, maxMs)
    return promise.finally(() => {
      off()
      clearTimeout(quiet)
      clearTimeout(cap)
    })
  }

  /** Publish a module with its manifest: join, wait for a peer, publish, wait until a peer took the record. */
  async function publishBundle(
    cmd: Command,
    bundle: { manifest: unknown; wasm: Uint8Array },
    o: { waitPeer: number; hold?: boolean; json?: boolean }
  ): Promise<void> {
    const s = spinner(o.json === true)
    const zs = await join(cmd, s)
    // The registry lives in the peers: the record must reach one before this process ends.
    s.text = 'waiting for a peer to publish to'
    await until(
      zs,
      () => zs.peers().some((p) => p.transport !== 'websockets'),
      o.waitPeer,
      () => new CliTimeoutError(`no peer to publish to within ${o.waitPeer} ms`)
    )
    // A change a peer receives is not sent on to its own peers (they get it at their next
    // anti-entropy round with it, which backs off to minutes on an idle doc), so hand the record
    // to every peer that links to us now, not only the first: wait until the direct links have
    // not changed for a moment (at most waitPeer).
    s.text = 'linking the peers of the mesh'
    await linksSettled(zs, LINKS_SETTLE_MS, o.waitPeer)
    s.text = 'publishing'
    const entry = await zs.agents.publish({ manifest: bundle.manifest as Parameters<ZeroStateApi['agents']['publish']>[0]['manifest'], wasm: bundle.wasm })
    s.text = 'handing the record to the mesh'
    await zs.delivered(AbortSignal.timeout(o.waitPeer)).catch(() => {
      throw new CliTimeoutError(`${entry.manifest.name} is signed and kept here, but no peer took the record within ${o.waitPeer} ms: publish again`)
    })
    s.succeed(`published ${entry.manifest.name} ${entry.manifest.version} as ${entry.id}`)
    out(o.json === true ? JSON.stringify(entry, null, 2) : entry.id)
    if (o.hold !== true) {
      io.stderr.write('the module is served by this process while it runs and by the peers that fetched it; --hold keeps serving it\n')
      return
    }
    io.stderr.write(`holding ${entry.manifest.name} for the mesh as ${zs.peerId} (Ctrl-C to stop)\n`)
    await io.interrupted()
  }

  program
    .command('publish')
    .description("sign an agent with this machine's key and publish it to the mesh registry")
    .argument('<wasm>', 'the agent module (.wasm)')
    .requiredOption('--manifest <file>', 'its manifest (JSON)')
    .option('--wait-peer <ms>', 'how long to wait for a peer to hand the record to', positiveInt, 15_000)
    .option('--hold', 'keep running (until Ctrl-C) to serve the module to peers that fetch it')
    .option('--json', 'print the registry entry as JSON on stdout')
    .action(async (wasmFile: string, o: { manifest: string; waitPeer: number; hold?: boolean; json?: boolean }, cmd: Command) => {
      const [wasm, manifestText] = await Promise.all([
        readFile(wasmFile).catch((err: Error) => {
          throw new CliError(`${wasmFile}: ${err.message}`)
        }),
        readFile(o.manifest, 'utf8').catch((err: Error) => {
          throw new CliError(`--manifest ${o.manifest}: ${err.message}`)
        })
      ])
      let manifest: unknown
      try {
        manifest = JSON.parse(manifestText)
      } catch (err) {
        throw new CliError(`--manifest ${o.manifest} is not JSON: ${(err as Error).message}`)
      }
      await publishBundle(cmd, { manifest, wasm: new Uint8Array(wasm) }, o)
    })

  return {
    program,
    async run(argv: string[]): Promise<number> {
      code = EXIT.ok
      try {
        await program.parseAsync(argv, { from: 'user' })
      } catch (err) {
        if (err instanceof CommanderError) {
          code = err.exitCode === 0 ? EXIT.ok : EXIT.usage
        } else if (err instanceof CliError) {
          io.stderr.write(`zerostate: ${err.message}\n`)
          code = err.exitCode
        } else {
          const e = err as Error
          io.stderr.write(`zerostate: ${e.name}: ${e.message}\n`)
          code = EXIT.failed
        }
      } finally {
        for (const zs of open.splice(0)) await within(zs.stop(), 5000).catch(() => {})
      }
      return code
    }
  }
}
