/**
 * Planners and the planner chain (vision §1): the in-browser LLM when WebGPU is
 * there, else a peer that advertises `llm`, else the deterministic rules. The
 * plan records which planner made it and why earlier ones were skipped.
 */
import type { AgentCatalog } from '../components.ts'
import { MissingInputError, OrchestratorError, PlannerUnavailableError, PlanningError, toError } from '../errors.ts'
import { readsTaskInput } from './input-mapping.ts'
import { logger } from '../../core/index.ts'
import type { Plan, PlanDraft, PlannerName } from './plan-schema.ts'

const log = logger('orchestrator:planner')

/** What a planner is asked. */
export interface PlanRequest {
  description: string
  capabilities?: readonly string[]
  /**
   * Whether the task came with an input. `false`: the planner may take the input
   * from the description ("summarize: …", "calculate 2*(3+4)"); a plan that still
   * reads the task input is refused with `MissingInputError` before anything runs.
   * Undefined: not known (the input is not checked).
   */
  hasInput?: boolean
  /**
   * What the input looks like, for LLM planners' prompts (`describeInput`): its start, or its size and
   * kind for bytes. Bounded (INPUT_PREVIEW_CHARS): a plan needs the input's nature, not all of it.
   */
  inputPreview?: string
}

/** At most this many characters of a task's input go into a plan prompt. */
export const INPUT_PREVIEW_CHARS = 600

/** A short description of a task's input for a plan prompt; undefined when there is none. */
export function describeInput(input: unknown, max = INPUT_PREVIEW_CHARS): string | undefined {
  if (input == null) return undefined
  if (input instanceof Uint8Array) return input.byteLength === 0 ? undefined : `(${input.byteLength} bytes of binary data)`
  let text: string
  if (typeof input === 'string') text = input
  else {
    try {
      text = JSON.stringify(input) ?? String(input)
    } catch {
      text = String(input)
    }
  }
  if (text.trim() === '') return undefined
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters in all)`
}

/** One capability on offer, as planners see the catalog. */
export interface CapabilityInfo {
  capability: string
  /** How many agents offer it. */
  agents: number
  /** Cheapest price, credits. */
  minPrice: number
  /** A few agents' descriptions, to help an LLM pick. */
  examples: string[]
  /** Every agent offering it is an `llm-prompt` agent: it runs only where a language model is loaded. */
  needsModel?: boolean
}

/** Turns a description into a plan draft. */
export interface Planner {
  readonly name: PlannerName
  /** Throws `PlannerUnavailableError` to let the chain try the next planner. */
  plan(request: PlanRequest, catalog: readonly CapabilityInfo[], opts?: { signal?: AbortSignal }): Promise<PlanDraft & { notes?: string[] }>
}

/** Summarize the catalog per capability (sorted by name). */
export function capabilityCatalog(catalog: AgentCatalog, maxExamples = 2): CapabilityInfo[] {
  const map = new Map<string, CapabilityInfo>()
  const modelOnly = new Map<string, boolean>()
  for (const a of catalog.list()) {
    for (const c of a.capabilities) {
      let info = map.get(c)
      if (info == null) {
        info = { capability: c, agents: 0, minPrice: Infinity, examples: [] }
        map.set(c, info)
        modelOnly.set(c, true)
      }
      info.agents++
      if (a.abi !== 'llm-prompt') modelOnly.set(c, false)
      if (a.price < info.minPrice) info.minPrice = a.price
      if (info.examples.length < maxExamples) info.examples.push(`${a.name}: ${a.description ?? ''}`.slice(0, 160))
    }
  }
  for (const [c, only] of modelOnly) if (only) map.get(c)!.needsModel = true
  return [...map.values()].sort((a, b) => a.capability.localeCompare(b.capability))
}

/** A chain of planners tried in order. */
export interface PlannerChain {
  /**
   * Plan with the first planner that is available and whose plan `validate`
   * accepts. Throws `PlanningError` naming why each planner failed, or the
   * last planner's own error when it is an OrchestratorError.
   */
  plan(request: PlanRequest, catalog: readonly CapabilityInfo[], validate: (plan: Plan) => Plan, opts?: { signal?: AbortSignal }): Promise<Plan>
}

/** Build the chain (e.g. `[llmPlanner(…), remotePlanner(…), deterministicPlanner()]`). */
export function plannerChain(planners: readonly Planner[]): PlannerChain {
  return {
    async plan(request, catalog, validate, opts) {
      const notes: string[] = []
      let last: Error | undefined
      for (const p of planners) {
        opts?.signal?.throwIfAborted()
        try {
          const { notes: own, ...draft } = await p.plan(request, catalog, opts)
          const all = [...notes, ...(own ?? [])]
          const plan = validate({ ...draft, planner: p.name, ...(all.length > 0 ? { notes: all } : {}) })
          if (request.hasInput === false) {
            const reader = plan.subtasks.find((s) => readsTaskInput(s.input))
            if (reader != null)
              throw new MissingInputError(
                `This task needs an input: step "${reader.id}" (${reader.capabilities.join(', ')}) reads it. Give one in the Input field, or write it in the description after a colon ("summarize: your text").`
              )
          }
          return plan
        } catch (err) {
          if (opts?.signal?.aborted === true || err instanceof MissingInputError) throw err
          last = toError(err)
          notes.push(`${p.name}: ${last.message}`.slice(0, 480))
          log('planner %s failed: %s', p.name, last.message)
        }
      }
      if (last instanceof OrchestratorError && !(last instanceof PlannerUnavailableError)) throw last
      throw new PlanningError(`No planner produced a valid plan (${notes.join('; ')})`, { cause: last })
    }
  }
}
