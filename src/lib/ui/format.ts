/** Small formatting helpers shared by the pages. */

/** `abcdef…uvwxyz` for long ids and keys. */
export function shortId(id: string, keep = 6): string {
  if (id.length <= keep * 2 + 1) return id
  return `${id.slice(0, keep)}…${id.slice(-keep)}`
}

/** An author key `ed25519:…` shortened for display. */
export function shortAuthor(author: string): string {
  return shortId(author.replace(/^ed25519:/, ''), 5)
}

/** Pretty JSON for display; strings are shown as they are. */
export function pretty(value: unknown): string {
  if (value === undefined) return '(nothing)'
  if (typeof value === 'string') return value
  try {
    return JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.byteLength} bytes>` : v), 2) ?? String(value)
  } catch {
    return String(value)
  }
}

/** The user-facing sentence of an error (our errors' messages are written for users). */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const msg = err.message.trim()
    if (msg === '') return `${err.name}: something went wrong.`
    return msg.charAt(0).toUpperCase() + msg.slice(1) + (/[.!?]$/.test(msg) ? '' : '.')
  }
  return String(err)
}

/** Parse text as JSON when it is JSON, otherwise keep the text. */
export function jsonOrText(text: string): unknown {
  const t = text.trim()
  if (t === '') return undefined
  try {
    return JSON.parse(t) as unknown
  } catch {
    return text
  }
}

/** Parse JSON or say in a sentence why not. */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown }
  } catch (err) {
    return { ok: false, error: `This is not valid JSON: ${(err as Error).message}.` }
  }
}

/** Comma- or newline-separated list, trimmed, without empties. */
export function splitList(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s !== '')
}

/** `1.2 s`, `340 ms`. */
export function duration(ms: number | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return '—'
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`
}

/** A relative time like `3 min ago`. */
export function ago(at: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - at) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86400) return `${Math.round(s / 3600)} h ago`
  return new Date(at).toLocaleDateString()
}

/** The message shown when the API object of this build lacks a part. */
export function missingFeature(what: string): string {
  return `This build of ZeroState does not offer ${what} yet: the page will work once the app is updated.`
}

/** `1 step`, `3 steps`, `0 steps` (a count with its noun; `plural` when adding "s" is wrong). */
export function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`
}

/**
 * What the Mesh table says of a peer's donation: workers (Settings' count) and free
 * call slots are different things (each worker queues a few calls), so both are named.
 */
export function donorText(p: { donating: boolean; freeWorkers: number; workers?: number; relay?: boolean }): string {
  if (p.relay === true) return '—'
  if (!p.donating) return 'no'
  const slots = `${count(p.freeWorkers, 'call slot')} free`
  return p.workers != null && p.workers > 0 ? `yes: ${count(p.workers, 'worker')}, ${slots}` : `yes: ${slots}`
}

/**
 * Who holds an agent's bytes, the same on every page: a bundled agent ships with
 * the app, so every peer holds it (the count is this peer and the app peers known now).
 */
export function holdersText(a: { bundled: boolean; holders: readonly string[] }): string {
  return a.bundled ? `every peer (${a.holders.length} now)` : String(a.holders.length)
}

/** A 0..1 score as a whole percentage. */
export function percent(score: number): string {
  return `${Math.round(score * 100)} %`
}

/** A (possibly weighted) count of results, to one decimal. */
function results(n: number): string {
  return String(Number(n.toFixed(1)))
}

/** A reputation in words: its score and the verified results behind it; unknown is said as such. */
export function reputationText(r: { score: number; valid: number; invalid: number } | undefined): string {
  if (r == null || r.valid + r.invalid === 0) return 'not known yet'
  return `${percent(r.score)} (${results(r.valid)} valid, ${results(r.invalid)} wrong)`
}

/** A number of credits, rounded for reading. */
export function credits(n: number): string {
  return String(Math.round(n * 1000) / 1000)
}

/** How one step's result was verified, in a sentence (issue 12 `steps[].verification`). */
export function verificationText(v: { replicas: number; agreed: number; status?: string } | undefined): string {
  if (v == null) return 'Not verified: verification was off for this task, or it ran here.'
  if (v.status === 'trusted') return 'Accepted without a check: its user has earned trust on this agent (spot checks at random), or it ran in this profile.'
  if (v.status === 'unverified') return 'Not verified: no donor of another user was available to check it (no credit was paid for it).'
  return `Verified: ${v.agreed} of ${v.replicas} results from different users agreed.`
}
