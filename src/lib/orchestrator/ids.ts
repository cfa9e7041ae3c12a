/** Branded ids of the orchestrator, made only by validating constructors. */
import { InvalidTaskRequestError } from './errors.ts'

/** A task's id: `t-` followed by 8–64 url-safe characters. */
export type TaskId = string & { readonly __brand: 'TaskId' }

const TASK_ID = /^t-[A-Za-z0-9_-]{8,64}$/

/** Validate and brand a task id. */
export function toTaskId(value: string): TaskId {
  if (!TASK_ID.test(value)) throw new InvalidTaskRequestError(`"${value.slice(0, 80)}" is not a task id`)
  return value as TaskId
}

/** A new random task id. */
export function newTaskId(): TaskId {
  const bytes = new Uint8Array(12)
  crypto.getRandomValues(bytes)
  let s = ''
  for (const b of bytes) s += b.toString(16).padStart(2, '0')
  return `t-${s}` as TaskId
}

/** A short random id for requests on the wire. */
export function randomId(): string {
  const bytes = new Uint8Array(9)
  crypto.getRandomValues(bytes)
  let s = ''
  for (const b of bytes) s += b.toString(16).padStart(2, '0')
  return s
}
