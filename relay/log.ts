/**
 * The relay's structured log (issue 15): one JSON object per line,
 * `{"time":"…","level":"info","module":"relay","msg":"peer joined",…fields}`, written when
 * its level is at or above the `--log-level` given (default info; `silent` writes nothing).
 */

/** Levels from most to least verbose. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** Extra fields of a record: flat JSON values. */
export type LogFields = Record<string, string | number | boolean | null | undefined>

/** A structured logger. */
export interface RelayLog {
  readonly level: LogLevel
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
}

/** Whether `value` names a level. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value)
}

/**
 * A logger writing JSON lines at `level` and above through `write` (default: stdout for
 * debug/info, stderr for warn/error). `module` names the part of the relay that logs.
 */
export function relayLog(level: LogLevel, module = 'relay', write?: (line: string, level: LogLevel) => void): RelayLog {
  const min = LOG_LEVELS.indexOf(level)
  const out =
    write ??
    ((line: string, lvl: LogLevel) => {
      ;(lvl === 'warn' || lvl === 'error' ? process.stderr : process.stdout).write(`${line}\n`)
    })
  const at =
    (lvl: Exclude<LogLevel, 'silent'>) =>
    (msg: string, fields?: LogFields): void => {
      if (LOG_LEVELS.indexOf(lvl) < min) return
      const record: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, module, msg }
      // Fields never overwrite the record's own keys.
      for (const [k, v] of Object.entries(fields ?? {})) if (!(k in record) && v !== undefined) record[k] = v
      out(JSON.stringify(record), lvl)
    }
  return { level, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}
