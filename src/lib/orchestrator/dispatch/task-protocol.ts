/**
 * `/zerostate/task/2.0.0`: offers, leases, results and agent-fetch between a
 * submitter and a donor. One schema, a discriminated union on `type`; every
 * message carries `rid`, the id of the request it belongs to, so many requests
 * share one long-lived stream.
 *
 * Inputs, outputs and agent modules too large for one frame (or bytes, which
 * JSON cannot carry) travel as a core payload (`core/payload.ts`): the offer,
 * result or agent-payload message carries its descriptor (size, kind, sha-256,
 * inline when small) and `chunk` messages with the same `rid` follow: the input
 * after the donor's `accept`, the output right after the `result`, the module
 * right after `agent-payload`. The receiver acknowledges every few chunks
 * (`chunk-ack`) and the sender keeps at most a window of chunks unacknowledged, so
 * a large transfer never fills the connection's buffers ahead of other streams
 * (pings, other tasks). 2.0.0: `agent-chunk` gave way to that scheme.
 */
import * as v from 'valibot'
import { defineProtocol, PayloadChunkEntries, PayloadDescriptorSchema, SpanEnvelopeSchema, SpanSealSchema, TRACEPARENT_PATTERN } from '../../core/index.ts'
import { ToolScopeSchema } from '../../runtime/index.ts'

/** Protocol id. */
export const TASK_PROTOCOL_ID = '/zerostate/task/2.0.0'
/** One frame's cap (a WebRTC message); larger inputs and outputs travel as chunked payloads. */
export const TASK_MAX_FRAME_BYTES = 64 * 1024
/** Inputs and outputs whose JSON is at most this many bytes travel inside the offer or result itself. */
export const TASK_INLINE_JSON_BYTES = 32 * 1024

const rid = v.pipe(v.string(), v.regex(/^[A-Za-z0-9:#._-]{1,128}$/))
const id = v.pipe(v.string(), v.minLength(1), v.maxLength(128))
const hex64 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/))
const ms = v.pipe(v.number(), v.finite(), v.minValue(0))
/** W3C trace context of the submitter's dispatch attempt (optional: peers without tracing omit it, older ones drop it). */
const traceparent = v.optional(v.pipe(v.string(), v.maxLength(55), v.regex(TRACEPARENT_PATTERN)))
/** The donor's spans of the step (core/trace; each span checked when verified), bounded to fit one frame with the result; a 'spans-seal' signs them after. */
const spans = v.optional(SpanEnvelopeSchema)

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
    /** The input when it is small JSON; otherwise `payload` describes it. */
    input: v.optional(v.unknown()),
    /** The input as a payload: bytes, or JSON too large for the offer (chunks follow the donor's accept). */
    payload: v.optional(PayloadDescriptorSchema),
    /** Epoch ms after which the result is useless. */
    deadline: ms,
    /** Expected sha-256 of the module bytes, when the submitter knows it. */
    moduleSha256: v.optional(hex64),
    /** Peers that hold the agent's bytes. */
    holders: v.optional(v.pipe(v.array(id), v.maxLength(8))),
    traceparent,
    /** What the submitter lets the step's agent touch through tools (TaskRequest.tools, issue 14). */
    tools: v.optional(ToolScopeSchema),
    /**
     * The submitter's profile key and its proof over the submitter's peer id (trust/peer-key.ts), so the donor
     * keys the step by user even before the submitter's presence reached it (a tab reloaded under a new peer id
     * re-offers its steps at once). Optional: older submitters do not send it, older donors drop it.
     */
    user: v.optional(
      v.object({
        publicKey: v.pipe(v.string(), v.maxLength(80)),
        keyProof: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{86}$/))
      })
    )
  }),
  v.object({ type: v.literal('accept'), rid, leaseMs: ms }),
  v.object({
    type: v.literal('decline'),
    rid,
    reason: v.picklist(DECLINE_REASONS),
    message: v.optional(v.pipe(v.string(), v.maxLength(500))),
    /**
     * After an accept: the donor hands the step back (its tab went to the background or is being frozen, issue 16),
     * so the submitter re-routes it now instead of waiting for the lease to run out. Optional: an older submitter
     * drops the field and reads a decline, which also moves the step on.
     */
    released: v.optional(v.literal(true))
  }),
  v.object({ type: v.literal('lease-renew'), rid, leaseMs: ms }),
  /** Text an llm-prompt agent generated so far, piece `seq` (0, 1, …), streamed while it runs (issue 14). */
  v.object({ type: v.literal('tokens'), rid, seq: v.pipe(v.number(), v.integer(), v.minValue(0)), text: v.pipe(v.string(), v.maxLength(4096)) }),
  v.object({
    type: v.literal('result'),
    rid,
    /** The output when it is small JSON; otherwise `payload` describes it and chunks follow. */
    output: v.optional(v.unknown()),
    payload: v.optional(PayloadDescriptorSchema),
    ms,
    spans
  }),
  /** One chunk of the payload announced by the message with the same `rid`. */
  v.object({ type: v.literal('chunk'), rid, ...PayloadChunkEntries }),
  /** Flow control: the receiver has taken chunks up to `next` (exclusive); the sender keeps a bounded window beyond it. */
  v.object({ type: v.literal('chunk-ack'), rid, next: PayloadChunkEntries.index }),
  v.object({ type: v.literal('error'), rid, name: v.pipe(v.string(), v.maxLength(100)), message: v.pipe(v.string(), v.maxLength(2000)), spans }),
  v.object({ type: v.literal('cancel'), rid }),
  /** A donor's signature over the span bundles it sent this submitter (core/trace wire.ts). */
  v.object({ type: v.literal('spans-seal'), rid, seal: SpanSealSchema }),
  v.object({ type: v.literal('agent-fetch'), rid, agentId: hex64 }),
  /** The module of an agent-fetch: its descriptor (`kind: 'bytes'`); chunks follow. */
  v.object({ type: v.literal('agent-payload'), rid, agentId: hex64, payload: PayloadDescriptorSchema }),
  v.object({ type: v.literal('agent-missing'), rid, agentId: hex64 }),
  /** A submitter's signed receipt for a verified result, sent to the donor that keeps it (checked by trust/). */
  v.object({
    type: v.literal('receipt'),
    rid,
    receipt: v.pipe(
      v.record(v.string(), v.unknown()),
      v.check((r) => Object.keys(r).length <= 16)
    )
  })
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
