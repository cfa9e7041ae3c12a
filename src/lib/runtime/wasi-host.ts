/**
 * The complete `wasi_snapshot_preview1` import object an agent gets: every one of
 * the 46 functions, none of which traps for a reason the program could handle.
 * Files, directories, args and environment come from @bjorn3/browser_wasi_shim;
 * this file adds what the shim leaves out or answers by throwing:
 *
 * - `poll_oneoff` with any number of subscriptions: clocks (relative, absolute,
 *   all four clock ids), `fd_read` / `fd_write` readiness of the agent's
 *   in-memory stdin, stdout, stderr and files (always ready: nothing here
 *   blocks), `EBADF` for a closed descriptor.
 * - `sock_*`: an agent has no sockets (no ambient authority), so `EBADF` for a
 *   descriptor that is not open and `ENOTSOCK` for one that is.
 * - the process and thread CPU-time clocks (time since the instance started: an
 *   agent is single-threaded and this reveals nothing the monotonic clock does
 *   not), `EINVAL` for an unknown clock id.
 * - `proc_raise` (deprecated, no signals here): `ENOSYS`.
 * - a pointer outside the agent's memory is `EFAULT`, not a host exception.
 *
 * Sleeping (a clock-only `poll_oneoff`) blocks the worker with `Atomics.wait`
 * where shared memory exists (Node, cross-origin isolated pages) and spins
 * otherwise; either way the sandbox's wall-time deadline bounds it.
 */
import { ConsoleStdout, type Fd, OpenFile, WASI, wasi as defs } from '@bjorn3/browser_wasi_shim'
import { RuntimeError } from './errors.ts'

/** Every function of `wasi_snapshot_preview1`, as the WASI witx defines it. */
export const WASI_PREVIEW1_FUNCTIONS = [
  'args_get',
  'args_sizes_get',
  'environ_get',
  'environ_sizes_get',
  'clock_res_get',
  'clock_time_get',
  'fd_advise',
  'fd_allocate',
  'fd_close',
  'fd_datasync',
  'fd_fdstat_get',
  'fd_fdstat_set_flags',
  'fd_fdstat_set_rights',
  'fd_filestat_get',
  'fd_filestat_set_size',
  'fd_filestat_set_times',
  'fd_pread',
  'fd_prestat_get',
  'fd_prestat_dir_name',
  'fd_pwrite',
  'fd_read',
  'fd_readdir',
  'fd_renumber',
  'fd_seek',
  'fd_sync',
  'fd_tell',
  'fd_write',
  'path_create_directory',
  'path_filestat_get',
  'path_filestat_set_times',
  'path_link',
  'path_open',
  'path_readlink',
  'path_remove_directory',
  'path_rename',
  'path_symlink',
  'path_unlink_file',
  'poll_oneoff',
  'proc_exit',
  'proc_raise',
  'sched_yield',
  'random_get',
  'sock_accept',
  'sock_recv',
  'sock_send',
  'sock_shutdown'
] as const

/** One `wasi_snapshot_preview1` function name. */
export type WasiFunctionName = (typeof WASI_PREVIEW1_FUNCTIONS)[number]

/** A WASI import: numbers and bigints in, an errno out (`proc_exit` never returns). */
export type WasiFunction = (...args: Array<number | bigint>) => number

/** Sizes of the witx records `poll_oneoff` reads and writes. */
const SUBSCRIPTION_BYTES = 48
const EVENT_BYTES = 32

/** Options of `wasiHost`. */
export interface WasiHostInit {
  args: string[]
  env: string[]
  /** fd 0, 1, 2 and the preopened directories, in order. */
  fds: Fd[]
  /**
   * Block the calling thread for `ms` (a clock-only `poll_oneoff`). Default:
   * `Atomics.wait` where it is allowed, a spin otherwise.
   */
  sleep?: (ms: number) => void
  /** Monotonic time in ms (default `performance.now`). */
  now?: () => number
}

/** An agent's WASI: the import object and the shim that holds its descriptors. */
export interface WasiHost {
  readonly wasi: WASI
  readonly imports: Record<WasiFunctionName, WasiFunction>
  /** Run the command's `_start`; resolves to its exit status. */
  start(instance: WebAssembly.Instance): number
}

/** Block for `ms` without a timer: a worker may wait on shared memory; anything else spins. */
export function blockFor(ms: number): void {
  if (!(ms > 0)) return
  if (typeof SharedArrayBuffer === 'function') {
    try {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
      return
    } catch {
      // A browser's main thread may not wait: spin instead.
    }
  }
  const end = performance.now() + ms
  while (performance.now() < end) {
    // Spin: without cross-origin isolation a worker has no way to sleep synchronously.
  }
}

/** A host exception that means "the agent passed a pointer outside its memory". */
function isOutOfBounds(err: unknown): boolean {
  return err instanceof RangeError && /outside the bounds|Invalid typed array length|out of bounds/i.test(err.message)
}

/**
 * Build the import object for one agent instance. Every function is wrapped so a
 * pointer outside memory answers `EFAULT` and a shim function that throws a plain
 * string (its way of saying "not supported") answers `ENOSYS`; the agent's own
 * exit and the sandbox's errors (output too large) still propagate.
 */
export function wasiHost(init: WasiHostInit): WasiHost {
  // The shim logs every call to the console unless told not to.
  const wasi = new WASI(init.args, init.env, init.fds, { debug: false })
  const now = init.now ?? (() => performance.now())
  const sleep = init.sleep ?? blockFor
  let startedAt = now()
  const base = wasi.wasiImport as unknown as Record<string, WasiFunction>
  const view = (): DataView => new DataView((wasi.inst.exports.memory as WebAssembly.Memory).buffer)

  /** Nanoseconds on clock `id`, or undefined for a clock that does not exist. */
  function clockNs(id: number): bigint | undefined {
    switch (id) {
      case defs.CLOCKID_REALTIME: {
        const ms = performance.timeOrigin + now()
        return BigInt(Math.floor(ms)) * 1_000_000n + BigInt(Math.round((ms % 1) * 1e6))
      }
      case defs.CLOCKID_MONOTONIC:
        return BigInt(Math.round(now() * 1e6))
      case defs.CLOCKID_PROCESS_CPUTIME_ID:
      case defs.CLOCKID_THREAD_CPUTIME_ID:
        return BigInt(Math.round((now() - startedAt) * 1e6))
      default:
        return undefined
    }
  }

  function clockRes(id: number): bigint | undefined {
    if (id === defs.CLOCKID_REALTIME) return 1_000n
    if (id === defs.CLOCKID_MONOTONIC || id === defs.CLOCKID_PROCESS_CPUTIME_ID || id === defs.CLOCKID_THREAD_CPUTIME_ID) return 1_000n
    return undefined
  }

  function isOpen(fd: number): boolean {
    return wasi.fds[fd] != null
  }

  /** Readiness of one fd subscription: [errno, bytes available]. */
  function fdReadiness(fd: number, write: boolean): [number, bigint] {
    const file = wasi.fds[fd]
    if (file == null) return [defs.ERRNO_BADF, 0n]
    if (write) {
      if (file instanceof OpenFile && file.file.readonly) return [defs.ERRNO_BADF, 0n]
      return [defs.ERRNO_SUCCESS, 0n]
    }
    if (file instanceof ConsoleStdout) return [defs.ERRNO_BADF, 0n]
    if (file instanceof OpenFile) {
      const left = BigInt(file.file.data.byteLength) - file.file_pos
      return [defs.ERRNO_SUCCESS, left > 0n ? left : 0n]
    }
    return [defs.ERRNO_SUCCESS, 0n]
  }

  function pollOneoff(inPtr: number, outPtr: number, count: number, neventsPtr: number): number {
    inPtr >>>= 0
    outPtr >>>= 0
    count >>>= 0
    neventsPtr >>>= 0
    if (count === 0) return defs.ERRNO_INVAL
    const mem = view()
    if (inPtr + count * SUBSCRIPTION_BYTES > mem.byteLength || outPtr + count * EVENT_BYTES > mem.byteLength || neventsPtr + 4 > mem.byteLength) {
      return defs.ERRNO_FAULT
    }
    type Ready = { userdata: bigint; type: number; error: number; nbytes: bigint }
    const ready: Ready[] = []
    const clocks: Array<{ userdata: bigint; dueMs: number }> = []
    const t = now()
    for (let i = 0; i < count; i++) {
      const p = inPtr + i * SUBSCRIPTION_BYTES
      const userdata = mem.getBigUint64(p, true)
      const tag = mem.getUint8(p + 8)
      if (tag === defs.EVENTTYPE_CLOCK) {
        const id = mem.getUint32(p + 16, true)
        const timeout = mem.getBigUint64(p + 24, true)
        const absolute = (mem.getUint16(p + 40, true) & defs.SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME) !== 0
        const current = clockNs(id)
        if (current == null) {
          ready.push({ userdata, type: tag, error: defs.ERRNO_INVAL, nbytes: 0n })
          continue
        }
        const waitNs = absolute ? timeout - current : timeout
        clocks.push({ userdata, dueMs: t + Number(waitNs > 0n ? waitNs : 0n) / 1e6 })
      } else if (tag === defs.EVENTTYPE_FD_READ || tag === defs.EVENTTYPE_FD_WRITE) {
        const [error, nbytes] = fdReadiness(mem.getUint32(p + 16, true), tag === defs.EVENTTYPE_FD_WRITE)
        ready.push({ userdata, type: tag, error, nbytes })
      } else {
        return defs.ERRNO_INVAL
      }
    }
    if (ready.length === 0 && clocks.length > 0) sleep(Math.min(...clocks.map((c) => c.dueMs)) - now())
    const after = now()
    for (const c of clocks) if (c.dueMs <= after) ready.push({ userdata: c.userdata, type: defs.EVENTTYPE_CLOCK, error: defs.ERRNO_SUCCESS, nbytes: 0n })
    const out = view()
    ready.forEach((e, i) => {
      const p = outPtr + i * EVENT_BYTES
      new Uint8Array(out.buffer, p, EVENT_BYTES).fill(0)
      out.setBigUint64(p, e.userdata, true)
      out.setUint16(p + 8, e.error, true)
      out.setUint8(p + 10, e.type)
      if (e.type !== defs.EVENTTYPE_CLOCK) out.setBigUint64(p + 16, e.nbytes, true)
    })
    out.setUint32(neventsPtr, ready.length, true)
    return defs.ERRNO_SUCCESS
  }

  const socket =
    (): WasiFunction =>
    (fd): number =>
      isOpen(Number(fd) >>> 0) ? defs.ERRNO_NOTSOCK : defs.ERRNO_BADF

  const own: Partial<Record<WasiFunctionName, WasiFunction>> = {
    clock_res_get(id, resPtr) {
      const res = clockRes(Number(id) >>> 0)
      if (res == null) return defs.ERRNO_INVAL
      view().setBigUint64(Number(resPtr) >>> 0, res, true)
      return defs.ERRNO_SUCCESS
    },
    clock_time_get(id, _precision, timePtr) {
      const ns = clockNs(Number(id) >>> 0)
      if (ns == null) return defs.ERRNO_INVAL
      view().setBigUint64(Number(timePtr) >>> 0, ns, true)
      return defs.ERRNO_SUCCESS
    },
    poll_oneoff: (a, b, c, d) => pollOneoff(Number(a), Number(b), Number(c), Number(d)),
    proc_raise: () => defs.ERRNO_NOSYS,
    sched_yield: () => defs.ERRNO_SUCCESS,
    sock_accept: socket(),
    sock_recv: socket(),
    sock_send: socket(),
    sock_shutdown: socket()
  }

  const imports = {} as Record<WasiFunctionName, WasiFunction>
  for (const name of WASI_PREVIEW1_FUNCTIONS) {
    const fn = own[name] ?? base[name]
    if (fn == null) {
      imports[name] = () => defs.ERRNO_NOSYS
      continue
    }
    imports[name] = (...args) => {
      try {
        return fn(...args) ?? defs.ERRNO_SUCCESS
      } catch (err) {
        if (err instanceof RuntimeError) throw err
        if (isOutOfBounds(err)) return defs.ERRNO_FAULT
        if (typeof err === 'string') return defs.ERRNO_NOSYS
        throw err
      }
    }
  }

  return {
    wasi,
    imports,
    start(instance) {
      startedAt = now()
      return wasi.start(instance as unknown as { exports: { memory: WebAssembly.Memory; _start: () => unknown } })
    }
  }
}
