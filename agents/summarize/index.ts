// summarize (WASI): extractive summary in the TextRank way. Sentences are nodes,
// edges weigh shared content words normalised by sentence lengths (Mihalcea &
// Tarau 2004); PageRank (d = 0.85) ranks them; the top three, in text order, form the summary.
import { readStdin, print, fail } from "../lib/wasi"
import { num, quote, arr } from "../lib/json"
import { sentences, lowerWords, isStopword } from "../lib/text"

const text = readStdin()
const sents = sentences(text)
const n = sents.length
if (n == 0) fail("the input has no sentences to summarise")

const bags = new Array<Set<string>>(n)
for (let i = 0; i < n; i++) {
  const set = new Set<string>()
  const lw = lowerWords(sents[i])
  for (let k = 0; k < lw.length; k++) if (!isStopword(lw[k])) set.add(lw[k])
  bags[i] = set
}

const weight = new StaticArray<f64>(n * n)
const outSum = new StaticArray<f64>(n)
for (let i = 0; i < n; i++) {
  for (let j = 0; j < n; j++) {
    if (i == j) continue
    const a = bags[i]
    const b = bags[j]
    if (a.size < 1 || b.size < 1) continue
    let shared = 0
    const keys = a.values()
    for (let k = 0; k < keys.length; k++) if (b.has(keys[k])) shared++
    if (shared == 0) continue
    const denom = Math.log(<f64>a.size + 1) + Math.log(<f64>b.size + 1)
    const w = <f64>shared / denom
    weight[i * n + j] = w
    outSum[i] += w
  }
}

let rank = new StaticArray<f64>(n)
for (let i = 0; i < n; i++) rank[i] = 1.0 / <f64>n
for (let iter = 0; iter < 50; iter++) {
  const next = new StaticArray<f64>(n)
  for (let i = 0; i < n; i++) {
    let sum: f64 = 0
    for (let j = 0; j < n; j++) {
      if (outSum[j] > 0) sum += weight[j * n + i] / outSum[j] * rank[j]
    }
    next[i] = 0.15 / <f64>n + 0.85 * sum
  }
  rank = next
}

// Pick the top k by rank (ties: earlier sentence first), then restore text order.
const k = n < 3 ? n : 3
const picked = new Array<bool>(n)
for (let c = 0; c < k; c++) {
  let best = -1
  for (let i = 0; i < n; i++) if (!picked[i] && (best < 0 || rank[i] > rank[best] + 1e-12)) best = i
  picked[best] = true
}
const chosen = new Array<string>()
const idx = new Array<string>()
const scores = new Array<string>()
for (let i = 0; i < n; i++) {
  scores.push(num(rank[i]))
  if (picked[i]) { chosen.push(sents[i]); idx.push(i.toString()) }
}
print("{\"summary\":" + quote(chosen.join(" ")) + ",\"sentences\":" + arr(idx) + ",\"scores\":" + arr(scores) + ",\"totalSentences\":" + n.toString() + "}")
