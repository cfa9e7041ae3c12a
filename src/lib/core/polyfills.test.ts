import tty from 'node:tty'
import { logger } from '@libp2p/logger'
import { afterEach, describe, expect, it, vi } from 'vitest'
import './polyfills.ts'

describe('Node polyfills', () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it('Promise.withResolvers exists and settles its promise', async () => {
    const { promise, resolve } = Promise.withResolvers<number>()
    resolve(7)
    await expect(promise).resolves.toBe(7)
  })

  it('libp2p loggers are created without asking the terminal again (DEBUG_COLORS decided once)', () => {
    expect(process.env.DEBUG_COLORS).toBe(process.stderr.isTTY === true ? 'true' : 'false')
    const isatty = vi.spyOn(tty, 'isatty')
    for (let i = 0; i < 50; i++) logger(`zs:polyfill-test:${i}`)
    expect(isatty).not.toHaveBeenCalled()
  })
})
