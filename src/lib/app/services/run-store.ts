/**
 * Durable runs in this profile's private `journal` Yjs doc (never synced to peers,
 * shared live between the profile's tabs): per run, one summary (`runs` root) and one
 * append-only event log (`runlog` root, a Y.Array of JSON strings). A workflow engine
 * replays the log to resume a run; `tasks()` and the history page read the summaries.
 *
 * Only the tab holding a run's lock (run-locks.ts) appends to its log, so two tabs never
 * create the same log concurrently. Sizes are bounded: an event, a log and the number of
 * finished runs kept; what is read back is validated (IndexedDB is a trust boundary too).
 */
import * as Y from 'yjs'
import * as v from 'valibot'
import { Counters } from '../../core/index.ts'
import { OrchestratorError } from '../../orchestrator/index.ts'

/** Root of the run summaries in the journal doc. */
export const RUNS_ROOT = 'runs'
/** Root of the run event logs in the journal doc. */
export const RUN_LOG_ROOT = 'runlog'
/** Root of approval decisions taken in any tab, read by the tab that runs the workflow. */
export const RUN_DECISIONS_ROOT = 'rundecisions'

/** Defaults of the bounds. */
export const RUN_LIMITS = {
  /** One event as JSON. A step output over this cannot be journalled: the run fails with a sentence. */
  maxEventBytes: 512 * 1024,
  /** Events of one run (a 1,000-item map-reduce writes ~3 per item). */
  maxEvents: 20_000,
  /** Finished runs kept (oldest dropped first, with their logs); unfinished runs are never dropped. */
  maxFinishedRuns: 200,
  /** The workflow document kept with the run, to resume it. */
  maxDocumentBytes: 256 * 1024
}
/** The bounds of the run store. */
export type RunLimits = { [K in keyof typeof RUN_LIMITS]: number }

/** Status of a run, as `tasks()` says it. */
export const RUN_STATUSES = ['running', 'waiting', 'succeeded', 'failed', 'cancelled'] as const
/** Status of a run. */
export type RunStatus = (typeof RUN_STATUSES)[number]
const FINISHED = new Set<RunStatus>(['succeeded', 'failed', 'cancelled'])

/** True for a status a run never leaves. */
export function isFinished(status: RunStatus): boolean {
  return FINISHED.has(status)
}

/** The summary of a run. */
export const RunMetaSchema = v.object({
  id: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
  kind: v.picklist(['task', 'workflow']),
  name: v.pipe(v.string(), v.maxLength(400)),
  status: v.picklist(RUN_STATUSES),
  createdAt: v.number(),
  updatedAt: v.number(),
  /** The workflow document (YAML) and the input it runs on: what a resume restarts from. */
  yaml: v.optional(v.pipe(v.string(), v.maxLength(RUN_LIMITS.maxDocumentBytes))),
  input: v.optional(v.unknown()),
  /** The input was too large to keep: a resume cannot restart this run. */
  inputDropped: v.optional(v.boolean()),
  steps: v.optional(v.number()),
  stepsDone: v.optional(v.number()),
  cost: v.optional(v.number()),
  error: v.optional(v.pipe(v.string(), v.maxLength(4000))),
  output: v.optional(v.unknown()),
  /** How many times a tab resumed it (after a reload, a crash, another tab). */
  resumes: v.optional(v.number())
})
/** The summary of a run (validated). */
export type RunMeta = v.InferOutput<typeof RunMetaSchema>

/** An approval decision taken in some tab of the profile. */
export const RunDecisionSchema = v.object({
  runId: v.string(),
  stepId: v.string(),
  approved: v.boolean(),
  comment: v.optional(v.pipe(v.string(), v.maxLength(4000))),
  value: v.optional(v.unknown()),
  at: v.number()
})
/** An approval decision (validated). */
export type RunDecision = v.InferOutput<typeof RunDecisionSchema>

/** A journal write the bounds refuse (an event or a log too large). */
export class RunJournalFullError extends OrchestratorError {
  override readonly name: string = 'RunJournalFullError'
  static override readonly defaultMessage = 'This run is too large to journal'
}

/** The event log of one run: what a workflow engine appends to and replays from. */
export interface RunLog<E = unknown> {
  /** Append one event (JSON). Throws `RunJournalFullError` past the bounds. */
  append(event: E): void
  /** Every event so far, in order (invalid stored ones are skipped and counted). */
  events(): E[]
  /** The events from raw position `from` on, and the position after them (to read only what was appended since). */
  read(from: number): { events: E[]; next: number }
}

/** Options of the run store. */
export interface RunStoreInit {
  limits?: Partial<RunLimits>
  counters?: Counters
  /** Resolves once what was written is saved locally (IndexedDB). */
  saved?: () => Promise<void>
}

/** Run summaries, logs and decisions in a journal doc. */
export class RunStore {
  readonly #doc: Y.Doc
  readonly #runs: Y.Map<string>
  readonly #logs: Y.Map<Y.Array<string>>
  readonly #decisions: Y.Map<string>
  readonly #limits: RunLimits
  readonly #counters: Counters
  readonly #saved: () => Promise<void>
  #version = 0
  #saving: Promise<void> | undefined

  constructor(doc: Y.Doc, init: RunStoreInit = {}) {
    this.#doc = doc
    this.#runs = doc.getMap<string>(RUNS_ROOT)
    this.#logs = doc.getMap<Y.Array<string>>(RUN_LOG_ROOT)
    this.#decisions = doc.getMap<string>(RUN_DECISIONS_ROOT)
    this.#limits = { ...RUN_LIMITS, ...init.limits }
    this.#counters = init.counters ?? new Counters('runs')
    this.#saved = init.saved ?? (async () => {})
    this.#runs.observe(() => {
      this.#version++
    })
  }

  /** Grows whenever a summary changes (here or in another tab): readers cache by it. */
  get version(): number {
    return this.#version
  }

  /** Call `listener` whenever any run's summary changes (here or in another tab); returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    const handler = (): void => {
      listener()
    }
    this.#runs.observe(handler)
    return () => {
      this.#runs.unobserve(handler)
    }
  }

  /** Counters: invalidRecords, refusedEvents, pruned. */
  metrics(): Record<string, number> {
    return this.#counters.toRecord()
  }

  /** Resolves once everything written so far is saved locally. */
  saved(): Promise<void> {
    // One write for everything written in this turn of the event loop: the many units of a
    // map-reduce that finish together share it instead of forcing one IndexedDB write each.
    this.#saving ??= new Promise<void>((resolve) => {
      setTimeout(resolve, 0)
    }).then(() => {
      this.#saving = undefined
      return this.#saved()
    })
    return this.#saving
  }

  /** Create or replace a run's summary (validated). */
  put(meta: RunMeta): void {
    const parsed = v.safeParse(RunMetaSchema, meta)
    if (!parsed.success) throw new OrchestratorError(`invalid run record: ${v.summarize(parsed.issues)}`)
    this.#runs.set(meta.id, JSON.stringify(parsed.output))
    if (isFinished(meta.status)) this.#prune()
  }

  /** Merge `patch` into a run's summary; `updatedAt` is now. No-op for an unknown run. */
  update(id: string, patch: Partial<Omit<RunMeta, 'id' | 'kind' | 'createdAt'>>): RunMeta | undefined {
    const prev = this.get(id)
    if (prev == null) return undefined
    const next = { ...prev, ...patch, updatedAt: Date.now() }
    this.put(next)
    return next
  }

  /** A run's summary, or undefined (also when the stored one is invalid: counted). */
  get(id: string): RunMeta | undefined {
    const raw = this.#runs.get(id)
    if (typeof raw !== 'string') return undefined
    try {
      const parsed = v.safeParse(RunMetaSchema, JSON.parse(raw))
      if (parsed.success) return parsed.output
    } catch {
      /* counted below */
    }
    this.#counters.inc('invalidRecords')
    return undefined
  }

  /** Every run, newest first. */
  list(): RunMeta[] {
    const out: RunMeta[] = []
    for (const id of this.#runs.keys()) {
      const m = this.get(id)
      if (m != null) out.push(m)
    }
    return out.sort((a, b) => b.createdAt - a.createdAt)
  }

  /** Runs not finished (a resume candidate each). */
  unfinished(): RunMeta[] {
    return this.list().filter((m) => !isFinished(m.status))
  }

  /** The event log of a run (created on first append). */
  log<E = unknown>(id: string): RunLog<E> {
    const self = this
    return {
      append(event: E): void {
        let json: string
        try {
          json = JSON.stringify(event)
        } catch (err) {
          self.#counters.inc('refusedEvents')
          throw new RunJournalFullError('A step produced a value that cannot be journalled (not JSON)', { cause: err })
        }
        if (json.length > self.#limits.maxEventBytes) {
          self.#counters.inc('refusedEvents')
          throw new RunJournalFullError(
            `A step produced ${Math.round(json.length / 1024)} KB, over the ${Math.round(self.#limits.maxEventBytes / 1024)} KB a run can journal: make the step's output smaller`
          )
        }
        let arr = self.#logs.get(id)
        if (arr != null && arr.length >= self.#limits.maxEvents) {
          self.#counters.inc('refusedEvents')
          throw new RunJournalFullError(`This run wrote ${arr.length} events, the most one run may journal: split the workflow`)
        }
        self.#doc.transact(() => {
          if (arr == null) {
            arr = new Y.Array<string>()
            self.#logs.set(id, arr)
          }
          arr.push([json])
        })
      },
      events(): E[] {
        return this.read(0).events
      },
      read(from: number): { events: E[]; next: number } {
        const arr = self.#logs.get(id)
        if (arr == null || from >= arr.length) return { events: [], next: Math.max(from, arr?.length ?? 0) }
        const out: E[] = []
        const raws = from === 0 ? arr.toArray() : arr.slice(from)
        for (const raw of raws) {
          try {
            const e = JSON.parse(raw) as unknown
            if (e != null && typeof e === 'object' && !Array.isArray(e)) {
              out.push(e as E)
              continue
            }
          } catch {
            /* counted below */
          }
          self.#counters.inc('invalidRecords')
        }
        return { events: out, next: from + raws.length }
      }
    }
  }

  /** Number of events in a run's log. */
  logSize(id: string): number {
    return this.#logs.get(id)?.length ?? 0
  }

  /** Call `listener` on every change of a run's log or summary (here or in another tab); returns the unsubscribe. */
  observe(id: string, listener: () => void): () => void {
    const onRuns = (e: Y.YMapEvent<string>): void => {
      if (e.keysChanged.has(id)) listener()
    }
    const onLogs = (events: Array<Y.YEvent<Y.AbstractType<unknown>>>): void => {
      for (const e of events) {
        if (e.target === this.#logs ? (e as Y.YMapEvent<unknown>).keysChanged.has(id) : e.target === this.#logs.get(id)) {
          listener()
          return
        }
      }
    }
    this.#runs.observe(onRuns)
    this.#logs.observeDeep(onLogs)
    return () => {
      this.#runs.unobserve(onRuns)
      this.#logs.unobserveDeep(onLogs)
    }
  }

  /** Record an approval decision (any tab); the tab running the workflow applies it. */
  decide(decision: RunDecision): void {
    this.#decisions.set(`${decision.runId}\n${decision.stepId}`, JSON.stringify(v.parse(RunDecisionSchema, decision)))
  }

  /** The decision recorded for a run's approval step, if any. */
  decision(runId: string, stepId: string): RunDecision | undefined {
    const raw = this.#decisions.get(`${runId}\n${stepId}`)
    if (typeof raw !== 'string') return undefined
    try {
      const parsed = v.safeParse(RunDecisionSchema, JSON.parse(raw))
      if (parsed.success && parsed.output.runId === runId && parsed.output.stepId === stepId) return parsed.output
    } catch {
      /* counted below */
    }
    this.#counters.inc('invalidRecords')
    return undefined
  }

  /** Call `listener` with each decision recorded for `runId` from now on (here or in another tab). */
  onDecision(runId: string, listener: (d: RunDecision) => void): () => void {
    const handler = (e: Y.YMapEvent<string>): void => {
      for (const key of e.keysChanged) {
        const [rid, stepId] = key.split('\n')
        if (rid !== runId || stepId == null) continue
        const d = this.decision(rid, stepId)
        if (d != null) listener(d)
      }
    }
    this.#decisions.observe(handler)
    return () => {
      this.#decisions.unobserve(handler)
    }
  }

  /** Drop the oldest finished runs (summary, log, decisions) past `maxFinishedRuns`. */
  #prune(): void {
    const finished = this.list().filter((m) => isFinished(m.status))
    if (finished.length <= this.#limits.maxFinishedRuns) return
    const drop = finished.slice(this.#limits.maxFinishedRuns)
    this.#doc.transact(() => {
      for (const m of drop) {
        this.#runs.delete(m.id)
        this.#logs.delete(m.id)
        for (const key of [...this.#decisions.keys()]) if (key.startsWith(`${m.id}\n`)) this.#decisions.delete(key)
      }
    })
    this.#counters.inc('pruned', drop.length)
  }
}
