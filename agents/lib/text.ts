// Text helpers shared by the text agents: words, sentences, stopwords.

/** Letters (ASCII and beyond Latin-1 symbols), digits and in-word apostrophes. */
export function isWordChar(c: i32): bool {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || (c >= 0xc0 && c != 0xd7 && c != 0xf7 && c < 0x2000)
}

/** The words of `text`, in order (apostrophes inside words kept: "don't"). */
export function words(text: string): string[] {
  const out = new Array<string>()
  let start = -1
  const n = text.length
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 32
    const inner = (c == 39 || c == 0x2019) && start >= 0 && i + 1 < n && isWordChar(text.charCodeAt(i + 1))
    if (isWordChar(c) || inner) {
      if (start < 0) start = i
    } else if (start >= 0) {
      out.push(text.substring(start, i))
      start = -1
    }
  }
  return out
}

/** Lowercased words. */
export function lowerWords(text: string): string[] {
  const w = words(text)
  for (let i = 0; i < w.length; i++) w[i] = w[i].toLowerCase()
  return w
}

function isTerminator(c: i32): bool { return c == 46 || c == 33 || c == 63 }
function isSpace(c: i32): bool { return c == 32 || c == 10 || c == 13 || c == 9 }

/** Split into sentences at . ! ? followed by whitespace or end; trimmed, empty ones dropped. */
export function sentences(text: string): string[] {
  const out = new Array<string>()
  let start = 0
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    const paragraphBreak = c == 10 && i + 1 < n && text.charCodeAt(i + 1) == 10
    if (isTerminator(c) || paragraphBreak) {
      let j = i + 1
      while (j < n && isTerminator(text.charCodeAt(j))) j++
      if (j >= n || isSpace(text.charCodeAt(j))) {
        const s = text.substring(start, j).trim()
        if (s.length > 0 && words(s).length > 0) out.push(s)
        start = j
        i = j - 1
      }
    }
  }
  const rest = text.substring(start).trim()
  if (rest.length > 0 && words(rest).length > 0) out.push(rest)
  return out
}

const STOP = new Set<string>()
const STOP_LIST = "a,about,above,after,again,against,all,also,am,an,and,any,are,as,at,be,because,been,before,being,below,between,both,but,by,can,could,did,do,does,doing,down,during,each,few,for,from,further,had,has,have,having,he,her,here,hers,herself,him,himself,his,how,i,if,in,into,is,it,its,itself,just,me,more,most,my,myself,no,nor,not,now,of,off,on,once,only,or,other,our,ours,ourselves,out,over,own,same,she,should,so,some,such,than,that,the,their,theirs,them,themselves,then,there,these,they,this,those,through,to,too,under,until,up,very,was,we,were,what,when,where,which,while,who,whom,why,will,with,would,you,your,yours,yourself,yourselves,it's,don't,i'm,can't,won't,isn't,aren't,wasn't,one,many,much,may,might,must,shall,us,via,yet"

/** Common English function words. */
export function isStopword(w: string): bool {
  if (STOP.size == 0) {
    const list = STOP_LIST.split(",")
    for (let i = 0; i < list.length; i++) STOP.add(list[i])
  }
  return STOP.has(w)
}

/** A word with its count. */
export class WordCount {
  constructor(public word: string, public count: i32) {}
}

/** Sort by count descending, then word ascending (deterministic). */
export function byCountThenWord(a: WordCount, b: WordCount): i32 {
  if (a.count != b.count) return b.count - a.count
  return a.word < b.word ? -1 : a.word > b.word ? 1 : 0
}

/** Count words into a sorted list. */
export function countWords(list: string[]): WordCount[] {
  const counts = new Map<string, i32>()
  for (let i = 0; i < list.length; i++) {
    const w = list[i]
    counts.set(w, counts.has(w) ? counts.get(w) + 1 : 1)
  }
  const keys = counts.keys()
  const out = new Array<WordCount>(keys.length)
  for (let i = 0; i < keys.length; i++) out[i] = new WordCount(keys[i], counts.get(keys[i]))
  out.sort(byCountThenWord)
  return out
}
