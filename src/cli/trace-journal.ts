/**
 * The traces of the tasks and workflow runs this machine's `zerostate` submitted, kept in the profile directory
 * (`$ZEROSTATE_HOME/traces/<task id>.json`) so `zerostate trace TASK_ID` can print one after the
 * process that ran the task has ended: a Node peer keeps no task journal, and its tracer lives
 * only as long as the process. Each file holds the OTLP/JSON that `exportTrace(taskId)` gave
 * when the task ended (donors' verified spans included), with what the task was. Bounded: the
 * latest MAX_TRACES are kept, a trace larger than MAX_TRACE_BYTES is not kept.
 */
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as v from 'valibot'
import { CliError, EXIT } from './errors.ts'

/** How many task traces a profile keeps (the oldest go first). */
export const MAX_TRACES = 200
/** The largest trace file kept, in bytes (a trace of a few hundred steps is well under). */
export const MAX_TRACE_BYTES = 8 * 1024 * 1024
/** A task id as the orchestrator makes them (orchestrator/ids.ts) or a workflow run's (`wf-<uuid>`): also what makes a safe file name. */
const TASK_ID = /^(t|wf)-[A-Za-z0-9_-]{8,64}$/

const KeptTraceSchema = v.object({
  taskId: v.pipe(v.string(), v.regex(TASK_ID)),
  /** A task (`submit`) or a workflow run (`run`, its id a run id); traces kept before runs were have none: tasks. */
  kind: v.optional(v.picklist(['task', 'workflow'])),
  description: v.string(),
  /** When the task was submitted, epoch ms. */
  submittedAt: v.number(),
  status: v.picklist(['succeeded', 'failed']),
  /** Spans in the trace, over all peers. */
  spans: v.number(),
  /** Peers whose spans are in the trace. */
  peers: v.array(v.string()),
  otlp: v.object({ resourceSpans: v.array(v.unknown()) })
})

/** One kept trace: the task and its OTLP/JSON. */
export type KeptTrace = v.InferOutput<typeof KeptTraceSchema>
/** A kept trace without its spans (what `zerostate trace` lists). */
export type KeptTraceInfo = Omit<KeptTrace, 'otlp'>

/** `zerostate trace` was given an id this profile has no trace of. */
export class UnknownTaskError extends CliError {
  override readonly name: string = 'UnknownTaskError'
  constructor(message: string) {
    super(message, EXIT.notFound)
  }
}

/** The spans and peers of an OTLP request (one `resourceSpans` per peer, `service.instance.id` naming it). */
export function otlpSummary(otlp: unknown): { spans: number; peers: string[] } {
  const resourceSpans = (otlp as { resourceSpans?: unknown[] } | null)?.resourceSpans ?? []
  let spans = 0
  const peers: string[] = []
  for (const rs of resourceSpans as Array<{
    resource?: { attributes?: Array<{ key: string; value?: { stringValue?: string } }> }
    scopeSpans?: Array<{ spans?: unknown[] }>
  }>) {
    for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0
    const peer = rs.resource?.attributes?.find((a) => a.key === 'service.instance.id')?.value?.stringValue
    if (peer != null) peers.push(peer)
  }
  return { spans, peers }
}

/** The kept traces of one profile directory. */
export class TraceJournal {
  readonly dir: string
  readonly #max: number

  constructor(profileDir: string, opts: { max?: number } = {}) {
    this.dir = join(profileDir, 'traces')
    this.#max = opts.max ?? MAX_TRACES
  }

  /** Keep a task's trace (replacing an older one of the same task), then drop the oldest beyond the bound. */
  async save(entry: Omit<KeptTrace, 'spans' | 'peers' | 'otlp'> & { otlp: unknown }): Promise<KeptTraceInfo> {
    const parsed = v.safeParse(KeptTraceSchema, { ...entry, ...otlpSummary(entry.otlp) })
    if (!parsed.success) throw new CliError(`the trace of ${String(entry.taskId).slice(0, 80)} was not kept: ${parsed.issues[0].message}`, EXIT.failed)
    const full = parsed.output
    const text = JSON.stringify(full)
    if (text.length > MAX_TRACE_BYTES) throw new CliError(`the trace of ${entry.taskId} is larger than ${MAX_TRACE_BYTES} bytes and was not kept`, EXIT.failed)
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    const file = join(this.dir, `${entry.taskId}.json`)
    // Written aside and renamed: a reader never sees half a file, two processes never mix theirs.
    const tmp = `${file}.${process.pid}.tmp`
    await writeFile(tmp, text, { mode: 0o600 })
    await rename(tmp, file)
    await this.#prune()
    const { otlp: _, ...info } = full
    return info
  }

  /** A kept trace; UnknownTaskError (exit 5) when this profile has none for `taskId`. */
  async read(taskId: string): Promise<KeptTrace> {
    if (!TASK_ID.test(taskId))
      throw new CliError(`${JSON.stringify(taskId.slice(0, 80))} is not a task id (they look like t-0123456789abcdef01234567, or wf-… for a workflow run)`)
    let text: string
    try {
      text = await readFile(join(this.dir, `${taskId}.json`), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      const kept = await this.list()
      throw new UnknownTaskError(
        `no trace of task ${taskId} is kept in ${this.dir}: only those of the ${this.#max} latest tasks and workflow runs submitted from this profile are (${kept.length} kept now; \`zerostate trace\` lists them)`
      )
    }
    return this.#parse(taskId, text)
  }

  /** The kept traces, newest first. A file that is not a kept trace is skipped. */
  async list(): Promise<KeptTraceInfo[]> {
    const out: KeptTraceInfo[] = []
    for (const { id } of await this.#files()) {
      try {
        const { otlp: _, ...info } = this.#parse(id, await readFile(join(this.dir, `${id}.json`), 'utf8'))
        out.push(info)
      } catch {
        // Pruned by another process meanwhile, or not ours: not listed.
      }
    }
    return out.sort((a, b) => b.submittedAt - a.submittedAt)
  }

  #parse(taskId: string, text: string): KeptTrace {
    let data: unknown
    try {
      data = JSON.parse(text)
    } catch {
      throw new CliError(`the kept trace of ${taskId} is damaged (not JSON): delete ${join(this.dir, `${taskId}.json`)}`, EXIT.failed)
    }
    const parsed = v.safeParse(KeptTraceSchema, data)
    if (!parsed.success || parsed.output.taskId !== taskId)
      throw new CliError(`the kept trace of ${taskId} is damaged: delete ${join(this.dir, `${taskId}.json`)}`, EXIT.failed)
    return parsed.output
  }

  async #files(): Promise<Array<{ id: string; mtimeMs: number }>> {
    let names: string[]
    try {
      names = await readdir(this.dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const files: Array<{ id: string; mtimeMs: number }> = []
    for (const name of names) {
      const id = name.endsWith('.json') ? name.slice(0, -5) : ''
      if (!TASK_ID.test(id)) continue
      const s = await stat(join(this.dir, name)).catch(() => undefined)
      if (s != null) files.push({ id, mtimeMs: s.mtimeMs })
    }
    return files
  }

  async #prune(): Promise<void> {
    const files = await this.#files()
    if (files.length <= this.#max) return
    files.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.id < b.id ? -1 : 1))
    for (const f of files.slice(0, files.length - this.#max)) await unlink(join(this.dir, `${f.id}.json`)).catch(() => {})
  }
}
