/**
 * Property-based fuzzing of agent manifests (issue 11, beyond the list): manifests arrive
 * from the registry and agent-fetch, i.e. from strangers. checkManifest never throws (it
 * lists issues); parseManifest returns a valid, bounded manifest or throws
 * InvalidManifestError, never anything else.
 */
import fc from 'fast-check'
import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { MAX_MANIFEST_BYTES } from './constants.ts'
import { InvalidManifestError } from './errors.ts'
import { AgentManifestSchema, checkManifest, parseManifest } from './manifest.ts'

const manifestish = fc.oneof(
  fc.record(
    {
      name: fc.oneof(fc.constant('word-count'), fc.string({ maxLength: 80 })),
      version: fc.oneof(fc.constant('1.0.0'), fc.string({ maxLength: 12 })),
      description: fc.string({ maxLength: 3000 }),
      capabilities: fc.array(fc.oneof(fc.constant('word-count'), fc.string({ maxLength: 70 })), { maxLength: 40 }),
      abi: fc.constantFrom('json-v1', 'wasi-preview1', 'native'),
      input: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
      output: fc.jsonValue({ maxDepth: 3 }),
      price: fc.oneof(fc.double({ min: 0, max: 100, noNaN: true }), fc.double(), fc.string()),
      limits: fc.record({ memoryMiB: fc.oneof(fc.integer({ min: 1, max: 4096 }), fc.integer()), timeMs: fc.integer() }, { requiredKeys: [] }),
      author: fc.oneof(fc.stringMatching(/^ed25519:[A-Za-z0-9_-]{43}$/), fc.string()),
      signature: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{86}$/), fc.string())
    },
    { requiredKeys: ['name', 'version', 'capabilities', 'abi', 'author', 'signature'] }
  ),
  fc.anything()
)

describe('manifests under fuzzing', () => {
  it('checkManifest never throws: a list of issues, empty only for a valid manifest', () => {
    fc.assert(
      fc.property(manifestish, (m) => {
        const issues = checkManifest(m)
        expect(Array.isArray(issues)).toBe(true)
        for (const i of issues) expect(typeof i.message).toBe('string')
      }),
      { numRuns: 1000 }
    )
  })

  it('parseManifest: a valid manifest within the byte cap, or InvalidManifestError', () => {
    fc.assert(
      fc.property(manifestish, (m) => {
        try {
          const out = parseManifest(m)
          expect(v.safeParse(AgentManifestSchema, out).success).toBe(true)
          expect(new TextEncoder().encode(JSON.stringify(out)).byteLength).toBeLessThanOrEqual(MAX_MANIFEST_BYTES + 1024)
        } catch (err) {
          if (!(err instanceof InvalidManifestError)) throw new Error(`untyped ${(err as Error)?.name}: ${(err as Error)?.message}`)
        }
      }),
      { numRuns: 1000 }
    )
  })
})
