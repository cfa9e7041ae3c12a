// slugify in AssemblyScript (ABI wasi-preview1): the text arrives on stdin, the answer
// {"slug": …, "length": …} goes to stdout. readStdin and print come with `agent new` (wasi.ts).
import { print, readStdin } from './wasi'

const text = readStdin()
let slug = ''
let dash = false
for (let i = 0; i < text.length; i++) {
  const c = text.charCodeAt(i)
  const upper = c >= 65 && c <= 90
  if (upper || (c >= 97 && c <= 122) || (c >= 48 && c <= 57)) {
    if (dash && slug.length > 0) slug += '-'
    dash = false
    slug += String.fromCharCode(upper ? c + 32 : c)
  } else {
    dash = true
  }
}
// The slug holds only a-z, 0-9 and '-': nothing in it needs escaping in JSON.
print(`{"slug":"${slug}","length":${slug.length.toString()}}`)
