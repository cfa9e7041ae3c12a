// csv-json (WASI): CSV (RFC 4180: quoted fields, "" escapes, CRLF or LF) with a header row
// to a JSON array of objects; numeric-looking fields become numbers, empty fields null.
import { readStdin, print, fail } from "../lib/wasi"
import { quote, arr } from "../lib/json"

function parse(text: string): Array<Array<string>> {
  const rows = new Array<Array<string>>()
  let row = new Array<string>()
  let field = ""
  let inQuotes = false
  let i = 0
  const n = text.length
  let sawAny = false
  while (i < n) {
    const c = text.charCodeAt(i)
    sawAny = true
    if (inQuotes) {
      if (c == 34) {
        if (i + 1 < n && text.charCodeAt(i + 1) == 34) { field += "\""; i += 2; continue }
        inQuotes = false; i++; continue
      }
      field += String.fromCharCode(c); i++; continue
    }
    if (c == 34 && field.length == 0) { inQuotes = true; i++; continue }
    if (c == 44) { row.push(field); field = ""; i++; continue }
    if (c == 13 || c == 10) {
      row.push(field); field = ""
      rows.push(row); row = new Array<string>()
      if (c == 13 && i + 1 < n && text.charCodeAt(i + 1) == 10) i++
      i++; sawAny = false; continue
    }
    field += String.fromCharCode(c); i++
  }
  if (inQuotes) fail("the CSV ends inside a quoted field")
  if (sawAny || field.length > 0 || row.length > 0) { row.push(field); rows.push(row) }
  return rows
}

function isNumber(s: string): bool {
  if (s.length == 0 || s.length > 20) return false
  let i = 0
  if (s.charCodeAt(0) == 45) i = 1
  if (i >= s.length) return false
  if (s.charCodeAt(i) == 48 && i + 1 < s.length && s.charCodeAt(i + 1) != 46) return false
  let digits = 0
  let dot = false
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 48 && c <= 57) digits++
    else if (c == 46 && !dot && digits > 0) dot = true
    else return false
  }
  return digits > 0 && s.charCodeAt(s.length - 1) != 46
}

function value(s: string): string {
  if (s.length == 0) return "null"
  if (isNumber(s)) return s.startsWith("-0") && s.length > 2 && s.charCodeAt(2) != 46 ? quote(s) : s
  if (s == "true" || s == "false") return s
  return quote(s)
}

const rows = parse(readStdin())
if (rows.length == 0) fail("the CSV is empty; the first row must name the columns")
const header = rows[0]
const objects = new Array<string>()
for (let r = 1; r < rows.length; r++) {
  const row = rows[r]
  if (row.length == 1 && row[0].length == 0) continue
  if (row.length != header.length) fail("row " + (r + 1).toString() + " has " + row.length.toString() + " fields; the header has " + header.length.toString())
  const parts = new Array<string>()
  for (let c = 0; c < header.length; c++) parts.push(quote(header[c]) + ":" + value(row[c]))
  objects.push("{" + parts.join(",") + "}")
}
print(arr(objects))
