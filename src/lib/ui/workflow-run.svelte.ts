/**
 * Live state of one workflow run for the task page: the run as projected from its journal
 * (every step, every unit of work, the approval waiting), refreshed at most every 100 ms
 * while events arrive, in whichever tab of the profile runs it.
 */
import type { RunView, WorkflowHandle } from '$lib/index'
import { errorText } from './format'

/** Refresh the picture at most this often (a map-reduce journals thousands of events). */
const REFRESH_MS = 100

/** Live state of a workflow run. */
export class WorkflowRunState {
  readonly id: string
  readonly handle: WorkflowHandle
  #view = $state.raw<RunView>()
  #error = $state<string | undefined>()
  #errorName = $state<string | undefined>()
  #timer: ReturnType<typeof setTimeout> | undefined

  constructor(handle: WorkflowHandle) {
    this.id = handle.id
    this.handle = handle
    // A copy: the handle's view is updated in place, the page needs a new object to redraw.
    this.#view = structuredClone(handle.view())
    handle.on('event', () => {
      this.#schedule()
    })
    handle.done.then(
      () => {
        this.#refresh()
      },
      (err: unknown) => {
        this.#refresh()
        this.#error = errorText(err)
        this.#errorName = err instanceof Error ? err.name : undefined
      }
    )
  }

  #schedule(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      this.#refresh()
    }, REFRESH_MS)
  }

  #refresh(): void {
    this.#view = structuredClone(this.handle.view())
  }

  get view(): RunView {
    return this.#view as RunView
  }
  get error(): string | undefined {
    return this.#error
  }
  get errorName(): string | undefined {
    return this.#errorName
  }
  get finished(): boolean {
    const s = this.view.status
    return s === 'succeeded' || s === 'failed' || s === 'cancelled' || this.#error != null
  }
}

const runs = new Map<string, WorkflowRunState>()
const MAX_RUNS = 50

/** The state of a run, created (and attached to its journal) on first call. */
export function trackWorkflow(handle: WorkflowHandle): WorkflowRunState {
  let r = runs.get(handle.id)
  if (r == null) {
    r = new WorkflowRunState(handle)
    runs.set(handle.id, r)
    for (const id of runs.keys()) {
      if (runs.size <= MAX_RUNS) break
      runs.delete(id)
    }
  }
  return r
}

/** The example input written on a bundled example's first line (`# example input: <JSON>`). */
export function exampleInput(yaml: string): string {
  const m = /^# example input: (.*)$/m.exec(yaml)
  if (m == null) return ''
  try {
    const v = JSON.parse(m[1]) as unknown
    return typeof v === 'string' ? v : JSON.stringify(v)
  } catch {
    return m[1]
  }
}

/** The bundled example workflows (one per pattern), by file name, loaded on demand. */
export async function bundledExamples(): Promise<Array<{ file: string; name: string; description: string; yaml: string }>> {
  const files = import.meta.glob('../orchestrator/workflow/examples/*.yaml', { query: '?raw', import: 'default' }) as Record<string, () => Promise<string>>
  const out = await Promise.all(
    Object.entries(files).map(async ([path, load]) => {
      const yaml = await load()
      return {
        file: path.slice(path.lastIndexOf('/') + 1),
        name: /^name:\s*(.+)$/m.exec(yaml)?.[1]?.trim() ?? path,
        description: /^description:\s*"?(.+?)"?\s*$/m.exec(yaml)?.[1] ?? '',
        yaml
      }
    })
  )
  return out.sort((a, b) => a.file.localeCompare(b.file, undefined, { numeric: true }))
}
