// word-stats (WASI): counts characters, words, sentences, paragraphs and the most frequent content words.
import { readStdin, print } from "../lib/wasi"
import { num, quote, arr } from "../lib/json"
import { words, sentences, lowerWords, isStopword, countWords } from "../lib/text"

const text = readStdin()
const w = words(text)
let letters = 0
for (let i = 0; i < w.length; i++) letters += w[i].length
let nonSpace = 0
let lines = text.length > 0 ? 1 : 0
for (let i = 0; i < text.length; i++) {
  const c = text.charCodeAt(i)
  if (c == 10) lines++
  if (c != 32 && c != 10 && c != 13 && c != 9) nonSpace++
}
if (text.length > 0 && text.charCodeAt(text.length - 1) == 10) lines--
let paragraphs = 0
const blocks = text.replaceAll("\r\n", "\n").split("\n\n")
for (let i = 0; i < blocks.length; i++) if (blocks[i].trim().length > 0) paragraphs++
const s = sentences(text)
const lw = lowerWords(text)
const content = new Array<string>()
for (let i = 0; i < lw.length; i++) if (!isStopword(lw[i])) content.push(lw[i])
const counted = countWords(content)
const top = new Array<string>()
for (let i = 0; i < counted.length && i < 5; i++) top.push("{\"word\":" + quote(counted[i].word) + ",\"count\":" + counted[i].count.toString() + "}")
const unique = countWords(lw).length

print("{\"characters\":" + text.length.toString() +
  ",\"charactersNoSpaces\":" + nonSpace.toString() +
  ",\"words\":" + w.length.toString() +
  ",\"uniqueWords\":" + unique.toString() +
  ",\"sentences\":" + s.length.toString() +
  ",\"paragraphs\":" + paragraphs.toString() +
  ",\"lines\":" + lines.toString() +
  ",\"averageWordLength\":" + num(w.length > 0 ? <f64>letters / <f64>w.length : 0) +
  ",\"averageSentenceLength\":" + num(s.length > 0 ? <f64>w.length / <f64>s.length : 0) +
  ",\"topWords\":" + arr(top) + "}")
