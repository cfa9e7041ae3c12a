/** "Run again": resubmit a task of this profile with the request its journal kept. */
import { goto } from '$app/navigation'
import type { ZeroStateApi } from '$lib/index'
import { trackTask } from '$lib/ui/task-tracker.svelte'
import { trackWorkflow } from '$lib/ui/workflow-run.svelte'

/**
 * Resubmit task `id` and open the new task's page; throws a sentence when the request is not known.
 * `keptInput`: the task's byte input as the history kept it (a file), sent again in place of the dropped one.
 */
export async function runAgain(api: ZeroStateApi, id: string, keptInput?: Uint8Array): Promise<void> {
  const request = typeof api.taskRequest === 'function' ? api.taskRequest(id) : undefined
  if (request == null) throw new Error('This task’s request was not kept, so it cannot be run again.')
  const { inputDropped, ...again } = request
  const handle = api.submit(inputDropped === true && keptInput != null ? { ...again, input: keptInput } : again)
  trackTask(handle)
  await goto(`/tasks/${handle.id}`)
}

/** Said next to Run again when the input was too large to journal. */
export const INPUT_NOT_KEPT = 'Its input was too large to keep in the history (over 16 KB, or a file), so it runs again without it.'

/** Run workflow run `id` again with the document and input it started with, and open the new run's page. */
export async function runWorkflowAgain(api: ZeroStateApi, id: string): Promise<void> {
  const request = api.workflows?.request(id)
  if (request == null) throw new Error('This run’s document was not kept, so it cannot be run again.')
  const handle = api.runWorkflow(request.yaml, request.input)
  trackWorkflow(handle)
  await goto(`/tasks/${handle.id}`)
}
