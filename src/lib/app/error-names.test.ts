// Errors are told apart by name across workers, the wire and the journal. Names are
// literals (`override readonly name = 'X'`), not `constructor.name`, so a minified build
// keeps them: every exported error class must carry its own exported name.
import { describe, expect, it } from 'vitest'
import * as core from '../core/index.ts'
import * as memory from '../memory/index.ts'
import * as mesh from '../mesh/index.ts'
import * as orchestrator from '../orchestrator/index.ts'
import * as runtime from '../runtime/index.ts'

const modules = { core, mesh, memory, runtime, orchestrator }

describe('error names', () => {
  for (const [room, mod] of Object.entries(modules)) {
    const errors = Object.entries(mod).filter(([, v]) => typeof v === 'function' && (v as { prototype?: unknown }).prototype instanceof Error) as Array<
      [string, new (message?: string) => Error]
    >
    it(`${room}: every exported error class has its own literal name (${errors.length} classes)`, () => {
      expect(errors.length).toBeGreaterThan(2)
      for (const [exported, Ctor] of errors) {
        let e: Error
        try {
          e = new Ctor('x')
        } catch {
          continue // a class that needs structured arguments is checked where it is built
        }
        expect(e.name, `${room}.${exported}`).toBe(exported)
      }
    })
  }
})
