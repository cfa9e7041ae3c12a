/**
 * Splits a document into runs of text, marking those an error is about, so the editor can
 * underline them behind the textarea (line and column are 1-based, end column exclusive).
 */

/** An error's place in the text. */
export interface Range {
  line: number
  column: number
  endLine?: number
  endColumn?: number
}

/** A run of text; `error` is the index of the error it belongs to. */
export interface Segment {
  text: string
  error?: number
}

/** Offset of a 1-based line:column in `text` (clamped to the text). */
export function offsetOf(text: string, line: number, column: number): number {
  let at = 0
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', at)
    if (nl < 0) return text.length
    at = nl + 1
  }
  const eol = text.indexOf('\n', at)
  const lineEnd = eol < 0 ? text.length : eol
  return Math.min(at + Math.max(0, column - 1), lineEnd)
}

/** The segments of `text` with each error's range marked (at least one character; overlaps go to the first). */
export function segments(text: string, errors: readonly Range[]): Segment[] {
  const marks: Array<{ from: number; to: number; error: number }> = []
  errors.forEach((e, i) => {
    const from = offsetOf(text, e.line, e.column)
    let to = e.endLine != null && e.endColumn != null ? offsetOf(text, e.endLine, e.endColumn) : from
    if (to <= from) {
      // A point: underline the word there, or one character.
      const word = /^[^\s:,[\]{}]+/.exec(text.slice(from))
      to = from + Math.max(1, word?.[0].length ?? 1)
    }
    marks.push({ from, to: Math.min(to, Math.max(text.length, from + 1)), error: i })
  })
  marks.sort((a, b) => a.from - b.from || a.error - b.error)
  const out: Segment[] = []
  let at = 0
  for (const m of marks) {
    if (m.to <= at) continue
    const from = Math.max(m.from, at)
    if (from > at) out.push({ text: text.slice(at, from) })
    // Past the end (an error at the very end): a space carries the underline.
    const piece = text.slice(from, m.to)
    out.push({ text: piece === '' || piece === '\n' ? ` ${piece}` : piece, error: m.error })
    at = Math.min(m.to, text.length)
  }
  if (at < text.length) out.push({ text: text.slice(at) })
  return out
}
