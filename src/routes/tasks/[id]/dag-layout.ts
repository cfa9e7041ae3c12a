/**
 * Lays a plan's steps out in columns by dependency depth (a step sits one
 * column right of its deepest dependency). Before the plan is known, steps
 * seen only through events have no known dependencies: they stack in one
 * column in the order they were first dispatched.
 */
import type { StepView } from '$lib/ui/task-tracker.svelte'

export const NODE_W = 200
export const NODE_H = 82
const GAP_X = 70
const GAP_Y = 22
const PAD = 12

/** A positioned node. */
export interface PlacedNode {
  step: StepView
  x: number
  y: number
  column: number
}
/** An edge from a dependency's right side to a dependant's left side. */
export interface PlacedEdge {
  from: string
  to: string
  d: string
  state: StepView['state']
}

/** Column of every step: 0 without dependencies, else one past its deepest dependency (cycles are cut). */
function depths(steps: StepView[]): Map<string, number> {
  const byId = new Map(steps.map((s) => [s.id, s]))
  const memo = new Map<string, number>()
  const visiting = new Set<string>()
  const depth = (id: string): number => {
    const known = memo.get(id)
    if (known != null) return known
    if (visiting.has(id)) return 0
    visiting.add(id)
    const deps = (byId.get(id)?.dependencies ?? []).filter((d) => byId.has(d))
    const d = deps.length === 0 ? 0 : 1 + Math.max(...deps.map(depth))
    visiting.delete(id)
    memo.set(id, d)
    return d
  }
  for (const s of steps) depth(s.id)
  return memo
}

/** Place steps and edges; returns the picture's size too. */
export function layoutDag(steps: StepView[]): { nodes: PlacedNode[]; edges: PlacedEdge[]; width: number; height: number } {
  const col = depths(steps)
  const columns = new Map<number, StepView[]>()
  for (const s of steps) {
    const c = col.get(s.id) ?? 0
    columns.set(c, [...(columns.get(c) ?? []), s])
  }
  const tallest = Math.max(1, ...[...columns.values()].map((c) => c.length))
  const height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y
  const nodes: PlacedNode[] = []
  for (const [c, list] of columns) {
    list.sort((a, b) => a.seq - b.seq || a.id.localeCompare(b.id, undefined, { numeric: true }))
    const colHeight = list.length * NODE_H + (list.length - 1) * GAP_Y
    const top = (height - colHeight) / 2
    list.forEach((step, i) => {
      nodes.push({ step, column: c, x: PAD + c * (NODE_W + GAP_X), y: top + i * (NODE_H + GAP_Y) })
    })
  }
  const at = new Map(nodes.map((n) => [n.step.id, n]))
  const edges: PlacedEdge[] = []
  for (const n of nodes) {
    for (const dep of n.step.dependencies) {
      const from = at.get(dep)
      if (from == null) continue
      const x1 = from.x + NODE_W
      const y1 = from.y + NODE_H / 2
      const x2 = n.x
      const y2 = n.y + NODE_H / 2
      const mx = (x1 + x2) / 2
      edges.push({ from: dep, to: n.step.id, state: from.step.state, d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` })
    }
  }
  const maxCol = Math.max(0, ...nodes.map((n) => n.column))
  return { nodes, edges, width: PAD * 2 + (maxCol + 1) * NODE_W + maxCol * GAP_X, height }
}
