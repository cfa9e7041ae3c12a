import { describe, expect, it } from 'vitest'
import { isLogLevel, relayLog, type LogLevel } from './log.ts'

describe('relay structured log', () => {
  const capture = (level: LogLevel) => {
    const lines: Array<{ line: string; level: LogLevel }> = []
    return { log: relayLog(level, 'relay', (line, lvl) => lines.push({ line, level: lvl })), lines }
  }

  it('writes one JSON object per line with time, level, module, msg and the fields', () => {
    const { log, lines } = capture('info')
    log.info('peer joined', { peer: 'p1', connected: 3 })
    expect(lines).toHaveLength(1)
    const record = JSON.parse(lines[0]?.line as string)
    expect(record).toMatchObject({ level: 'info', module: 'relay', msg: 'peer joined', peer: 'p1', connected: 3 })
    expect(Number.isNaN(Date.parse(record.time))).toBe(false)
  })

  it('drops records below its level; silent writes nothing', () => {
    const { log, lines } = capture('warn')
    log.debug('d')
    log.info('i')
    log.warn('w')
    log.error('e')
    expect(lines.map((l) => JSON.parse(l.line).msg)).toEqual(['w', 'e'])
    const silent = capture('silent')
    silent.log.error('e')
    expect(silent.lines).toHaveLength(0)
  })

  it('fields cannot overwrite the record keys; undefined fields are left out', () => {
    const { log, lines } = capture('debug')
    log.debug('real', { msg: 'forged', level: 'error', extra: undefined })
    const record = JSON.parse(lines[0]?.line as string)
    expect(record.msg).toBe('real')
    expect(record.level).toBe('debug')
    expect('extra' in record).toBe(false)
  })

  it('knows its levels', () => {
    expect(isLogLevel('info')).toBe(true)
    expect(isLogLevel('verbose')).toBe(false)
  })
})
