// keywords (WASI): the ten most frequent content words (stopwords, numbers and words under 3 letters dropped).
import { readStdin, print } from "../lib/wasi"
import { num, quote, arr } from "../lib/json"
import { lowerWords, isStopword, countWords } from "../lib/text"

function isNumeric(w: string): bool {
  for (let i = 0; i < w.length; i++) {
    const c = w.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

const lw = lowerWords(readStdin())
const content = new Array<string>()
for (let i = 0; i < lw.length; i++) {
  const w = lw[i]
  if (w.length >= 3 && !isStopword(w) && !isNumeric(w)) content.push(w)
}
const counted = countWords(content)
const out = new Array<string>()
for (let i = 0; i < counted.length && i < 10; i++) {
  out.push("{\"word\":" + quote(counted[i].word) + ",\"count\":" + counted[i].count.toString() +
    ",\"score\":" + num(<f64>counted[i].count / <f64>content.length) + "}")
}
print("{\"keywords\":" + arr(out) + ",\"totalWords\":" + lw.length.toString() + "}")
