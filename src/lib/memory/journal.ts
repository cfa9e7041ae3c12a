/**
 * This profile's task journal (`journal` doc, private: never synced to peers,
 * shared between its tabs): tasks and their step states, so a later issue can
 * resume them after a reload. Records are validated on write and on read.
 */
import type * as Y from 'yjs'
import * as v from 'valibot'
import { Counters } from '../core/index.ts'
import { InvalidValueError } from './errors.ts'

/** One step of a journalled task. */
export const StepRecordSchema = v.object({
  id: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
  status: v.pipe(v.string(), v.maxLength(40)),
  agent: v.optional(v.string()),
  peer: v.optional(v.string()),
  startedAt: v.optional(v.number()),
  endedAt: v.optional(v.number()),
  output: v.optional(v.unknown()),
  error: v.optional(v.string())
})
/** A journalled task. */
export const TaskRecordSchema = v.object({
  id: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
  status: v.pipe(v.string(), v.maxLength(40)),
  description: v.optional(v.string()),
  createdAt: v.number(),
  updatedAt: v.number(),
  steps: v.array(StepRecordSchema),
  /** Anything the orchestrator needs to resume (plan, input, …), as JSON. */
  data: v.optional(v.unknown())
})
/** A journalled task (validated). */
export type TaskRecord = v.InferOutput<typeof TaskRecordSchema>
/** One step of a journalled task (validated). */
export type StepRecord = v.InferOutput<typeof StepRecordSchema>

/** The `journal` part of the layer. */
export class Journal {
  readonly #tasks: Y.Map<unknown>
  readonly #counters: Counters
  readonly #saved: (now: boolean) => Promise<void>

  /**
   * `saved(now)` resolves once the doc's changes so far are saved locally: with the doc's next batch
   * of writes, or (`now`) in a write of their own started at once.
   */
  constructor(doc: Y.Doc, saved: (now: boolean) => Promise<void>, counters = new Counters('journal')) {
    this.#tasks = doc.getMap('tasks')
    this.#saved = saved
    this.#counters = counters
    this.#tasks.observe(() => {
      this.#version++
    })
  }

  #version = 0
  /** Grows on every change to the records (local, from the profile's other tabs, or loaded): readers cache by it. */
  get version(): number {
    return this.#version
  }

  /**
   * Store (replace) a task record; resolves once saved locally. `now`: written at once rather than with
   * the doc's next batch (IndexedDB writes wait ~10 ms to share a transaction): a submitted task's
   * plan, which its first step waits for (issue 14: that wait was most of an LLM step's added time to
   * its first streamed token).
   */
  async put(record: TaskRecord, opts: { now?: boolean } = {}): Promise<void> {
    const [id, json] = this.#encode(record)
    this.#tasks.set(id, json)
    await this.#saved(opts.now === true)
  }

  /**
   * Store several records in one transaction (one update to persist and to tell
   * the profile's other tabs, rather than one per record). All are validated
   * first: one invalid record rejects the call and stores none. `now`: written at once, as for `put`.
   */
  async putMany(records: TaskRecord[], opts: { now?: boolean } = {}): Promise<void> {
    if (records.length === 0) return
    const encoded = records.map((r) => this.#encode(r))
    const doc = this.#tasks.doc
    const apply = (): void => {
      for (const [id, json] of encoded) this.#tasks.set(id, json)
    }
    if (doc == null) apply()
    else doc.transact(apply)
    await this.#saved(opts.now === true)
  }

  #encode(record: TaskRecord): [string, string] {
    const parsed = v.safeParse(TaskRecordSchema, record)
    if (!parsed.success) throw new InvalidValueError(`invalid task record: ${v.summarize(parsed.issues)}`)
    try {
      return [parsed.output.id, JSON.stringify(parsed.output)]
    } catch (err) {
      throw new InvalidValueError(undefined, { cause: err })
    }
  }

  /** A task record, or undefined (also if the stored one is invalid: counted). */
  get(id: string): TaskRecord | undefined {
    const raw = this.#tasks.get(id)
    if (typeof raw !== 'string') return undefined
    try {
      const parsed = v.safeParse(TaskRecordSchema, JSON.parse(raw))
      if (parsed.success) return parsed.output
    } catch {
      /* counted below */
    }
    this.#counters.inc('invalidRecords')
    return undefined
  }

  /** All task records, newest first; optionally only those with `status`. */
  list(filter: { status?: string } = {}): TaskRecord[] {
    const out: TaskRecord[] = []
    for (const id of this.#tasks.keys()) {
      const r = this.get(id)
      if (r != null && (filter.status == null || r.status === filter.status)) out.push(r)
    }
    return out.sort((a, b) => b.updatedAt - a.updatedAt)
  }

  /** Remove a task record. */
  async delete(id: string): Promise<void> {
    this.#tasks.delete(id)
    await this.#saved(false)
  }
}
