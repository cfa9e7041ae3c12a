/** The DAG of a document, for drawing (no parser needed: it reads the validated document). */
import type { WorkflowDocument, WorkflowGraph } from './types.ts'

/** Nodes in document order; an edge per dependency, labelled by why it exists. */
export function workflowGraph(doc: WorkflowDocument): WorkflowGraph {
  const nodes: WorkflowGraph['nodes'] = doc.steps.map((s) => {
    const modifiers: WorkflowGraph['nodes'][number]['modifiers'] = []
    if (s.when != null) modifiers.push('when')
    if (s.for_each != null) modifiers.push('for_each')
    if (s.loop != null) modifiers.push('loop')
    if (s.reflect != null) modifiers.push('reflect')
    return { id: s.id, kind: s.kind, label: stepLabel(doc, s.id), modifiers }
  })
  const edges: WorkflowGraph['edges'] = []
  doc.steps.forEach((s, i) => {
    for (const d of doc.dependencies[s.id] ?? []) {
      const kind = s.depends_on.includes(d)
        ? 'depends_on'
        : doc.execution.mode === 'sequential' && doc.steps[i - 1]?.id === d && !readsOnly(doc, s.id, d)
          ? 'sequence'
          : 'reads'
      edges.push({ from: d, to: s.id, kind })
    }
  })
  return { nodes, edges }
}

/** Sequential mode adds the previous step; when the step also reads it, the edge is a read. */
function readsOnly(doc: WorkflowDocument, step: string, dep: string): boolean {
  return doc.reads?.[step]?.includes(dep) ?? false
}

/** What a node says: its id and what runs it. */
export function stepLabel(doc: WorkflowDocument, id: string): string {
  const s = doc.steps.find((x) => x.id === id)
  if (s == null) return id
  switch (s.kind) {
    case 'agent':
      return `${s.id}: ${s.agent ?? s.capabilities?.join(', ') ?? ''}`
    case 'plan':
      return `${s.id}: plan`
    case 'workflow':
      return `${s.id}: workflow ${s.workflow ?? ''}`
    case 'debate':
      return `${s.id}: debate (${s.debate?.agents.join(', ') ?? ''})`
    case 'approval':
      return `${s.id}: approval`
  }
}
