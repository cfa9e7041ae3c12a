import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'
import { loadWorkflowParser, loadWorkflows } from './index.ts'

describe('the workflow room loads its heavy parts lazily', () => {
  it('index.ts pulls in neither yaml, CEL nor the JSON Schema validator statically (a browser bundle with code splitting)', async () => {
    const out = await build({
      entryPoints: [new URL('./index.ts', import.meta.url).pathname],
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      outdir: '/virtual',
      logLevel: 'silent'
    })
    const files = new Map(out.outputFiles.map((f) => [f.path.replace(/^.*\//, ''), f.text]))
    const entry = 'index.js'
    // Everything the entry loads before any dynamic import.
    const staticClosure = new Set<string>()
    const visit = (name: string): void => {
      if (staticClosure.has(name)) return
      staticClosure.add(name)
      for (const m of files.get(name)?.matchAll(/(?:^|\n)import[^;]*?from\s*"\.\/([^"]+)"/g) ?? []) visit(m[1])
    }
    visit(entry)
    const eager = [...staticClosure].map((n) => files.get(n) ?? '').join('\n')
    const all = [...files.values()].join('\n')
    for (const marker of ['LineCounter', 'Unresolved alias', 'registerOperator', 'does not match schema']) {
      expect(all).toContain(marker) // the marker is real: it is in the lazy chunks
      expect(eager).not.toContain(marker)
    }
    expect(files.get(entry)).toMatch(/import\("\.\/parser-/)
  })

  it('loadWorkflows() and loadWorkflowParser() resolve to working functions (no eval: runs under Node 20 as in the browser)', async () => {
    const { parseWorkflow } = await loadWorkflowParser()
    const m = await loadWorkflows()
    expect(m.parseWorkflow).toBe(parseWorkflow)
    const r = m.parseWorkflow('name: x\nsteps:\n  - { id: a, capabilities: [echo], when: "task.n > 1" }\n')
    expect(r.ok).toBe(true)
    expect(typeof m.createWorkflowEngine).toBe('function')
  })
})
