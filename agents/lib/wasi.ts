// Minimal WASI preview1 I/O for AssemblyScript agents: stdin in, stdout/stderr out, exit status.
// Only these three imports exist, so the agent has no other authority.

@external("wasi_snapshot_preview1", "fd_read")
declare function fd_read(fd: u32, iovs: usize, iovsLen: u32, nread: usize): u16
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: u32, iovs: usize, iovsLen: u32, nwritten: usize): u16
@external("wasi_snapshot_preview1", "proc_exit")
declare function proc_exit(code: u32): void

const CHUNK: i32 = 65536

/** Read all of stdin as UTF-8 text. */
export function readStdin(): string {
  let cap = CHUNK
  let buf = heap.alloc(cap)
  let len = 0
  const iov = memory.data(16)
  while (true) {
    if (cap - len < CHUNK) {
      cap *= 2
      buf = heap.realloc(buf, cap)
    }
    store<u32>(iov, <u32>(buf + len))
    store<u32>(iov, <u32>CHUNK, 4)
    const err = fd_read(0, iov, 1, iov + 8)
    const n = <i32>load<u32>(iov, 8)
    if (err != 0 || n == 0) break
    len += n
  }
  const text = String.UTF8.decodeUnsafe(buf, len)
  heap.free(buf)
  return text
}

function writeAll(fd: u32, s: string): void {
  const bytes = String.UTF8.encode(s)
  const iov = memory.data(16)
  let off = 0
  const total = bytes.byteLength
  while (off < total) {
    store<u32>(iov, <u32>(changetype<usize>(bytes) + off))
    store<u32>(iov, <u32>(total - off), 4)
    if (fd_write(fd, iov, 1, iov + 8) != 0) return
    const n = <i32>load<u32>(iov, 8)
    if (n <= 0) return
    off += n
  }
}

/** Write text to stdout. */
export function print(s: string): void { writeAll(1, s) }

/** Write text to stderr. */
export function printErr(s: string): void { writeAll(2, s) }

/** Exit with a status (non-zero = failure). */
export function exit(code: u32): void { proc_exit(code) }

/** Fail with a message on stderr and status 2 (bad input). */
export function fail(message: string): void {
  printErr(message + "\n")
  proc_exit(2)
}

/** `--use abort=…`: route AssemblyScript aborts to stderr and status 134. */
export function wasiAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  printErr("abort: " + (message !== null ? message : "") + " at " + (fileName !== null ? fileName : "") + ":" + line.toString() + ":" + column.toString() + "\n")
  proc_exit(134)
}
