// notes (json-v1): saves a note in shared memory through tools and reads it back (issue 14).
// Input {"namespace", "key", "text"}. It calls memory.set, then memory.get, and keeps the text in
// its task's scratch space (kv.scratch). memory.* need the donor's grant (Settings → Tools) and the
// task's (TaskRequest.tools.memory lists the namespace); a refused call fails the run with the
// host's typed error, which names the tool and the missing grant.
import { inputText, respond } from "../lib/json-v1"
export { alloc } from "../lib/json-v1"
import { quote, readJsonString } from "../lib/json"
import { callTool, toolOk, toolValue } from "../lib/tools"

/** The raw JSON of a top-level field of a compact JSON object (the host's JSON.stringify), or "". */
function field(obj: string, name: string): string {
  const tag = quote(name) + ":"
  const at = obj.indexOf(tag)
  if (at < 0) return ""
  let i = at + tag.length
  if (obj.charCodeAt(i) != 0x22) {
    let end = i
    while (end < obj.length && obj.charCodeAt(end) != 0x2c && obj.charCodeAt(end) != 0x7d) end++
    return obj.substring(i, end)
  }
  let j = i + 1
  while (j < obj.length) {
    const c = obj.charCodeAt(j)
    if (c == 0x5c) j += 2
    else if (c == 0x22) break
    else j++
  }
  return obj.substring(i, j + 1)
}

function must(reply: string): string {
  if (!toolOk(reply)) abort(reply)
  return toolValue(reply)
}

export function run(ptr: usize, len: i32): u64 {
  const input = inputText(ptr, len)
  const ns = readJsonString(field(input, "namespace"))
  const key = readJsonString(field(input, "key"))
  const text = readJsonString(field(input, "text"))
  if (ns === null || key === null || text === null) abort('notes needs {"namespace", "key", "text"} (strings)')
  const where = '{"namespace":' + quote(ns!) + ',"key":' + quote(key!)
  must(callTool("kv.scratch", '{"op":"set","key":"last","value":' + quote(text!) + "}"))
  must(callTool("memory.set", where + ',"value":' + quote(text!) + "}"))
  const got = must(callTool("memory.get", where + "}"))
  return respond('{"saved":true,"namespace":' + quote(ns!) + ',"key":' + quote(key!) + ',"read":' + field(got, "value") + "}")
}
