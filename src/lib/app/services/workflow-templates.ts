/**
 * Saved workflows (templates) in shared memory, namespace `workflows`, so everyone on the
 * mesh sees them (WORKFLOWS.md "API": `workflows.save/list/get`). Values read back are
 * checked: a record that is not a template is skipped.
 */
import * as v from 'valibot'
import { OrchestratorError } from '../../orchestrator/index.ts'

/** The shared-memory namespace templates live in. */
export const TEMPLATES_NAMESPACE = 'workflows'
/** The largest document a template may hold. */
export const MAX_TEMPLATE_CHARS = 256 * 1024

const TemplateSchema = v.object({
  yaml: v.pipe(v.string(), v.maxLength(MAX_TEMPLATE_CHARS)),
  description: v.optional(v.pipe(v.string(), v.maxLength(1000))),
  savedAt: v.optional(v.number()),
  savedBy: v.optional(v.string())
})

/** A template name: what a `workflow:` step names. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/

/** What templates need: shared memory. */
export interface WorkflowTemplatesComponents {
  memory: {
    get(ns: string, key: string): unknown
    set(ns: string, key: string, value: unknown): Promise<void>
    keys(ns: string): string[]
  }
  /** This profile's key, recorded with what it saves. */
  publicKey?: string
}

/** Saved workflows. */
export interface WorkflowTemplates {
  save(name: string, yaml: string): Promise<void>
  list(): Array<{ name: string; description?: string; savedAt?: number }>
  get(name: string): string | undefined
}

/** `workflowTemplates()(components)`. */
export function workflowTemplates(): (components: WorkflowTemplatesComponents) => WorkflowTemplates {
  return ({ memory, publicKey }) => {
    const read = (name: string): v.InferOutput<typeof TemplateSchema> | undefined => {
      const parsed = v.safeParse(TemplateSchema, memory.get(TEMPLATES_NAMESPACE, name))
      return parsed.success ? parsed.output : undefined
    }
    return {
      async save(name, yaml) {
        if (typeof name !== 'string' || !NAME_RE.test(name))
          throw new OrchestratorError('Name the workflow with letters, digits, spaces, dots, dashes or underscores (at most 100)')
        if (typeof yaml !== 'string' || yaml.trim() === '') throw new OrchestratorError('The workflow document is empty')
        if (yaml.length > MAX_TEMPLATE_CHARS) throw new OrchestratorError(`The workflow document is over ${MAX_TEMPLATE_CHARS / 1024} KB: split it`)
        const description = /^description:\s*["']?(.{1,300}?)["']?\s*$/m.exec(yaml)?.[1]
        await memory.set(TEMPLATES_NAMESPACE, name, {
          yaml,
          ...(description != null ? { description } : {}),
          savedAt: Date.now(),
          ...(publicKey != null ? { savedBy: publicKey } : {})
        })
      },
      list() {
        const out: Array<{ name: string; description?: string; savedAt?: number }> = []
        for (const name of memory.keys(TEMPLATES_NAMESPACE)) {
          const t = read(name)
          if (t != null)
            out.push({ name, ...(t.description != null ? { description: t.description } : {}), ...(t.savedAt != null ? { savedAt: t.savedAt } : {}) })
        }
        return out.sort((a, b) => a.name.localeCompare(b.name))
      },
      get: (name) => read(name)?.yaml
    }
  }
}
