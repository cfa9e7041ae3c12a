/**
 * Scoped loggers with structured records (issue 15 "Logs"). `logger('mesh:dispatch')` keeps
 * the libp2p `Logger` shape every module already calls (`log()` is debug, `log.error`,
 * `log.trace`) and adds `log.info` / `log.warn`. Each call at or above its module's level
 * becomes a record (time, level, module, message, and the trace and span ids when it belongs
 * to a run) in this tab's bounded ring buffer, which the Logs page reads. Levels are set at
 * run time (`setLogLevel`). The console output stays `debug`'s, behind `localStorage.debug`
 * (zerostate:*), and libp2p's own debug output behind its own switch (`setLibp2pDebug`).
 */
import { enable as enableDebug, enabled as debugEnabled, type Logger as Libp2pLogger, logger as libp2pLogger } from '@libp2p/logger'
import { RingBuffer } from './log-ring.ts'

/** Levels, least to most severe; `silent` records nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number]
const RANK: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, silent: 5 }

/** One structured log record. */
export interface LogRecord {
  /** Epoch ms. */
  time: number
  level: Exclude<LogLevel, 'silent'>
  /** The logger's scope, e.g. `orchestrator:dispatch`. */
  module: string
  message: string
  /** The task it is about (named in the message, or the context's). */
  taskId?: string
  traceId?: string
  spanId?: string
}

/** Where a record belongs: its run's trace and span, and the task. */
export interface LogContext {
  traceId: string
  spanId: string
  taskId?: string
}

/** A scoped logger: libp2p's shape plus info and warn. */
export interface Logger extends Libp2pLogger {
  info(formatter: unknown, ...args: unknown[]): void
  warn(formatter: unknown, ...args: unknown[]): void
  newScope(name: string): Logger
}

/** Records kept per tab. */
export const LOG_CAPACITY = 2000
/** Characters of a record's message. */
const MAX_MESSAGE = 1000

const ring = new RingBuffer<LogRecord>(LOG_CAPACITY)
let defaultLevel: LogLevel = 'info'
/** Per-module levels: a module `a` also covers `a:b`. */
const moduleLevels = new Map<string, LogLevel>()
const levelCache = new Map<string, number>()
const listeners = new Set<(record: LogRecord) => void>()
let current: LogContext | undefined
let resolver: ((taskId: string, stepId?: string) => LogContext | undefined) | undefined

function rankOf(module: string): number {
  let rank = levelCache.get(module)
  if (rank == null) {
    let level = defaultLevel
    let best = -1
    for (const [m, l] of moduleLevels) {
      if ((module === m || module.startsWith(`${m}:`)) && m.length > best) {
        best = m.length
        level = l
      }
    }
    rank = RANK[level]
    levelCache.set(module, rank)
  }
  return rank
}

/** Where a browser profile keeps the levels (localStorage), so they hold across reloads. */
export const LOG_LEVELS_KEY = 'zerostate:log-levels'
const isLevel = (x: unknown): x is LogLevel => typeof x === 'string' && (LOG_LEVELS as readonly string[]).includes(x)

/**
 * Set the level records are kept at: of every module, or of `module` and those under it
 * (undefined: back to the default). Kept in localStorage where there is one.
 */
export function setLogLevel(level: LogLevel | undefined, module?: string): void {
  if (module == null) {
    if (level != null) defaultLevel = level
  } else if (level == null) moduleLevels.delete(module)
  else moduleLevels.set(module.slice(0, 100), level)
  levelCache.clear()
  try {
    globalThis.localStorage?.setItem(LOG_LEVELS_KEY, JSON.stringify(logLevels()))
  } catch {
    // Storage full or refused: the levels hold for this tab.
  }
}

/** Read the saved levels (a stored value that is not levels is ignored). */
function restoreLevels(): void {
  try {
    const raw = globalThis.localStorage?.getItem(LOG_LEVELS_KEY)
    if (raw == null) return
    const saved = JSON.parse(raw) as { level?: unknown; modules?: unknown }
    if (isLevel(saved.level)) defaultLevel = saved.level
    if (saved.modules != null && typeof saved.modules === 'object')
      for (const [m, l] of Object.entries(saved.modules).slice(0, 100)) if (isLevel(l)) moduleLevels.set(m.slice(0, 100), l)
  } catch {
    // Unreadable: the defaults.
  }
}
restoreLevels()

/** The levels in force: the default and the per-module ones. */
export function logLevels(): { level: LogLevel; modules: Record<string, LogLevel> } {
  return { level: defaultLevel, modules: Object.fromEntries(moduleLevels) }
}

/** This tab's records, oldest first (a copy), optionally filtered. */
export function logRecords(filter?: (r: LogRecord) => boolean): LogRecord[] {
  return ring.toArray(filter)
}

/** How many records the ring holds and how many it overwrote. */
export function logStats(): { size: number; capacity: number; dropped: number } {
  return { size: ring.size, capacity: ring.capacity, dropped: ring.dropped }
}

/** Forget every record. */
export function clearLogs(): void {
  ring.clear()
}

/** Called with every new record (keep it cheap: it runs inside the logging call). */
export function onLog(listener: (record: LogRecord) => void): () => void {
  listeners.add(listener)
  return () => {
    listeners.delete(listener)
  }
}

/**
 * Run `fn` with `ctx` as the context of the records it logs synchronously (the browser has no
 * async context: code after an await logs with the task named in its message instead).
 */
export function withLogContext<T>(ctx: LogContext, fn: () => T): T {
  const before = current
  current = ctx
  try {
    return fn()
  } finally {
    current = before
  }
}

/** How a task id named in a message (and the step of a `t-…_s1#2` request id) maps to its trace; the app sets it. */
export function setLogContextResolver(fn: ((taskId: string, stepId?: string) => LogContext | undefined) | undefined): void {
  resolver = fn
}

/** A task id in text, with the step of a request id (`t-<id>_<step>#<attempt>`). */
const TASK_IN_TEXT = /(?:^|[^A-Za-z0-9_-])(t-[A-Za-z0-9]{8,64})(?:_([A-Za-z0-9-]{1,64})#\d+)?/

/** The context of a record: the one set around the call, or the trace of a task its message names. */
export function captureContext(message: string): Partial<LogContext> {
  if (current != null) return current
  const m = TASK_IN_TEXT.exec(message)
  if (m == null) return {}
  const ctx = resolver?.(m[1], m[2])
  return ctx != null ? { ...ctx, taskId: ctx.taskId ?? m[1] } : { taskId: m[1] }
}

function text(value: unknown): string {
  if (typeof value === 'string') return value
  if (value instanceof Error) return value.message
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`
  if (value == null || typeof value !== 'object') return String(value)
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

/** printf-style formatting as `debug` does it (%s %d %i %o %O %j %e %p %c %k %b %t %m), bounded. */
export function formatLog(formatter: unknown, args: readonly unknown[]): string {
  let i = 0
  let out =
    typeof formatter === 'string'
      ? formatter.replace(/%([a-zA-Z%])/g, (all, c: string) => {
          if (c === '%') return '%'
          if (i >= args.length) return all
          const v = args[i++]
          if (c === 'd' || c === 'i') return String(Number(v))
          if (c === 'e') return v instanceof Error ? `${v.name}: ${v.message}` : text(v)
          return text(v)
        })
      : text(formatter)
  for (; i < args.length; i++) out += ` ${text(args[i])}`
  return out.length > MAX_MESSAGE ? `${out.slice(0, MAX_MESSAGE - 1)}…` : out
}

/** Record one call (when its level is kept). */
function record(module: string, level: Exclude<LogLevel, 'silent'>, formatter: unknown, args: unknown[]): void {
  if (RANK[level] < rankOf(module)) return
  try {
    const message = formatLog(formatter, args)
    const r: LogRecord = { time: Date.now(), level, module, message, ...captureContext(message) }
    ring.push(r)
    for (const l of listeners) l(r)
  } catch {
    // Logging never throws into the caller.
  }
}

/** A scoped logger: `logger('mesh:dispatch')` records under that module and prints under `zerostate:mesh:dispatch` when debug is on. */
export function logger(scope: string): Logger {
  const base = libp2pLogger(`zerostate:${scope}`)
  const warnOut = libp2pLogger(`zerostate:${scope}:warn`)
  const log = ((formatter: unknown, ...args: unknown[]) => {
    record(scope, 'debug', formatter, args)
    base(formatter, ...args)
  }) as Logger
  log.error = (formatter: unknown, ...args: unknown[]) => {
    record(scope, 'error', formatter, args)
    base.error(formatter, ...args)
  }
  log.trace = (formatter: unknown, ...args: unknown[]) => {
    record(scope, 'trace', formatter, args)
    base.trace(formatter, ...args)
  }
  log.info = (formatter: unknown, ...args: unknown[]) => {
    record(scope, 'info', formatter, args)
    base(formatter, ...args)
  }
  log.warn = (formatter: unknown, ...args: unknown[]) => {
    record(scope, 'warn', formatter, args)
    warnOut(formatter, ...args)
  }
  Object.defineProperty(log, 'enabled', { get: () => base.enabled || rankOf(scope) <= RANK.debug })
  log.newScope = (name: string) => logger(`${scope}:${name}`)
  return log
}

const LIBP2P = 'libp2p:*'

/** Whether libp2p's own debug output (`libp2p:*`) prints to the console. */
export function libp2pDebug(): boolean {
  return debugEnabled('libp2p:x')
}

/**
 * libp2p's debug output on or off, leaving the other `debug` namespaces (zerostate:*) as they
 * are. Takes effect for loggers created afterwards too; `debug` keeps it in localStorage.
 */
export function setLibp2pDebug(on: boolean): void {
  let names: string[] = []
  try {
    names = (globalThis.localStorage?.getItem('debug') ?? '').split(/[\s,]+/).filter((n) => n !== '')
  } catch {
    // No storage (Node, a sandboxed frame): start from nothing.
  }
  names = names.filter((n) => n !== LIBP2P && n !== `-${LIBP2P}`)
  if (on) names.push(LIBP2P)
  enableDebug(names.join(','))
}
