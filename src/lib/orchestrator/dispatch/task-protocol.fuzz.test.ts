/**
 * Property-based fuzzing of the task protocol's messages (issue 11, beyond the list): any
 * frame body decodes to a schema-valid message or fails with InvalidFrameError; parsing any
 * value never throws.
 */
import fc from 'fast-check'
import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { FrameTooLargeError, InvalidFrameError } from '../../core/index.ts'
import { TaskMessageSchema, parseTaskMessage, taskProtocolDefinition } from './task-protocol.ts'

const enc = new TextEncoder()
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/)
const rid = fc.oneof(fc.stringMatching(/^[A-Za-z0-9:#._-]{1,128}$/), fc.string())
const payload = fc.record({ kind: fc.constantFrom('json', 'bytes', 'text'), size: fc.oneof(fc.nat(), fc.integer()), sha256: fc.oneof(hex64, fc.string()) })
/** Messages near the schema: each type with fields right, wrong or missing. */
const taskish = fc.oneof(
  fc.record(
    {
      type: fc.constant('offer'),
      rid,
      taskId: fc.string({ maxLength: 140 }),
      stepId: fc.string({ maxLength: 140 }),
      attempt: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer()),
      idempotencyKey: fc.string({ maxLength: 140 }),
      agentId: fc.oneof(hex64, fc.string()),
      input: fc.jsonValue({ maxDepth: 4 }),
      payload,
      deadline: fc.oneof(fc.nat(), fc.double()),
      holders: fc.array(fc.string(), { maxLength: 10 })
    },
    { requiredKeys: ['type', 'rid'] }
  ),
  fc.record({ type: fc.constantFrom('accept', 'lease-renew'), rid, leaseMs: fc.oneof(fc.nat(), fc.double()) }),
  fc.record(
    { type: fc.constant('decline'), rid, reason: fc.constantFrom('full', 'no-agent', 'nope'), message: fc.string({ maxLength: 600 }) },
    { requiredKeys: ['type', 'rid', 'reason'] }
  ),
  fc.record(
    { type: fc.constant('result'), rid, output: fc.jsonValue({ maxDepth: 4 }), payload, ms: fc.oneof(fc.nat(), fc.double()) },
    { requiredKeys: ['type', 'rid'] }
  ),
  fc.record({ type: fc.constant('chunk'), rid, index: fc.oneof(fc.nat(), fc.integer()), data: fc.string() }),
  fc.record({ type: fc.constant('error'), rid, name: fc.string({ maxLength: 120 }), message: fc.string({ maxLength: 100 }) }),
  fc.record({ type: fc.constantFrom('cancel', 'agent-fetch', 'agent-missing', 'agent-payload', 'receipt', '__proto__'), rid, agentId: hex64 }),
  fc.jsonValue({ maxDepth: 5 })
)

describe('task protocol under fuzzing', () => {
  it('decode: any bytes give a schema-valid message or an InvalidFrameError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 2048 }),
          taskish.map((m) => enc.encode(JSON.stringify(m)))
        ),
        (bytes) => {
          try {
            expect(v.safeParse(TaskMessageSchema, taskProtocolDefinition.decode(bytes)).success).toBe(true)
          } catch (err) {
            if (!(err instanceof InvalidFrameError)) throw err
            if (bytes.byteLength > taskProtocolDefinition.maxFrameBytes) expect(err).toBeInstanceOf(FrameTooLargeError)
          }
        }
      ),
      { numRuns: 1000 }
    )
  })

  it('parseTaskMessage never throws, and what it returns encodes and decodes back', () => {
    fc.assert(
      fc.property(fc.oneof(taskish, fc.anything()), (value) => {
        const m = parseTaskMessage(value)
        if (m == null) return
        let bytes: Uint8Array
        try {
          bytes = taskProtocolDefinition.encode(m)
        } catch (err) {
          expect(err).toBeInstanceOf(FrameTooLargeError)
          return
        }
        expect(taskProtocolDefinition.decode(bytes)).toEqual(JSON.parse(JSON.stringify(m)))
      }),
      { numRuns: 1000 }
    )
  })
})
