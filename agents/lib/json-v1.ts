// The json-v1 ABI for AssemblyScript agents: `alloc(len)` hands the host a
// buffer for the input JSON, `run(ptr, len)` returns the output JSON as a
// packed (ptr << 32 | len). Buffers are kept alive in globals until the next call.

let input: ArrayBuffer = new ArrayBuffer(0)
let output: ArrayBuffer = new ArrayBuffer(0)

/** Host → agent: room for `len` bytes of input JSON. */
export function alloc(len: i32): usize {
  input = new ArrayBuffer(len)
  return changetype<usize>(input)
}

/** Decode the input JSON text the host wrote at `ptr`. */
export function inputText(ptr: usize, len: i32): string {
  return String.UTF8.decodeUnsafe(ptr, len)
}

/** Keep `json` alive and return its packed location. */
export function respond(json: string): u64 {
  output = String.UTF8.encode(json)
  return (<u64>changetype<usize>(output) << 32) | <u64>output.byteLength
}
