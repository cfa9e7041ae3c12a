import { describe, expect, test } from 'vitest'
import { ConsoleStdout, File, OpenFile, wasi as defs } from '@bjorn3/browser_wasi_shim'
import { AgentOutputTooLargeError } from './errors.ts'
import { createWorkerApi } from './sandbox-core.ts'
import { validateModule } from './validate.ts'
import { WASI_PREVIEW1_FUNCTIONS, wasiHost, type WasiFunction, type WasiHostInit } from './wasi-host.ts'
import { wat } from '../../../test/fixtures/runtime-wat.mjs'
import { wasiTestsuite } from '../../../test/fixtures/wasi-testsuite/index.mjs'

const SUB = 48
const EVENT = 32

/**
 * Run `body` as if it were a command's `_start`, with a 1-page memory and the host's
 * imports; `stdin` is the in-memory input, fds 1 and 2 collect output.
 */
function withHost(body: (f: Record<string, WasiFunction>, view: DataView) => void, opts: Partial<WasiHostInit> & { stdin?: string } = {}) {
  const memory = new WebAssembly.Memory({ initial: 1 })
  const out: string[] = []
  const fds = opts.fds ?? [
    new OpenFile(new File(new TextEncoder().encode(opts.stdin ?? ''), { readonly: true })),
    new ConsoleStdout((b) => out.push(new TextDecoder().decode(b))),
    new ConsoleStdout(() => {})
  ]
  const host = wasiHost({ args: ['agent'], env: [], ...opts, fds })
  const code = host.start({ exports: { memory, _start: () => body(host.imports, new DataView(memory.buffer)) } } as unknown as WebAssembly.Instance)
  return { code, out: out.join('') }
}

function clockSub(view: DataView, at: number, userdata: bigint, clock: number, timeoutNs: bigint, absolute = false) {
  view.setBigUint64(at, userdata, true)
  view.setUint8(at + 8, defs.EVENTTYPE_CLOCK)
  view.setUint32(at + 16, clock, true)
  view.setBigUint64(at + 24, timeoutNs, true)
  view.setUint16(at + 40, absolute ? defs.SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME : 0, true)
}

function fdSub(view: DataView, at: number, userdata: bigint, type: number, fd: number) {
  view.setBigUint64(at, userdata, true)
  view.setUint8(at + 8, type)
  view.setUint32(at + 16, fd, true)
}

function events(view: DataView, at: number, count: number) {
  return Array.from({ length: count }, (_, i) => {
    const p = at + i * EVENT
    return { userdata: view.getBigUint64(p, true), error: view.getUint16(p + 8, true), type: view.getUint8(p + 10), nbytes: view.getBigUint64(p + 16, true) }
  })
}

describe('wasi_snapshot_preview1 host', () => {
  test('provides every preview1 function, and validation accepts a module importing any of them', () => {
    expect(WASI_PREVIEW1_FUNCTIONS).toHaveLength(46)
    withHost((f) => {
      for (const name of WASI_PREVIEW1_FUNCTIONS) expect(typeof f[name], name).toBe('function')
    })
    const imports = ['sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown', 'poll_oneoff', 'proc_raise']
      .map((n) => `(import "wasi_snapshot_preview1" "${n}" (func (param i32 i32) (result i32)))`)
      .join(' ')
    expect(() => validateModule(wat(`(module ${imports} (memory (export "memory") 1) (func (export "_start")))`), 'wasi-preview1', 16)).not.toThrow()
  })

  test('sockets: EBADF for a descriptor that is not open, ENOTSOCK for one that is', () => {
    withHost((f) => {
      for (const name of ['sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown']) {
        expect(f[name]!(3, 0, 0, 0, 0, 0), `${name}(3)`).toBe(defs.ERRNO_BADF)
        expect(f[name]!(420, 0, 0, 0, 0, 0), `${name}(420)`).toBe(defs.ERRNO_BADF)
        expect(f[name]!(0, 0, 0, 0, 0, 0), `${name}(0)`).toBe(defs.ERRNO_NOTSOCK)
        expect(f[name]!(1, 0, 0, 0, 0, 0), `${name}(1)`).toBe(defs.ERRNO_NOTSOCK)
      }
    })
  })

  test('poll_oneoff: stdin is ready with its unread bytes, stdout and stderr are writable, a closed fd is EBADF, and nothing sleeps', () => {
    let slept = 0
    withHost(
      (f, view) => {
        fdSub(view, 0, 10n, defs.EVENTTYPE_FD_READ, 0)
        fdSub(view, SUB, 11n, defs.EVENTTYPE_FD_WRITE, 1)
        fdSub(view, 2 * SUB, 12n, defs.EVENTTYPE_FD_WRITE, 2)
        fdSub(view, 3 * SUB, 13n, defs.EVENTTYPE_FD_READ, 7)
        clockSub(view, 4 * SUB, 14n, defs.CLOCKID_MONOTONIC, 200_000_000n)
        expect(f.poll_oneoff!(0, 1024, 5, 2048)).toBe(defs.ERRNO_SUCCESS)
        expect(view.getUint32(2048, true)).toBe(4)
        expect(events(view, 1024, 4)).toEqual([
          { userdata: 10n, error: 0, type: defs.EVENTTYPE_FD_READ, nbytes: 5n },
          { userdata: 11n, error: 0, type: defs.EVENTTYPE_FD_WRITE, nbytes: 0n },
          { userdata: 12n, error: 0, type: defs.EVENTTYPE_FD_WRITE, nbytes: 0n },
          { userdata: 13n, error: defs.ERRNO_BADF, type: defs.EVENTTYPE_FD_READ, nbytes: 0n }
        ])
        // After reading 2 bytes, 3 are left.
        view.setUint32(3000, 3100, true)
        view.setUint32(3004, 2, true)
        expect(f.fd_read!(0, 3000, 1, 3008)).toBe(0)
        fdSub(view, 0, 10n, defs.EVENTTYPE_FD_READ, 0)
        expect(f.poll_oneoff!(0, 1024, 1, 2048)).toBe(0)
        expect(events(view, 1024, 1)[0]!.nbytes).toBe(3n)
        // Writing to read-only stdin or reading write-only stdout is refused per event.
        fdSub(view, 0, 20n, defs.EVENTTYPE_FD_WRITE, 0)
        fdSub(view, SUB, 21n, defs.EVENTTYPE_FD_READ, 1)
        expect(f.poll_oneoff!(0, 1024, 2, 2048)).toBe(0)
        expect(events(view, 1024, 2).map((e) => e.error)).toEqual([defs.ERRNO_BADF, defs.ERRNO_BADF])
      },
      { stdin: 'hello', sleep: (ms) => (slept += ms) }
    )
    expect(slept).toBe(0)
  })

  test('poll_oneoff on clocks sleeps until the earliest deadline and reports every clock that is due', () => {
    let t = 1000
    const sleeps: number[] = []
    withHost(
      (f, view) => {
        clockSub(view, 0, 1n, defs.CLOCKID_MONOTONIC, 50_000_000n) // 50 ms
        clockSub(view, SUB, 2n, defs.CLOCKID_MONOTONIC, 20_000_000n) // 20 ms
        clockSub(view, 2 * SUB, 3n, defs.CLOCKID_REALTIME, 20_000_000n) // 20 ms
        expect(f.poll_oneoff!(0, 1024, 3, 2048)).toBe(0)
        expect(sleeps).toEqual([20])
        expect(view.getUint32(2048, true)).toBe(2)
        expect(events(view, 1024, 2).map((e) => [e.userdata, e.error, e.type])).toEqual([
          [2n, 0, defs.EVENTTYPE_CLOCK],
          [3n, 0, defs.EVENTTYPE_CLOCK]
        ])
        // An absolute deadline on the monotonic clock, 30 ms from now.
        clockSub(view, 0, 4n, defs.CLOCKID_MONOTONIC, BigInt((t + 30) * 1e6), true)
        expect(f.poll_oneoff!(0, 1024, 1, 2048)).toBe(0)
        expect(sleeps).toEqual([20, 30])
        // A deadline already past returns at once.
        clockSub(view, 0, 5n, defs.CLOCKID_MONOTONIC, 1n, true)
        expect(f.poll_oneoff!(0, 1024, 1, 2048)).toBe(0)
        expect(sleeps).toEqual([20, 30, 0])
        expect(events(view, 1024, 1)[0]!.userdata).toBe(5n)
        // An unknown clock is an EINVAL event, not a trap; a bad tag or no subscription is EINVAL.
        clockSub(view, 0, 6n, 9, 1n)
        expect(f.poll_oneoff!(0, 1024, 1, 2048)).toBe(0)
        expect(events(view, 1024, 1)[0]!.error).toBe(defs.ERRNO_INVAL)
        view.setUint8(8, 7)
        expect(f.poll_oneoff!(0, 1024, 1, 2048)).toBe(defs.ERRNO_INVAL)
        expect(f.poll_oneoff!(0, 1024, 0, 2048)).toBe(defs.ERRNO_INVAL)
      },
      {
        now: () => t,
        sleep: (ms) => {
          sleeps.push(Math.round(ms))
          t += Math.max(0, ms)
        }
      }
    )
  })

  test('the default sleep really blocks for a clock subscription (Atomics.wait in Node)', () => {
    let waited = 0
    withHost((f, view) => {
      clockSub(view, 0, 1n, defs.CLOCKID_MONOTONIC, 30_000_000n)
      const t0 = performance.now()
      expect(f.poll_oneoff!(0, 1024, 1, 2048)).toBe(0)
      waited = performance.now() - t0
    })
    expect(waited).toBeGreaterThanOrEqual(29)
  })

  test('clocks: all four ids answer, an unknown id is EINVAL, and time only moves forward', () => {
    withHost((f, view) => {
      for (const id of [defs.CLOCKID_REALTIME, defs.CLOCKID_MONOTONIC, defs.CLOCKID_PROCESS_CPUTIME_ID, defs.CLOCKID_THREAD_CPUTIME_ID]) {
        expect(f.clock_res_get!(id, 0)).toBe(0)
        expect(view.getBigUint64(0, true)).toBeGreaterThan(0n)
        expect(f.clock_time_get!(id, 0n, 8)).toBe(0)
        expect(f.clock_time_get!(id, 0n, 16)).toBe(0)
        expect(view.getBigUint64(16, true)).toBeGreaterThanOrEqual(view.getBigUint64(8, true))
      }
      expect(f.clock_time_get!(defs.CLOCKID_REALTIME, 0n, 8)).toBe(0)
      const realMs = Number(view.getBigUint64(8, true) / 1_000_000n)
      expect(Math.abs(realMs - Date.now())).toBeLessThan(1000)
      expect(f.clock_res_get!(4, 0)).toBe(defs.ERRNO_INVAL)
      expect(f.clock_time_get!(99, 0n, 0)).toBe(defs.ERRNO_INVAL)
    })
  })

  test('a pointer outside memory is EFAULT; proc_raise is ENOSYS; sched_yield and random_get return success', () => {
    withHost((f, view) => {
      expect(f.clock_time_get!(defs.CLOCKID_MONOTONIC, 0n, 65_535)).toBe(defs.ERRNO_FAULT)
      expect(f.args_sizes_get!(65_534, 0)).toBe(defs.ERRNO_FAULT)
      expect(f.poll_oneoff!(65_500, 0, 1, 0)).toBe(defs.ERRNO_FAULT)
      expect(f.proc_raise!(6)).toBe(defs.ERRNO_NOSYS)
      expect(f.sched_yield!()).toBe(defs.ERRNO_SUCCESS)
      expect(f.random_get!(100, 64)).toBe(defs.ERRNO_SUCCESS)
      expect(new Uint8Array(view.buffer, 100, 64).some((b) => b !== 0)).toBe(true)
    })
  })

  test("the agent's exit and the sandbox's own errors still end the run", () => {
    expect(withHost((f) => f.proc_exit!(7)).code).toBe(7)
    const fds = [
      new OpenFile(new File(new Uint8Array(), { readonly: true })),
      new ConsoleStdout(() => {
        throw new AgentOutputTooLargeError('too much')
      }),
      new ConsoleStdout(() => {})
    ]
    expect(() =>
      withHost(
        (f, view) => {
          view.setUint32(0, 16, true)
          view.setUint32(4, 1, true)
          f.fd_write!(1, 0, 1, 8)
        },
        { fds }
      )
    ).toThrow(AgentOutputTooLargeError)
  })
})

describe('WebAssembly/wasi-testsuite (prod/testsuite-base, the 19 programs that need no files, args or environment)', () => {
  const api = createWorkerApi()
  for (const t of wasiTestsuite()) {
    test(`${t.lang}/${t.name}: exit status ${t.exitCode}${t.stdout != null ? `, stdout ${JSON.stringify(t.stdout)}` : ''}`, async () => {
      const r = await api.run({ key: t.agentName, abi: 'wasi-preview1', bytes: t.wasm, memoryPages: 2048, input: '', outputBytes: 1 << 20 })
      if (t.exitCode === 0) {
        expect(r.ok ? null : r.error).toBeNull()
        if (r.ok && t.stdout != null) expect(r.output).toBe(t.stdout)
      } else {
        expect(r.ok).toBe(false)
        if (!r.ok) {
          expect(r.error.name).toBe('AgentExitError')
          expect(r.error.message).toMatch(new RegExp(`status ${t.exitCode}\\b`))
        }
      }
    })
  }
})
