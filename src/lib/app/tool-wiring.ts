/**
 * The app's tools (issue 14, vision §6): the runtime's tool host over this peer's
 * memory layer and orchestrator, and the donor's grants (Settings → Tools), saved
 * per profile in `localStorage` under `zerostate:tool-grants`. Wiring only: the
 * grants are checked and the calls validated, counted and traced in runtime/.
 */
import * as v from 'valibot'
import { ToolGrantsSchema, builtinTools, createToolHost, parseToolGrants, type ToolGrants, type ToolHost, type ToolSpec } from '../runtime/index.ts'
import type { TaskHandle, TaskRequest } from '../orchestrator/index.ts'

/** The storage key of the donor's grants. */
export const TOOL_GRANTS_KEY = 'zerostate:tool-grants'

/** Where the grants are saved (`localStorage`'s shape). */
export interface GrantsStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
}

/** What the tools reach. */
export interface ToolWiringComponents {
  /** Shared memory (the memory layer's). */
  memory: { get(namespace: string, key: string): unknown; set(namespace: string, key: string, value: unknown): Promise<void> }
  /** Submit a task on the mesh (read lazily: the orchestrator is built after the runtime). */
  submit: () => ((request: TaskRequest) => TaskHandle) | undefined
  /** Where the grants are saved. Default `localStorage`; `null` saves nothing (Node). */
  storage?: GrantsStorage | null
  /** Told when the grants change (the UI). */
  changed?: () => void
}

/** `window.zerostate.tools`. */
export interface ToolsApi {
  /** The tools this peer offers agents, with their schemas. */
  list(): ToolSpec[]
  /** The donor's grants now. */
  grants(): ToolGrants
  /**
   * Change the grants, saved for this profile: `all` (tools every agent may call), `agents` (tools by
   * agent name, `'*'` any agent), `httpOrigins` (origins `http.fetch` may reach, e.g. `https://example.org`),
   * `httpMaxBytes`, `httpTimeoutMs`. Throws RangeError, saying what is wrong, on a bad value.
   */
  setGrants(grants: Partial<ToolGrants>): ToolGrants
}

/** The default agent `llm.complete` asks when the call names none (it takes `{ question }`). */
export const DEFAULT_LLM_AGENT = 'answer-llm'

/** `toolWiring(components)`: the host for `createAgentRuntime({ tools })` and the API. */
export function toolWiring(c: ToolWiringComponents): { host: ToolHost; api: ToolsApi } {
  const storage = (): GrantsStorage | undefined => (c.storage === undefined ? globalThis.localStorage : (c.storage ?? undefined))
  let grants = load()

  function load(): ToolGrants {
    try {
      const raw = storage()?.getItem(TOOL_GRANTS_KEY)
      return raw == null ? parseToolGrants(undefined) : parseToolGrants(JSON.parse(raw))
    } catch {
      return parseToolGrants(undefined)
    }
  }

  async function submitted(request: TaskRequest): Promise<unknown> {
    const submit = c.submit()
    if (submit == null) throw new Error('the orchestrator is not running yet')
    return (await submit(request).done).output
  }

  const host = createToolHost({
    tools: builtinTools({
      memory: c.memory,
      llm: async (req, ctx) => {
        const agent = req.agent ?? DEFAULT_LLM_AGENT
        // Only the depth of nested calls goes on: the prompt's agent touches no memory of the task.
        const out = await submitted({
          description: `llm.complete for ${ctx.agent.name}`,
          agent,
          input: req.agent == null ? { question: req.prompt } : req.prompt,
          tools: { depth: ctx.scope.depth }
        })
        return typeof out === 'string' ? out : JSON.stringify(out)
      },
      // A nested step may touch what its task may, no more, one level deeper in nested calls.
      agent: async (req, ctx) =>
        await submitted({
          description: `agent.call from ${ctx.agent.name}`,
          ...(req.agent != null ? { agent: req.agent } : { capabilities: [req.capability!] }),
          ...(req.input !== undefined ? { input: req.input } : {}),
          tools: ctx.scope
        })
    }),
    grants: () => grants
  })

  return {
    host,
    api: {
      list: () => host.list(),
      grants: () => grants,
      setGrants(patch) {
        const res = v.safeParse(ToolGrantsSchema, { ...grants, ...patch })
        if (!res.success) {
          const i = res.issues[0]
          throw new RangeError(`The tool grants are not valid: ${i.path?.map((p) => String(p.key)).join('.') ?? ''} ${i.message}`.trim())
        }
        const bad = res.output.httpOrigins.find((o) => {
          try {
            return new URL(o).origin !== o
          } catch {
            return true
          }
        })
        if (bad != null) throw new RangeError(`"${bad}" is not an origin: write it as https://example.org (scheme, host and port only)`)
        grants = res.output
        try {
          storage()?.setItem(TOOL_GRANTS_KEY, JSON.stringify(grants))
        } catch {
          // Private mode or full storage: the grants hold for this tab's life.
        }
        c.changed?.()
        return grants
      }
    }
  }
}
