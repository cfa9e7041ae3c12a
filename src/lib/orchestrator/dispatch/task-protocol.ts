/**
 * `/zerostate/task/1.0.0`: offers, leases, results and agent-fetch between a
 * submitter and a donor. One schema, a discriminated union on `type`; every
 * message carries `rid`, the id of the request it belongs to, so many requests
 * share one long-lived stream.
 */
import * as v from 'valibot'
import { defineProtocol } from '../../core/index.ts'

/** Protocol id. */
export const TASK_PROTOCOL_ID = '/zerostate/task/1.0.0'
/** One frame's cap; inputs and outputs larger than this need another path. */
export const TASK_MAX_FRAME_BYTES = 64 * 1024
/** Raw bytes per agent-fetch chunk: 9 KiB, i.e. 12 KiB of base64. */
export const AGENT_CHUNK_BYTES = 9 * 1024

const rid = v.pipe(v.string(), v.regex(/^[A-Za-z0-9:#._-]{1,128}$/))
const id = v.pipe(v.string(), v.minLength(1), v.maxLength(128))
const hex64 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/))
const ms = v.pipe(v.number(), v.finite(), v.minValue(0))

/** Why a donor declines an offer. */
export const DECLINE_REASONS = ['full', 'no-agent', 'expired', 'invalid', 'stopped'] as const
/** Why a donor declines an offer. */
export type DeclineReason = (typeof DECLINE_REASONS)[number]

/** Every message of the task protocol. */
export const TaskMessageSchema = v.variant('type', [
  v.object({
    type: v.literal('offer'),
    rid,
    taskId: id,
    stepId: id,
    attempt: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)),
    /** Same for every attempt of a step: a donor runs it at most once at a time. */
    idempotencyKey: id,
    agentId: hex64,
    input: v.unknown(),
    /** Epoch ms after which the result is useless. */
    deadline: ms,
    /** Expected sha-256 of the module bytes, when the submitter knows it. */
    moduleSha256: v.optional(hex64),
    /** Peers that hold the agent's bytes. */
    holders: v.optional(v.pipe(v.array(id), v.maxLength(8)))
  }),
  v.object({ type: v.literal('accept'), rid, leaseMs: ms }),
  v.object({ type: v.literal('decline'), rid, reason: v.picklist(DECLINE_REASONS), message: v.optional(v.pipe(v.string(), v.maxLength(500))) }),
  v.object({ type: v.literal('lease-renew'), rid, leaseMs: ms }),
  v.object({ type: v.literal('result'), rid, output: v.unknown(), ms }),
  v.object({ type: v.literal('error'), rid, name: v.pipe(v.string(), v.maxLength(100)), message: v.pipe(v.string(), v.maxLength(2000)) }),
  v.object({ type: v.literal('cancel'), rid }),
  v.object({ type: v.literal('agent-fetch'), rid, agentId: hex64 }),
  v.object({
    type: v.literal('agent-chunk'),
    rid,
    index: v.pipe(v.number(), v.integer(), v.minValue(0)),
    count: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(4096)),
    totalBytes: v.pipe(v.number(), v.integer(), v.minValue(0)),
    /** sha-256 hex of the whole module. */
    sha256: hex64,
    data: v.pipe(v.string(), v.maxLength((AGENT_CHUNK_BYTES * 4) / 3 + 4), v.regex(/^[A-Za-z0-9+/]*={0,2}$/))
  }),
  v.object({ type: v.literal('agent-missing'), rid, agentId: hex64 })
])
/** A message of the task protocol. */
export type TaskMessage = v.InferOutput<typeof TaskMessageSchema>
/** Messages by type. */
export type TaskMessageOf<T extends TaskMessage['type']> = Extract<TaskMessage, { type: T }>

/** The protocol definition (schema + frame cap). */
export const taskProtocolDefinition = defineProtocol(TASK_PROTOCOL_ID, TaskMessageSchema, { maxFrameBytes: TASK_MAX_FRAME_BYTES })

/** Validate a message from outside; undefined when invalid (the caller drops and counts). */
export function parseTaskMessage(value: unknown): TaskMessage | undefined {
  const res = v.safeParse(TaskMessageSchema, value)
  return res.success ? res.output : undefined
}
