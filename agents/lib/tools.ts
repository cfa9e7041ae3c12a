// Tools for AssemblyScript agents (issue 14): `zerostate.tool_call` / `zerostate.tool_result`,
// the same two imports in the wasi-preview1 and json-v1 ABIs. The host suspends the agent while
// the tool runs (JSPI in a tab, a blocking wait in Node), so a call looks synchronous here.
// The agent's manifest must declare each tool it calls ("tools"), the donor must grant it, and
// what it touches (a memory namespace) must be allowed by the task; otherwise the reply is an error.

@external("zerostate", "tool_call")
declare function tool_call(namePtr: usize, nameLen: i32, argsPtr: usize, argsLen: i32): i32
@external("zerostate", "tool_result")
declare function tool_result(ptr: usize, len: i32): i32

/**
 * Call a tool with JSON arguments. Returns the reply as JSON text:
 * `{"ok":true,"value":…}` or `{"ok":false,"error":{"name","message","tool","grant"?}}`.
 */
export function callTool(name: string, argsJson: string): string {
  const n = String.UTF8.encode(name)
  const a = String.UTF8.encode(argsJson)
  const len = tool_call(changetype<usize>(n), n.byteLength, changetype<usize>(a), a.byteLength)
  const buf = new ArrayBuffer(len)
  const got = tool_result(changetype<usize>(buf), len)
  return String.UTF8.decodeUnsafe(changetype<usize>(buf), got)
}

/** Whether a reply of `callTool` is a success. */
export function toolOk(reply: string): bool {
  return reply.startsWith('{"ok":true')
}

/** The `value` of a successful reply, as JSON text (the host writes `{"ok":true,"value":…}` compactly). */
export function toolValue(reply: string): string {
  const head = '{"ok":true,"value":'
  return reply.startsWith(head) ? reply.substring(head.length, reply.length - 1) : "null"
}
