/**
 * Language models as presence advertises them and as routing uses them (issue 14): a peer
 * with a model loaded names each model with its family, its context and a rough speed, and
 * an `llm-prompt` step goes only to a peer whose model meets the agent's family/list and
 * minimum context, the faster first.
 *
 * Each model travels as one capability, `llm-run.<family>.c<context>.t<tokens/s>.<name>`
 * (e.g. `llm-run.llama.c512.t639.zs-tiny-llama`), not as a new presence field: the presence
 * schema is strict, so a field would make every peer of an older version drop (and strike)
 * the presence of a newer one, while a capability passes its checks unchanged. On receipt it
 * is parsed with bounds ({@link parseLlmRuns}); one that does not parse is ignored.
 *
 * The advertised speed is a claim. Routing believes it only as a prior worth
 * {@link CLAIM_PRIOR_TOKENS} tokens: what this peer measured of the donor's streamed tokens
 * ({@link LlmSpeedBook}) soon outweighs it, and a claim is capped at {@link MAX_CLAIMED_TPS}
 * (issue 11 point 6 made capacity observed for the same reason).
 */

/** The capability every peer with a loaded model advertises for each one. */
export const LLM_RUN_PREFIX = 'llm-run.'
/** Models advertised at most (the rest are left out of presence). */
export const MAX_ADVERTISED_MODELS = 4
/** Largest context believed (tokens); the manifest's `minContext` has the same bound. */
export const MAX_ADVERTISED_CONTEXT = 1_048_576
/** Largest claimed speed believed (tokens/s); a claim above it counts as this. */
export const MAX_CLAIMED_TPS = 5000
/** What a peer's claimed speed weighs against measurements, in tokens (a claim is a prior, not a fact). */
export const CLAIM_PRIOR_TOKENS = 16
/** Speed assumed of a peer that claims none and was never measured (tokens/s): neither favoured nor last. */
export const UNKNOWN_TPS = 20

/** A model as a peer advertises it. */
export interface AdvertisedModel {
  /** Its name as a slug (lowercase, `[a-z0-9-]`), cut to fit the capability. */
  name: string
  /** Its family as a slug (llama, qwen2, …). */
  family: string
  /** Its context in tokens. */
  context: number
  /** Its claimed generation speed (tokens/s), 0 when not measured. */
  tps: number
}

/** What an `llm-prompt` agent needs of a model (its manifest's `llm.model`). */
export interface LlmNeed {
  families?: readonly string[]
  models?: readonly string[]
  minContext?: number
}

/** A name as presence carries it: lowercase, `[a-z0-9-]`, at most `max` characters. */
export function modelSlug(s: string, max = 48): string {
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, max)
      .replace(/-+$/, '') || 'unnamed'
  )
}

const CAPABILITY_MAX = 64
const RUN = /^llm-run\.([a-z0-9-]{1,16})\.c(\d{1,7})\.t(\d{1,5})\.([a-z0-9-]{1,40})$/

/** The capability that advertises `model` (always valid for presence: at most 64 characters of `[a-z0-9.-]`). */
export function encodeLlmRun(model: { name: string; family: string; context: number; tokensPerSecond?: number }): string {
  const family = modelSlug(model.family, 16)
  const context = Math.max(1, Math.min(MAX_ADVERTISED_CONTEXT, Math.floor(Number.isFinite(model.context) ? model.context : 1)))
  // Rough: two significant figures, so the running average does not change presence at every generation.
  const tps = Math.max(0, Math.min(99_999, roughly(Number.isFinite(model.tokensPerSecond) ? (model.tokensPerSecond ?? 0) : 0)))
  const head = `${LLM_RUN_PREFIX}${family}.c${context}.t${tps}.`
  return head + modelSlug(model.name, Math.min(40, CAPABILITY_MAX - head.length))
}

function roughly(n: number): number {
  if (n <= 0) return 0
  const unit = 10 ** Math.max(0, Math.floor(Math.log10(n)) - 1)
  return Math.round(n / unit) * unit
}

/** The models a peer advertises in its capabilities (at most {@link MAX_ADVERTISED_MODELS}); malformed ones are skipped. */
export function parseLlmRuns(capabilities: readonly string[]): AdvertisedModel[] {
  const out: AdvertisedModel[] = []
  for (const c of capabilities) {
    if (!c.startsWith(LLM_RUN_PREFIX)) continue
    const m = RUN.exec(c)
    if (m == null) continue
    const context = Number(m[2])
    if (context < 1 || context > MAX_ADVERTISED_CONTEXT) continue
    out.push({ family: m[1], context, tps: Number(m[3]), name: m[4] })
    if (out.length >= MAX_ADVERTISED_MODELS) break
  }
  return out
}

/** Whether an advertised model meets `need` (names and families compared as slugs). */
export function advertisedFits(model: AdvertisedModel, need: LlmNeed | undefined): boolean {
  if (need == null) return true
  if (need.minContext != null && model.context < need.minContext) return false
  const families = need.families ?? []
  const models = need.models ?? []
  if (families.length === 0 && models.length === 0) return true
  return families.some((f) => modelSlug(f, 16) === model.family) || models.some((n) => modelSlug(n, model.name.length) === model.name)
}

/**
 * Whether a peer advertising `capabilities` can run an agent needing `need`, and with which of its
 * models (the fastest claimed that fits). A peer of an older version advertises `llm-prompt` with
 * `llm-family-*` / `llm-model-*` but no `llm-run.*`: its context is unknown, so only the family or
 * name is checked (the donor still refuses a model that does not fit, and the step goes elsewhere).
 */
export function peerLlmFit(capabilities: readonly string[], need: LlmNeed | undefined): { fits: boolean; model?: AdvertisedModel } {
  const runs = parseLlmRuns(capabilities)
  if (runs.length > 0) {
    let best: AdvertisedModel | undefined
    for (const m of runs) if (advertisedFits(m, need) && (best == null || m.tps > best.tps)) best = m
    return best == null ? { fits: false } : { fits: true, model: best }
  }
  const families = need?.families ?? []
  const models = need?.models ?? []
  if (families.length === 0 && models.length === 0) return { fits: true }
  const fits =
    families.some((f) => capabilities.includes(`llm-family-${modelSlug(f)}`)) || models.some((n) => capabilities.includes(`llm-model-${modelSlug(n)}`))
  return { fits }
}

/** What routing reads of measured LLM speed. */
export interface LlmSpeedSource {
  /** Tokens/s of `peer` as routing believes it: measurements, with the claim (capped) as a prior. */
  speed(peer: string, claimedTps?: number): number
}

interface Measured {
  tokens: number
  ms: number
}

/** Options of the speed book. */
export interface LlmSpeedBookInit {
  /** Peers remembered (least recently measured forgotten beyond this). Default 1024. */
  maxPeers?: number
}

/**
 * Generation speed of each donor as this peer measured it: the tokens a donor streamed for our
 * `llm-prompt` steps over the time between its first and last token (the dispatcher writes; the
 * router reads). The estimate is (prior tokens + measured tokens) / (prior time + measured time),
 * the prior being {@link CLAIM_PRIOR_TOKENS} tokens at the claimed speed (capped at
 * {@link MAX_CLAIMED_TPS}): a donor claiming 99,999 tokens/s that streams 10 counts about 10 once it
 * streamed a few dozen tokens for us.
 */
export class LlmSpeedBook implements LlmSpeedSource {
  readonly #peers = new Map<string, Measured>()
  readonly #maxPeers: number

  constructor(init: LlmSpeedBookInit = {}) {
    this.#maxPeers = init.maxPeers ?? 1024
  }

  /** `tokens` pieces streamed by `peer` over `ms` (first to last token). Ignored below 2 tokens or without time. */
  observe(peer: string, tokens: number, ms: number): void {
    if (!Number.isFinite(tokens) || !Number.isFinite(ms) || tokens < 2 || ms <= 0) return
    const m = this.#peers.get(peer) ?? { tokens: 0, ms: 0 }
    this.#peers.delete(peer)
    // Pieces after the first over the span between first and last: the decode rate, without the prompt's evaluation.
    m.tokens += tokens - 1
    m.ms += ms
    this.#peers.set(peer, m)
    if (this.#peers.size > this.#maxPeers) this.#peers.delete(this.#peers.keys().next().value as string)
  }

  speed(peer: string, claimedTps?: number): number {
    const claim = claimedTps != null && Number.isFinite(claimedTps) && claimedTps > 0 ? Math.min(claimedTps, MAX_CLAIMED_TPS) : undefined
    const m = this.#peers.get(peer)
    if (m == null || m.tokens <= 0) return claim ?? UNKNOWN_TPS
    const prior = claim ?? UNKNOWN_TPS
    return (CLAIM_PRIOR_TOKENS + m.tokens) / (CLAIM_PRIOR_TOKENS / prior + m.ms / 1000)
  }

  /** What was measured of `peer` (tests, diagnostics). */
  measured(peer: string): Readonly<Measured> | undefined {
    const m = this.#peers.get(peer)
    return m == null ? undefined : { ...m }
  }
}
