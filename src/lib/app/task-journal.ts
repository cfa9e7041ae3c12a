/**
 * Writes each task submitted from this profile, and the state of every step,
 * into the private `journal` doc: the record a later session resumes from, and
 * the durable trace of step outcomes (agent, peer, time, error).
 */
import { pageLifecycle, type Journal, type PageLifecycle, type StepRecord, type TaskRecord } from '../memory/index.ts'
import { logger, settledWithin } from '../core/index.ts'
import type { TaskHandle, TaskRequest } from '../orchestrator/index.ts'
import {
  INPUT_MEDIA_KEY,
  MAX_KEPT_MEDIA_BYTES,
  inputBytes,
  inputTooBigText,
  mediaTypeOf,
  outputBytes,
  splitOptionsLine,
  tooBigText,
  type TaskMediaStore
} from './task-media.ts'

const log = logger('orchestrator:journal')

/** While a task runs, its record is rewritten at most this often; the final state always is. */
const SAVE_EVERY_MS = 250

/** Inputs and outputs larger than this (as JSON) are not copied into the journal. */
export const MAX_JOURNALLED_VALUE = 16 * 1024

/** Bytes never go into the journal (JSON would spell each byte out): checked before any stringify. */
function hasBytes(value: unknown, depth = 0): boolean {
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || (typeof Blob !== 'undefined' && value instanceof Blob)) return true
  if (value == null || typeof value !== 'object' || depth > 3) return false
  const items = Array.isArray(value) ? value.slice(0, 64) : Object.values(value).slice(0, 64)
  return items.some((v) => hasBytes(v, depth + 1))
}

/** `value` when it is small enough to journal, else undefined (bytes are skipped without serialising them). */
export function small(value: unknown): unknown {
  if (hasBytes(value)) return undefined
  try {
    const text = JSON.stringify(value)
    return text != null && text.length <= MAX_JOURNALLED_VALUE ? value : undefined
  } catch {
    return undefined
  }
}

/** Records written within this window share one journal transaction. */
const BATCH_MS = 50

/**
 * Coalesces the records of many tasks into one `putMany` per window, per journal.
 * When the page is hidden or left, what is waiting is written at once (the window's
 * timer may never fire).
 */
class JournalBatcher {
  #records = new Map<string, TaskRecord>()
  #flushed: PromiseWithResolvers<void> | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  constructor(
    readonly journal: Journal,
    lifecycle: PageLifecycle | undefined
  ) {
    const now = (): void => {
      if (this.#flushed != null) this.#flush(true)
    }
    lifecycle?.addEventListener('pagehide', now)
    lifecycle?.addEventListener('visibilitychange', () => {
      if (lifecycle.visibilityState === 'hidden') now()
    })
  }

  /** A flush at the end of this turn is queued (records written now by tasks that end together share it). */
  #soon = false

  /**
   * Resolves once `record` is saved. `now`: written at the end of this turn with whatever waits (a
   * plan, a committed step, a settled task: what a tab that reloads in the next moment must find),
   * not after the window; tasks that end in the same turn still share one update. The latest record
   * of a task replaces a waiting one, so a record written now is never overwritten by an older one
   * still waiting.
   */
  put(record: TaskRecord, opts: { now?: boolean } = {}): Promise<void> {
    this.#records.set(record.id, record)
    this.#flushed ??= Promise.withResolvers<void>()
    const flushed = this.#flushed.promise
    if (opts.now === true) {
      if (!this.#soon) {
        this.#soon = true
        queueMicrotask(() => {
          if (this.#soon) this.#flush(true)
        })
      }
    } else
      this.#timer ??= setTimeout(() => {
        this.#flush()
      }, BATCH_MS)
    return flushed
  }

  #flush(now = false): void {
    this.#soon = false
    clearTimeout(this.#timer)
    this.#timer = undefined
    const records = [...this.#records.values()]
    const done = this.#flushed!
    this.#records = new Map()
    this.#flushed = undefined
    this.journal.putMany(records, { now }).then(done.resolve, async () => {
      // One bad record must not lose the others: store them one by one, failing only its own.
      const results = await Promise.allSettled(records.map((r) => this.journal.put(r)))
      const failed = results.filter((r) => r.status === 'rejected')
      if (failed.length > 0)
        log.error('could not journal %d of %d task records: %s', failed.length, records.length, (failed[0] as PromiseRejectedResult).reason?.message)
      done.resolve()
    })
  }
}

/** A planned task waits at most this long for its record to be saved before its first step is offered. */
export const PLAN_SAVE_WAIT_MS = 2000

/** Per journal, per task: the write of its plan while it is under way (see {@link planSaved}). */
const planWrites = new WeakMap<Journal, Map<string, Promise<void>>>()

/**
 * Resolves once the planned task's record (its plan and input) is saved in `journal`, or after
 * `maxMs` (a slow disk delays a task, it never stalls or fails it). The orchestrator awaits it
 * before offering the task's first step, so a tab that reloads or crashes at any point after that
 * leaves a record the next tab carries on from (no race with `pagehide`).
 */
export async function planSaved(journal: Journal, taskId: string, maxMs = PLAN_SAVE_WAIT_MS): Promise<void> {
  const writes = planWrites.get(journal)
  const saved = writes?.get(taskId)
  if (saved == null) return
  if (!(await settledWithin(saved, maxMs))) log('the record of task %s was not saved within %d ms: its steps start anyway', taskId, maxMs)
  if (writes?.get(taskId) === saved) writes.delete(taskId)
}

const batchers = new WeakMap<Journal, JournalBatcher>()
function batcherOf(journal: Journal, lifecycle: PageLifecycle | undefined): JournalBatcher {
  let b = batchers.get(journal)
  if (b == null) {
    b = new JournalBatcher(journal, lifecycle ?? pageLifecycle())
    batchers.set(journal, b)
  }
  return b
}

/** Options of {@link journalTask}. */
export interface JournalTaskOptions {
  /** When the task was first submitted (a task carried on after a reload keeps its record's). Default now. */
  createdAt?: number
  /** Steps already journalled (a carried-on task's finished steps, with their outputs). */
  steps?: readonly StepRecord[]
  /**
   * Where byte outputs (images, audio, files) are kept, since the journal holds JSON only: listed in
   * `data.media` (step id → media type and size), or in `data.mediaNotKept` with the reason.
   */
  media?: TaskMediaStore
  /**
   * Called once the settled record (status, outputs, error) is saved, before the byte outputs kept
   * beside the journal are: what `done` waits for, so a tab reloaded as the task finished reads it finished.
   */
  onSettledSaved?: () => void
}

/**
 * Journal `handle` as it progresses; returns when it is settled and saved. `lifecycle` defaults to the page's.
 * A step's output is journalled as the step commits (at once, not at the end: a crash loses nothing of a
 * finished step); one larger than {@link MAX_JOURNALLED_VALUE} is dropped and its step listed in
 * `data.outputsDropped` (a carried-on task runs that step again).
 */
export async function journalTask(
  journal: Journal,
  handle: TaskHandle,
  request: TaskRequest,
  lifecycle?: PageLifecycle,
  opts: JournalTaskOptions = {}
): Promise<void> {
  const createdAt = opts.createdAt ?? Date.now()
  const steps = new Map<string, StepRecord>((opts.steps ?? []).map((s) => [s.id, s]))
  let status = 'planning'
  const input = small(request.input)
  const { custom_score: _fn, ...preferences } = (request.preferences ?? {}) as Record<string, unknown>
  // What "Run again" resubmits: the request minus functions; an input too large to journal is said so.
  let data: Record<string, unknown> = {
    input,
    ...(request.input !== undefined && input === undefined ? { inputDropped: true } : {}),
    ...(request.agent != null ? { agent: request.agent } : {}),
    ...(request.capabilities != null ? { capabilities: request.capabilities } : {}),
    ...(request.preferences != null ? { preferences } : {})
  }
  const dropOutput = (stepId: string): void => {
    const dropped = (data.outputsDropped as string[] | undefined) ?? []
    if (!dropped.includes(stepId)) data = { ...data, outputsDropped: [...dropped, stepId] }
  }
  /** Byte outputs kept (or refused) so far, by step id: each is stored once. */
  const mediaSeen = new Set<string>()
  const keepMedia = (stepId: string, value: unknown): void => {
    const bytes = opts.media != null ? outputBytes(value) : undefined
    if (bytes == null || mediaSeen.has(stepId)) return
    mediaSeen.add(stepId)
    const size = bytes.byteLength
    const notKept = (reason: string): void => {
      data = { ...data, mediaNotKept: { ...(data.mediaNotKept as Record<string, unknown> | undefined), [stepId]: { size, reason } } }
    }
    if (size > MAX_KEPT_MEDIA_BYTES) {
      notKept(tooBigText(size))
      return
    }
    const mediaType = mediaTypeOf(bytes)
    mediaWrites.push(
      opts.media!.put(handle.id, stepId, { bytes, mediaType }).then(
        () => {
          data = { ...data, media: { ...(data.media as Record<string, unknown> | undefined), [stepId]: { mediaType, size } } }
          write()
        },
        (err: unknown) => {
          log.error('could not keep the output of step %s of task %s: %s', stepId, handle.id, (err as Error).message)
          notKept(`This output (${size} bytes) could not be saved in the task history: ${(err as Error).message}`)
          write()
        }
      )
    )
  }
  const mediaWrites: Array<Promise<void>> = []
  /** Per step: the reasoning and scored route of the attempt that ran last. */
  const routes: Record<string, unknown> = {}
  let writing = Promise.resolve()
  let timer: ReturnType<typeof setTimeout> | undefined
  /**
   * Resolves once this record is saved. `now`: at once, not after the batch window: the plan (its task's
   * steps wait for it), a committed step and the settled task (a reload a moment after a task finished
   * found it "running" and carried it on, offering its step again).
   */
  const write = (now = false): Promise<void> => {
    clearTimeout(timer)
    timer = undefined
    const record: TaskRecord = { id: handle.id, status, description: request.description, createdAt, updatedAt: Date.now(), steps: [...steps.values()], data }
    const saved = batcherOf(journal, lifecycle)
      .put(record, { now })
      .catch((err: unknown) => {
        log.error('could not journal task %s: %s', handle.id, (err as Error).message)
      })
    writing = Promise.all([writing, saved]).then(() => {})
    return saved
  }
  // Progress and step events come in bursts: write at most every SAVE_EVERY_MS while running.
  const save = (): void => {
    timer ??= setTimeout(write, SAVE_EVERY_MS)
  }
  // A byte input (a file or image) is kept beside the journal like a byte output, in the background:
  // the plan's write, which the first step waits for, does not wait for it.
  const media = opts.media
  if (media != null && request.input !== undefined && input === undefined) {
    mediaWrites.push(
      inputBytes(request.input)
        .then(async (found) => {
          if (found == null) return
          if (found.bytes == null || found.size > MAX_KEPT_MEDIA_BYTES) {
            data = { ...data, inputNotKept: { size: found.size, reason: inputTooBigText(found.size) } }
            return
          }
          const mediaType = mediaTypeOf(splitOptionsLine(found.bytes).file)
          await media.put(handle.id, INPUT_MEDIA_KEY, { bytes: found.bytes, mediaType })
          data = { ...data, inputMedia: { mediaType, size: found.size } }
        })
        .catch((err: unknown) => {
          log.error('could not keep the input of task %s: %s', handle.id, (err as Error).message)
          data = { ...data, inputNotKept: { size: 0, reason: `This task's input could not be saved in the task history: ${(err as Error).message}` } }
        })
        .then(() => save())
    )
  }
  handle.on('progress', (e) => {
    if (e.phase === 'planned' && e.plan != null) {
      data = { ...data, plan: e.plan }
      for (const s of e.plan.subtasks) if (!steps.has(s.id)) steps.set(s.id, { id: s.id, status: 'pending' })
    }
    status = e.phase
    // The plan is what a tab carrying the task on after a reload starts from: journalled at once,
    // and the task's first step waits for it (planSaved).
    if (e.phase === 'planned' && e.plan != null) {
      const saved = write(true)
      let writes = planWrites.get(journal)
      if (writes == null) {
        writes = new Map()
        planWrites.set(journal, writes)
      }
      writes.set(handle.id, saved)
      const forget = (): void => {
        if (writes.get(handle.id) === saved) writes.delete(handle.id)
      }
      saved.then(forget, forget)
    } else save()
  })
  handle.on('step', (e) => {
    const prev = steps.get(e.stepId) ?? { id: e.stepId, status: 'pending' }
    steps.set(e.stepId, {
      ...prev,
      status: e.status,
      agent: e.agent,
      peer: e.peer,
      ...(e.status === 'dispatched' && prev.startedAt == null ? { startedAt: Date.now() } : {}),
      ...((e.status === 'succeeded' || e.status === 'failed') && prev.status !== e.status ? { endedAt: Date.now() } : {}),
      ...(e.error != null ? { error: e.error } : {})
    })
    if (e.reasoning != null || e.route != null) {
      routes[e.stepId] = { reasoning: e.reasoning, route: e.route }
      data = { ...data, routes }
    }
    if (e.status === 'succeeded' && e.output !== undefined) {
      const output = small(e.output)
      steps.set(e.stepId, { ...steps.get(e.stepId)!, output, error: undefined })
      if (output === undefined) dropOutput(e.stepId)
      keepMedia(e.stepId, e.output)
      // A finished step is what a tab carrying the task on keeps: journalled at once.
      void write(true)
    } else save()
  })
  try {
    const result = await handle.done
    status = result.status
    for (const s of result.steps) {
      const output = small(s.output)
      steps.set(s.id, {
        ...steps.get(s.id),
        id: s.id,
        status: s.status,
        agent: s.agent,
        peer: s.peer,
        output,
        ...(s.status === 'succeeded' ? { error: undefined } : {})
      })
      if (s.output !== undefined && output === undefined) dropOutput(s.id)
      if (s.status === 'succeeded') keepMedia(s.id, s.output)
    }
    data = { ...data, cost: result.cost, plan: result.plan ?? data.plan, ms: result.steps.map((s) => [s.id, s.ms]) }
  } catch (err) {
    status = (err as Error).name === 'TaskCancelledError' ? 'cancelled' : 'failed'
    data = { ...data, error: (err as Error).message }
  }
  // The settled state at once; the byte outputs kept beside the journal follow (each rewrites the record).
  const settledSaved = write(true)
  if (opts.onSettledSaved != null) void settledSaved.then(opts.onSettledSaved)
  if (mediaWrites.length > 0) {
    await Promise.all(mediaWrites)
    void write(true)
  }
  await writing
}
