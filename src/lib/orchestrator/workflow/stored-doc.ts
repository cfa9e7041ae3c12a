/**
 * The parsed document kept in a run's `run-started` event, so a tab resuming the run after a
 * reload skips parsing its YAML again (yaml + valibot + CEL: 25-120 ms for 100 steps on this
 * machine, the largest part of a resume after the lock). Light: no parser import.
 */
import type { WorkflowDocument, WorkflowEvent } from './types.ts'

/** The shape version of a stored document; bump it when `WorkflowDocument` changes shape. */
export const WORKFLOW_DOC_FORMAT = 1
/** A document whose JSON is larger is not stored (the YAML is parsed on resume instead). */
const MAX_STORED_BYTES = 128 * 1024

/** `{ doc, docFormat }` to put into `run-started`, or nothing when the document is large. Positions are left out (only validation reads them). */
export function compactDocument(doc: WorkflowDocument): { doc?: WorkflowDocument; docFormat?: number } {
  const compact: WorkflowDocument = { ...doc, positions: {} }
  try {
    if (JSON.stringify(compact).length > MAX_STORED_BYTES) return {}
  } catch {
    return {}
  }
  return { doc: compact, docFormat: WORKFLOW_DOC_FORMAT }
}

/**
 * The document a `run-started` event carries, with the hash it was started from, when it is of this
 * format and has the document's shape; otherwise undefined (parse the event's YAML).
 */
export function storedDocument(e: Extract<WorkflowEvent, { type: 'run-started' }>): { doc: WorkflowDocument; hash: string } | undefined {
  const d = e.doc as Partial<WorkflowDocument> | undefined
  if (e.docFormat !== WORKFLOW_DOC_FORMAT || d == null || typeof d !== 'object') return undefined
  const isRecord = (x: unknown): boolean => x != null && typeof x === 'object' && !Array.isArray(x)
  if (
    typeof d.name !== 'string' ||
    !Array.isArray(d.steps) ||
    d.steps.length === 0 ||
    !d.steps.every(
      (s) => isRecord(s) && typeof s.id === 'string' && typeof s.kind === 'string' && typeof s.output === 'string' && Array.isArray(s.depends_on)
    ) ||
    !Array.isArray(d.agents) ||
    !isRecord(d.execution) ||
    !isRecord(d.dependencies) ||
    !isRecord(d.reads)
  )
    return undefined
  return { doc: { ...(d as WorkflowDocument), positions: {} }, hash: e.docHash }
}
