/**
 * Lays a workflow's steps out in columns by dependency depth (a step sits one column right
 * of its deepest dependency; cycles, which the validator refuses anyway, are cut).
 */

export const NODE_W = 190
export const NODE_H = 84
const GAP_X = 56
const GAP_Y = 18
const PAD = 10

/** A node to place: its id and the ids it depends on. */
export interface GraphNodeIn {
  id: string
  deps: readonly string[]
}

/** Where a node goes. */
export interface Placed {
  id: string
  x: number
  y: number
  column: number
}

/** Place nodes (in the order given within a column) and edges; returns the picture's size too. */
export function layoutGraph(nodes: readonly GraphNodeIn[]): {
  nodes: Placed[]
  edges: Array<{ from: string; to: string; d: string }>
  width: number
  height: number
} {
  const byId = new Map(nodes.map((n) => [n.id, n]))
  const memo = new Map<string, number>()
  const visiting = new Set<string>()
  const depth = (id: string): number => {
    const known = memo.get(id)
    if (known != null) return known
    if (visiting.has(id)) return 0
    visiting.add(id)
    const deps = (byId.get(id)?.deps ?? []).filter((d) => byId.has(d))
    const d = deps.length === 0 ? 0 : 1 + Math.max(...deps.map(depth))
    visiting.delete(id)
    memo.set(id, d)
    return d
  }
  const columns = new Map<number, string[]>()
  for (const n of nodes) {
    const c = depth(n.id)
    columns.set(c, [...(columns.get(c) ?? []), n.id])
  }
  const tallest = Math.max(1, ...[...columns.values()].map((c) => c.length))
  const height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y
  const placed: Placed[] = []
  for (const [c, list] of columns) {
    const colHeight = list.length * NODE_H + (list.length - 1) * GAP_Y
    const top = (height - colHeight) / 2
    list.forEach((id, i) => {
      placed.push({ id, column: c, x: PAD + c * (NODE_W + GAP_X), y: top + i * (NODE_H + GAP_Y) })
    })
  }
  const at = new Map(placed.map((p) => [p.id, p]))
  const edges: Array<{ from: string; to: string; d: string }> = []
  for (const n of nodes) {
    const to = at.get(n.id)
    if (to == null) continue
    for (const dep of new Set(n.deps)) {
      const from = at.get(dep)
      if (from == null) continue
      const x1 = from.x + NODE_W
      const y1 = from.y + NODE_H / 2
      const x2 = to.x
      const y2 = to.y + NODE_H / 2
      const mx = (x1 + x2) / 2
      edges.push({ from: dep, to: n.id, d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` })
    }
  }
  const maxCol = Math.max(0, ...placed.map((p) => p.column))
  return { nodes: placed, edges, width: PAD * 2 + (maxCol + 1) * NODE_W + maxCol * GAP_X, height }
}
