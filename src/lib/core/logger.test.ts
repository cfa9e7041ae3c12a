import { afterEach, describe, expect, it } from 'vitest'
import { RingBuffer } from './log-ring.ts'
import {
  captureContext,
  clearLogs,
  formatLog,
  LOG_CAPACITY,
  logger,
  logLevels,
  logRecords,
  logStats,
  onLog,
  setLogContextResolver,
  setLogLevel,
  withLogContext
} from './logger.ts'

describe('ring buffer', () => {
  it('keeps the newest items, oldest first, counting what it overwrote', () => {
    const r = new RingBuffer<number>(3)
    expect(r.toArray()).toEqual([])
    r.push(1)
    r.push(2)
    expect(r.toArray()).toEqual([1, 2])
    for (let i = 3; i <= 7; i++) r.push(i)
    expect(r.toArray()).toEqual([5, 6, 7])
    expect(r.size).toBe(3)
    expect(r.dropped).toBe(4)
    expect(r.toArray((x) => x % 2 === 1)).toEqual([5, 7])
    r.clear()
    expect(r.toArray()).toEqual([])
    r.push(8)
    expect(r.toArray()).toEqual([8])
    expect(() => new RingBuffer(0)).toThrow(RangeError)
  })

  it('wraps correctly at every offset', () => {
    const r = new RingBuffer<number>(5)
    const all: number[] = []
    for (let i = 0; i < 23; i++) {
      r.push(i)
      all.push(i)
      expect(r.toArray()).toEqual(all.slice(-5))
    }
  })
})

describe('structured logs', () => {
  afterEach(() => {
    setLogLevel('info')
    setLogLevel(undefined, 'a')
    setLogLevel(undefined, 'a:b')
    setLogContextResolver(undefined)
    clearLogs()
  })

  it('records calls at or above the level, with time, level, module and the formatted message', () => {
    clearLogs()
    const log = logger('a:b')
    const before = Date.now()
    log('debug %s', 'hidden')
    log.info('started %d steps for %s', 2, 'me')
    log.warn('slow: %o', { ms: 12 })
    log.error('failed: %e', new TypeError('boom'))
    const records = logRecords()
    expect(records.map((r) => [r.level, r.module, r.message])).toEqual([
      ['info', 'a:b', 'started 2 steps for me'],
      ['warn', 'a:b', 'slow: {"ms":12}'],
      ['error', 'a:b', 'failed: TypeError: boom']
    ])
    expect(records[0].time).toBeGreaterThanOrEqual(before)
    expect(records[0]).not.toHaveProperty('traceId')
  })

  it('levels change at run time, per module (a module covers those under it; the longest match wins)', () => {
    clearLogs()
    const ab = logger('a:b')
    const ac = logger('a:c')
    const other = logger('z')
    setLogLevel('debug', 'a')
    setLogLevel('error', 'a:b')
    ab.warn('ab warn')
    ab.error('ab error')
    ac('ac debug')
    other('z debug')
    other.info('z info')
    expect(logRecords().map((r) => r.message)).toEqual(['ab error', 'ac debug', 'z info'])
    expect(logLevels()).toEqual({ level: 'info', modules: { a: 'debug', 'a:b': 'error' } })
    setLogLevel('silent')
    setLogLevel(undefined, 'a')
    ac.error('nothing')
    expect(logRecords()).toHaveLength(3)
    setLogLevel('trace')
    ac.trace('t')
    expect(logRecords().at(-1)).toMatchObject({ level: 'trace', message: 't' })
  })

  it('is bounded per tab and tells listeners of each record', () => {
    clearLogs()
    const seen: string[] = []
    const off = onLog((r) => seen.push(r.message))
    const log = logger('flood')
    for (let i = 0; i < LOG_CAPACITY + 10; i++) log.info('n %d', i)
    off()
    log.info('after')
    const records = logRecords()
    expect(records).toHaveLength(LOG_CAPACITY)
    expect(records[0].message).toBe('n 11') // LOG_CAPACITY + 11 pushed: the first 11 went
    expect(records.at(-1)!.message).toBe('after')
    expect(seen).toHaveLength(LOG_CAPACITY + 10)
    expect(logStats()).toMatchObject({ size: LOG_CAPACITY, capacity: LOG_CAPACITY })
    expect(logStats().dropped).toBeGreaterThanOrEqual(11)
  })

  it('captures the context set around a call, and only there', () => {
    clearLogs()
    const log = logger('ctx')
    const ctx = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), taskId: 't-0123456789abcdef01234567' }
    const inner = withLogContext(ctx, () => {
      log.info('inside')
      return withLogContext({ traceId: 'c'.repeat(32), spanId: 'd'.repeat(16) }, () => {
        log.info('nested')
        return 7
      })
    })
    expect(inner).toBe(7)
    expect(() =>
      withLogContext(ctx, () => {
        throw new Error('x')
      })
    ).toThrow()
    log.info('outside')
    const [a, b, c] = logRecords()
    expect(a).toMatchObject({ message: 'inside', ...ctx })
    expect(b).toMatchObject({ message: 'nested', traceId: 'c'.repeat(32), spanId: 'd'.repeat(16) })
    expect(c.traceId).toBeUndefined()
  })

  it('maps a task (and the step of a request id) named in a message to its trace', () => {
    const task = 't-0123456789abcdef01234567'
    const asked: Array<[string, string | undefined]> = []
    setLogContextResolver((taskId, stepId) => {
      asked.push([taskId, stepId])
      return taskId === task ? { traceId: 'e'.repeat(32), spanId: stepId != null ? 'f'.repeat(16) : '1'.repeat(16) } : undefined
    })
    expect(captureContext(`offer ${task}_s2#3 declined`)).toEqual({ traceId: 'e'.repeat(32), spanId: 'f'.repeat(16), taskId: task })
    expect(captureContext(`task ${task} planned`)).toEqual({ traceId: 'e'.repeat(32), spanId: '1'.repeat(16), taskId: task })
    expect(captureContext('task t-ffffffffffffffffffffffff unknown here')).toEqual({ taskId: 't-ffffffffffffffffffffffff' })
    expect(captureContext('nothing about tasks, not-t-0123456789abcdef')).toEqual({})
    expect(asked).toEqual([
      [task, 's2'],
      [task, undefined],
      ['t-ffffffffffffffffffffffff', undefined]
    ])
  })

  it('formats like debug, bounded, and never throws', () => {
    expect(formatLog('%s and %d%% of %j', ['a', '7', { x: 1 }])).toBe('a and 7% of {"x":1}')
    expect(formatLog('no args %s', [])).toBe('no args %s')
    expect(formatLog('extra', [1, 'two'])).toBe('extra 1 two')
    expect(formatLog('%s', [new Uint8Array(5)])).toBe('<5 bytes>')
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(formatLog('%o', [cyclic])).toBe('[object Object]')
    expect(formatLog('x'.repeat(5000), []).length).toBe(1000)
  })
})
