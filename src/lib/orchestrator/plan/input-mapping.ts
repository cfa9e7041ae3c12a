/** Resolves a step's input mapping against the task input and finished steps' outputs. */
import type { InputMapping } from './plan-schema.ts'

/** Read a dotted path (`items.0.text`) inside a value; undefined when absent. */
export function readPath(value: unknown, path: string | undefined): unknown {
  if (path == null || path === '') return value
  let cur: unknown = value
  for (const key of path.split('.')) {
    if (cur == null || typeof cur !== 'object') return undefined
    if (!Object.hasOwn(cur, key)) return undefined
    cur = (cur as Record<string, unknown>)[key]
  }
  return cur
}

function asText(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? '')
}

/** The input of a step, given the task input and outputs so far. */
export function resolveInput(mapping: InputMapping, taskInput: unknown, outputs: ReadonlyMap<string, unknown>): unknown {
  if ('value' in mapping) return mapping.value
  if ('template' in mapping) {
    return mapping.template.replace(
      /\{\{\s*(task\.input|steps\.([A-Za-z0-9_-]+)\.output(?:\.([^}\s]+))?)\s*\}\}/g,
      (_all, _whole: string, step?: string, path?: string) => {
        if (step == null) return asText(taskInput)
        return asText(readPath(outputs.get(step), path))
      }
    )
  }
  if (mapping.from === 'task.input') return taskInput
  return readPath(outputs.get(mapping.step), mapping.path)
}

/** Whether a step reads the task's own input (directly or through a template). */
export function readsTaskInput(mapping: InputMapping): boolean {
  if ('template' in mapping) return /\{\{\s*task\.input\s*\}\}/.test(mapping.template)
  return 'from' in mapping && mapping.from === 'task.input'
}
