/** An in-memory run journal (tests, benches, and runs that need not survive a reload). */
import type { WorkflowEvent, WorkflowJournal } from './types.ts'

/** Keeps events in an array; `structuredClone`s each so later mutation by the engine cannot rewrite history. */
export class MemoryWorkflowJournal implements WorkflowJournal {
  readonly #events: WorkflowEvent[]

  constructor(events: readonly WorkflowEvent[] = []) {
    this.#events = events.map((e) => structuredClone(e))
  }

  append(event: WorkflowEvent): void {
    this.#events.push(structuredClone(event))
  }

  events(): readonly WorkflowEvent[] {
    return this.#events
  }
}
