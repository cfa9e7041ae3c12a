// extract-entities (WASI): e-mail addresses, http(s) URLs and numbers, each deduplicated in order of appearance.
import { readStdin, print } from "../lib/wasi"
import { strArr, arr } from "../lib/json"

function isAlnum(c: i32): bool { return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
function isLocal(c: i32): bool { return isAlnum(c) || c == 46 || c == 95 || c == 37 || c == 43 || c == 45 }
function isDomain(c: i32): bool { return isAlnum(c) || c == 46 || c == 45 }
function isSpaceOrQuote(c: i32): bool { return c <= 32 || c == 34 || c == 60 || c == 62 }
function isTrailingPunct(c: i32): bool { return c == 46 || c == 44 || c == 59 || c == 58 || c == 33 || c == 63 || c == 41 || c == 93 || c == 39 }

function pushUnique(list: string[], seen: Set<string>, v: string): void {
  if (!seen.has(v)) { seen.add(v); list.push(v) }
}

const text = readStdin()
const n = text.length
const masked = new Array<bool>(n)
const urls = new Array<string>()
const emails = new Array<string>()
const numbers = new Array<string>()
const seenU = new Set<string>()
const seenE = new Set<string>()
const seenN = new Set<string>()

// URLs
let i = 0
while (i < n) {
  const rest = text.substring(i, i + 8).toLowerCase()
  if (rest.startsWith("http://") || rest.startsWith("https://")) {
    let j = i
    while (j < n && !isSpaceOrQuote(text.charCodeAt(j))) j++
    while (j > i && isTrailingPunct(text.charCodeAt(j - 1))) j--
    const url = text.substring(i, j)
    if (url.length > 8) {
      pushUnique(urls, seenU, url)
      for (let k = i; k < j; k++) masked[k] = true
    }
    i = j > i ? j : i + 1
  } else i++
}

// E-mail addresses: expand around each '@'.
for (let at = 0; at < n; at++) {
  if (text.charCodeAt(at) != 64 || masked[at]) continue
  let s = at
  while (s > 0 && isLocal(text.charCodeAt(s - 1)) && !masked[s - 1]) s--
  let e = at + 1
  while (e < n && isDomain(text.charCodeAt(e))) e++
  while (e > at + 1 && (text.charCodeAt(e - 1) == 46 || text.charCodeAt(e - 1) == 45)) e--
  while (s < at && text.charCodeAt(s) == 46) s++
  if (s == at || e == at + 1) continue
  const domain = text.substring(at + 1, e)
  const dot = domain.lastIndexOf(".")
  if (dot <= 0 || domain.length - dot - 1 < 2) continue
  let tldOk = true
  for (let k = dot + 1; k < domain.length; k++) { const c = domain.charCodeAt(k); if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122))) tldOk = false }
  if (!tldOk) continue
  pushUnique(emails, seenE, text.substring(s, e).toLowerCase())
  for (let k = s; k < e; k++) masked[k] = true
}

// Numbers: -?digits with optional thousands separators and decimals, not glued to letters.
i = 0
while (i < n) {
  const c = text.charCodeAt(i)
  const prev = i > 0 ? text.charCodeAt(i - 1) : 32
  const startsNeg = c == 45 && i + 1 < n && text.charCodeAt(i + 1) >= 48 && text.charCodeAt(i + 1) <= 57 && !isAlnum(prev)
  if (!masked[i] && ((c >= 48 && c <= 57 && !isAlnum(prev) && prev != 46) || startsNeg)) {
    let j = startsNeg ? i + 1 : i
    let digits = ""
    if (startsNeg) digits = "-"
    while (j < n) {
      const d = text.charCodeAt(j)
      if (d >= 48 && d <= 57) { digits += String.fromCharCode(d); j++ }
      else if (d == 44 && j + 3 < n + 1 && j + 3 <= n && isDigits3(text, j + 1) && !(j + 4 < n && text.charCodeAt(j + 4) >= 48 && text.charCodeAt(j + 4) <= 57)) j++
      else if (d == 46 && j + 1 < n && text.charCodeAt(j + 1) >= 48 && text.charCodeAt(j + 1) <= 57 && digits.indexOf(".") < 0) { digits += "."; j++ }
      else break
    }
    if (j >= n || !isAlnum(text.charCodeAt(j))) pushUnique(numbers, seenN, parseFloat(digits).toString())
    i = j
  } else i++
}

function isDigits3(t: string, at: i32): bool {
  for (let k = 0; k < 3; k++) {
    const c = t.charCodeAt(at + k)
    if (c < 48 || c > 57) return false
  }
  return true
}

// Numbers are emitted as JSON numbers; AssemblyScript prints integers as "12.0", so trim that.
const nums = new Array<string>(numbers.length)
for (let k = 0; k < numbers.length; k++) nums[k] = numbers[k].endsWith(".0") ? numbers[k].substring(0, numbers[k].length - 2) : numbers[k]
print("{\"emails\":" + strArr(emails) + ",\"urls\":" + strArr(urls) + ",\"numbers\":" + arr(nums) + "}")
