// Tiny JSON helpers for agents: string quoting, number formatting, and a
// JSON-string-literal reader (json-v1 agents receive their input as JSON text).

/** Quote and escape a string as a JSON string literal. */
export function quote(s: string): string {
  let out = "\""
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    let esc: string | null = null
    if (c == 0x22) esc = "\\\""
    else if (c == 0x5c) esc = "\\\\"
    else if (c == 0x0a) esc = "\\n"
    else if (c == 0x0d) esc = "\\r"
    else if (c == 0x09) esc = "\\t"
    else if (c < 0x20) {
      const h = c.toString(16)
      esc = "\\u" + "0000".substring(0, 4 - h.length) + h
    }
    if (esc !== null) {
      out += s.substring(start, i) + esc!
      start = i + 1
    }
  }
  return out + s.substring(start) + "\""
}

/** A number rounded to 3 decimals, as JSON. */
export function num(x: f64): string {
  const r = Math.round(x * 1000) / 1000
  if (r == Math.floor(r) && Math.abs(r) < 1e15) return (<i64>r).toString()
  return r.toString()
}

/** Join JSON fragments as an array. */
export function arr(items: string[]): string {
  return "[" + items.join(",") + "]"
}

/** Quote every string and join as a JSON array. */
export function strArr(items: string[]): string {
  const q = new Array<string>(items.length)
  for (let i = 0; i < items.length; i++) q[i] = quote(items[i])
  return arr(q)
}

function hexVal(c: i32): i32 {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

/** Whether `text` (trimmed) is a JSON string literal. */
export function isJsonString(text: string): bool {
  const t = text.trim()
  return t.length >= 2 && t.charCodeAt(0) == 0x22 && t.charCodeAt(t.length - 1) == 0x22
}

/** Read a JSON string literal; returns null if `text` is not one. */
export function readJsonString(text: string): string | null {
  const t = text.trim()
  if (!isJsonString(t)) return null
  let out = ""
  let start = 1
  const end = t.length - 1
  let i = 1
  while (i < end) {
    const c = t.charCodeAt(i)
    if (c == 0x5c) {
      out += t.substring(start, i)
      if (i + 1 >= end) return null
      const e = t.charCodeAt(i + 1)
      if (e == 0x6e) out += "\n"
      else if (e == 0x74) out += "\t"
      else if (e == 0x72) out += "\r"
      else if (e == 0x62) out += "\b"
      else if (e == 0x66) out += "\f"
      else if (e == 0x22 || e == 0x5c || e == 0x2f) out += String.fromCharCode(e)
      else if (e == 0x75) {
        if (i + 5 >= end + 1) return null
        let code = 0
        for (let k = 2; k < 6; k++) {
          const h = hexVal(t.charCodeAt(i + k))
          if (h < 0) return null
          code = code * 16 + h
        }
        out += String.fromCharCode(code)
        i += 4
      } else return null
      i += 2
      start = i
    } else {
      if (c == 0x22) return null
      i++
    }
  }
  return out + t.substring(start, end)
}
