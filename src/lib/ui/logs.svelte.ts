/**
 * The Logs page's state (issue 15): this tab's structured log records (core/logger's ring
 * buffer) read reactively, filtered by level, module and task; the levels records are kept
 * at, and libp2p's own debug output, switched at run time; a download of what is shown.
 */
import { createSubscriber } from 'svelte/reactivity'
import {
  clearLogs,
  LOG_LEVELS,
  libp2pDebug,
  type LogLevel,
  type LogRecord,
  logLevels,
  logRecords,
  logStats,
  onLog,
  setLibp2pDebug,
  setLogLevel
} from '$lib/core/index'

export { LOG_LEVELS, type LogLevel, type LogRecord }

/** Levels a record can have (the filter's choices). */
export const RECORD_LEVELS = LOG_LEVELS.filter((l) => l !== 'silent') as Array<Exclude<LogLevel, 'silent'>>
const RANK = Object.fromEntries(LOG_LEVELS.map((l, i) => [l, i])) as Record<LogLevel, number>
/** Records the page lists at most (the newest); the download has every match. */
export const SHOWN_MAX = 500
/** How often the view re-reads while records arrive (a busy tab logs many per second). */
const REFRESH_MS = 250

/** What the page filters on. */
export interface LogFilter {
  /** The least severe level shown. */
  level: Exclude<LogLevel, 'silent'>
  /** A module, or '' for all (a module covers those under it). */
  module: string
  /** A task id, or '' for all. */
  task: string
  /** Text the message contains, or ''. */
  text: string
}

/** Whether a record passes a filter. */
export function matches(r: LogRecord, f: LogFilter): boolean {
  if (RANK[r.level] < RANK[f.level]) return false
  if (f.module !== '' && r.module !== f.module && !r.module.startsWith(`${f.module}:`)) return false
  if (f.task !== '' && r.taskId !== f.task) return false
  if (f.text !== '' && !r.message.toLowerCase().includes(f.text.toLowerCase())) return false
  return true
}

/** Records as JSON Lines (one record per line), the download's format. */
export function toJsonLines(records: readonly LogRecord[]): string {
  return records.map((r) => JSON.stringify({ ...r, time: new Date(r.time).toISOString() })).join('\n') + (records.length > 0 ? '\n' : '')
}

/** The reactive view of this tab's log. */
export class LogsView {
  readonly #subscribe: () => void
  /** Bumped when levels or the libp2p switch change (they raise no log record). */
  #settings = $state(0)
  filter = $state<LogFilter>({ level: 'debug', module: '', task: '', text: '' })

  constructor() {
    this.#subscribe = createSubscriber((update) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const off = onLog(() => {
        timer ??= setTimeout(() => {
          timer = undefined
          update()
        }, REFRESH_MS)
      })
      return () => {
        off()
        clearTimeout(timer)
      }
    })
  }

  /** Every record of this tab, oldest first. */
  get all(): LogRecord[] {
    this.#subscribe()
    void this.#settings
    return logRecords()
  }

  /** The records passing the filter, oldest first. */
  get matching(): LogRecord[] {
    const f = this.filter
    return this.all.filter((r) => matches(r, f))
  }

  /** Modules and tasks seen in the records (the filter's choices). */
  get modules(): string[] {
    return [...new Set(this.all.map((r) => r.module))].sort()
  }
  get tasks(): string[] {
    return [...new Set(this.all.flatMap((r) => (r.taskId != null ? [r.taskId] : [])))]
  }

  get stats(): { size: number; capacity: number; dropped: number } {
    this.#subscribe()
    void this.#settings
    return logStats()
  }

  /** The level records are kept at, for all modules and per module. */
  get levels(): { level: LogLevel; modules: Record<string, LogLevel> } {
    void this.#settings
    return logLevels()
  }
  setLevel(level: LogLevel | undefined, module?: string): void {
    setLogLevel(level, module)
    this.#settings++
  }

  /** libp2p's own debug output in the console. */
  get libp2pDebug(): boolean {
    void this.#settings
    return libp2pDebug()
  }
  set libp2pDebug(on: boolean) {
    setLibp2pDebug(on)
    this.#settings++
  }

  clear(): void {
    clearLogs()
    this.#settings++
  }

  /** Download the records passing the filter as JSON Lines. */
  download(): void {
    const url = URL.createObjectURL(new Blob([toJsonLines(this.matching)], { type: 'application/x-ndjson' }))
    const a = document.createElement('a')
    a.href = url
    a.download = `zerostate-logs-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`
    a.click()
    setTimeout(() => URL.revokeObjectURL(url), 10_000)
  }
}
