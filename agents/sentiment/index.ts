// sentiment (json-v1): lexicon-based sentiment of a text. Each word found in a small
// hand-made lexicon adds its score (−3…+3); a negator ("not", "never", "no", "n't")
// within the two preceding words flips the sign. Input: a JSON string.
import { inputText, respond } from "../lib/json-v1"
export { alloc } from "../lib/json-v1"
import { readJsonString, num, strArr } from "../lib/json"
import { lowerWords } from "../lib/text"

const LEXICON = "good:2,great:3,excellent:3,amazing:3,awesome:3,wonderful:3,fantastic:3,love:3,loved:3,like:2,liked:2,enjoy:2,enjoyed:2,happy:3,glad:2,pleased:2,nice:2,best:3,better:2,fine:1,helpful:2,easy:1,fast:1,quick:1,clean:1,beautiful:3,brilliant:3,perfect:3,recommend:2,recommended:2,reliable:2,fun:2,success:2,successful:2,win:2,works:1,thanks:2,thank:2,superb:3,delightful:3,calm:1,friendly:2,bad:-2,terrible:-3,awful:-3,horrible:-3,worst:-3,worse:-2,hate:-3,hated:-3,dislike:-2,poor:-2,sad:-2,angry:-3,annoying:-2,annoyed:-2,slow:-1,broken:-2,bug:-1,buggy:-2,crash:-2,crashed:-2,crashes:-2,fail:-2,failed:-2,failure:-2,problem:-1,problems:-1,difficult:-1,hard:-1,ugly:-2,useless:-3,waste:-2,wrong:-2,disappointed:-2,disappointing:-2,expensive:-1,confusing:-2,painful:-2,error:-1,errors:-1,unfortunately:-1,sorry:-1"
const NEGATORS = "not,no,never,none,nobody,nothing,neither,nor,cannot,don't,doesn't,didn't,isn't,aren't,wasn't,weren't,won't,can't,couldn't,shouldn't,wouldn't"

const lexicon = new Map<string, i32>()
const negators = new Set<string>()
function init(): void {
  if (lexicon.size > 0) return
  const pairs = LEXICON.split(",")
  for (let i = 0; i < pairs.length; i++) {
    const kv = pairs[i].split(":")
    lexicon.set(kv[0], I32.parseInt(kv[1]))
  }
  const negs = NEGATORS.split(",")
  for (let i = 0; i < negs.length; i++) negators.add(negs[i])
}

export function run(ptr: usize, len: i32): u64 {
  init()
  const text = readJsonString(inputText(ptr, len))
  if (text === null) abort("the input must be a JSON string of text")
  const words = lowerWords(text!)
  let score = 0
  const pos = new Array<string>()
  const neg = new Array<string>()
  for (let i = 0; i < words.length; i++) {
    const w = words[i]
    if (!lexicon.has(w)) continue
    let s = lexicon.get(w)
    const negated = (i > 0 && negators.has(words[i - 1])) || (i > 1 && negators.has(words[i - 2]))
    if (negated) s = -s
    score += s
    if (s > 0) pos.push(negated ? "not " + w : w)
    else neg.push(negated ? "not " + w : w)
  }
  const comparative = words.length > 0 ? <f64>score / <f64>words.length : 0
  const label = score > 0 ? "positive" : score < 0 ? "negative" : "neutral"
  return respond("{\"score\":" + score.toString() + ",\"comparative\":" + num(comparative) + ",\"label\":\"" + label +
    "\",\"positive\":" + strArr(pos) + ",\"negative\":" + strArr(neg) + ",\"words\":" + words.length.toString() + "}")
}
