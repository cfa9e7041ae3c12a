// markdown-html (WASI): a CommonMark subset to HTML — ATX headings, paragraphs, - * + and 1. lists,
// > quotes, ``` fences, --- rules; inline `code`, **strong**, *em*, [links](url). Text is HTML-escaped
// and link targets other than http(s), mailto, relative or # are dropped.
import { readStdin, print } from "../lib/wasi"

function escape(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll("\"", "&quot;")
}

function safeUrl(u: string): bool {
  const l = u.trim().toLowerCase()
  if (l.startsWith("http://") || l.startsWith("https://") || l.startsWith("mailto:") || l.startsWith("#") || l.startsWith("/")) return true
  return l.indexOf(":") < 0
}

function inline(src: string): string {
  let out = ""
  let i = 0
  const n = src.length
  while (i < n) {
    const c = src.charCodeAt(i)
    if (c == 96) {
      const end = src.indexOf("`", i + 1)
      if (end > i) { out += "<code>" + escape(src.substring(i + 1, end)) + "</code>"; i = end + 1; continue }
    }
    if (c == 42 && i + 1 < n && src.charCodeAt(i + 1) == 42) {
      const end = src.indexOf("**", i + 2)
      if (end > i + 2) { out += "<strong>" + inline(src.substring(i + 2, end)) + "</strong>"; i = end + 2; continue }
    }
    if (c == 42 || c == 95) {
      const end = src.indexOf(String.fromCharCode(c), i + 1)
      if (end > i + 1 && src.charCodeAt(i + 1) != 32) { out += "<em>" + inline(src.substring(i + 1, end)) + "</em>"; i = end + 1; continue }
    }
    if (c == 91) {
      const close = src.indexOf("](", i + 1)
      const paren = close > 0 ? src.indexOf(")", close + 2) : -1
      if (close > i && paren > close) {
        const label = src.substring(i + 1, close)
        const url = src.substring(close + 2, paren)
        if (safeUrl(url)) out += "<a href=\"" + escape(url.trim()) + "\">" + inline(label) + "</a>"
        else out += inline(label)
        i = paren + 1
        continue
      }
    }
    out += escape(String.fromCharCode(c))
    i++
  }
  return out
}

function headingLevel(line: string): i32 {
  let h = 0
  while (h < line.length && line.charCodeAt(h) == 35) h++
  return h >= 1 && h <= 6 && h < line.length && line.charCodeAt(h) == 32 ? h : 0
}

function listItem(line: string): i32 {
  const t = line.trimStart()
  if (t.length >= 2 && (t.startsWith("- ") || t.startsWith("* ") || t.startsWith("+ "))) return 1
  let d = 0
  while (d < t.length && t.charCodeAt(d) >= 48 && t.charCodeAt(d) <= 57) d++
  if (d > 0 && d + 1 < t.length && t.charCodeAt(d) == 46 && t.charCodeAt(d + 1) == 32) return 2
  return 0
}

function itemText(line: string): string {
  const t = line.trimStart()
  const sp = t.indexOf(" ")
  return t.substring(sp + 1).trim()
}

const lines = readStdin().replaceAll("\r\n", "\n").split("\n")
const out = new Array<string>()
let para = new Array<string>()
let i = 0

function flush(): void {
  if (para.length > 0) { out.push("<p>" + inline(para.join(" ")) + "</p>"); para = new Array<string>() }
}

while (i < lines.length) {
  const line = lines[i]
  const t = line.trim()
  if (t.length == 0) { flush(); i++; continue }
  if (t.startsWith("```")) {
    flush()
    const lang = t.substring(3).trim()
    const code = new Array<string>()
    i++
    while (i < lines.length && !lines[i].trim().startsWith("```")) { code.push(lines[i]); i++ }
    i++
    out.push("<pre><code" + (lang.length > 0 ? " class=\"language-" + escape(lang) + "\"" : "") + ">" + escape(code.join("\n")) + "</code></pre>")
    continue
  }
  const h = headingLevel(t)
  if (h > 0) { flush(); out.push("<h" + h.toString() + ">" + inline(t.substring(h + 1).trim()) + "</h" + h.toString() + ">"); i++; continue }
  if (t == "---" || t == "***" || t == "___") { flush(); out.push("<hr>"); i++; continue }
  if (t.startsWith(">")) {
    flush()
    const q = new Array<string>()
    while (i < lines.length && lines[i].trim().startsWith(">")) { q.push(lines[i].trim().substring(1).trim()); i++ }
    out.push("<blockquote><p>" + inline(q.join(" ")) + "</p></blockquote>")
    continue
  }
  const kind = listItem(line)
  if (kind > 0) {
    flush()
    const tag = kind == 1 ? "ul" : "ol"
    let html = "<" + tag + ">"
    while (i < lines.length && listItem(lines[i]) == kind) { html += "<li>" + inline(itemText(lines[i])) + "</li>"; i++ }
    out.push(html + "</" + tag + ">")
    continue
  }
  para.push(t)
  i++
}
flush()
print(out.join("\n"))
