/**
 * What keeps a large mesh's gossip affordable (issue 16, found by profiling the simulator):
 * copies of a message dropped before their signature is checked again, and a sample of
 * members (not all) answering a newcomer.
 */
import { describe, expect, it } from 'vitest'
import { gossipFastMsgId } from './gossip-validators.ts'

describe('gossipFastMsgId', () => {
  const from = Uint8Array.of(0, 36, 8, 1, 18, 32, 7, 7)
  it('is the same for every copy of one message (author and sequence number) and differs between messages', () => {
    const seqno = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 9)
    const a = gossipFastMsgId({ from, seqno })
    expect(gossipFastMsgId({ from: from.slice(), seqno: seqno.slice() })).toBe(a)
    expect(gossipFastMsgId({ from, seqno: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 10) })).not.toBe(a)
    expect(gossipFastMsgId({ from: Uint8Array.of(0, 36, 8, 1, 18, 32, 7, 8), seqno })).not.toBe(a)
    // No ambiguity between where the author ends and the sequence number starts.
    expect(gossipFastMsgId({ from: Uint8Array.of(1, 2), seqno: Uint8Array.of(3) })).not.toBe(
      gossipFastMsgId({ from: Uint8Array.of(1), seqno: Uint8Array.of(2, 3) })
    )
  })
  it('gives each message without author or sequence number a key of its own (never taken for a copy)', () => {
    expect(gossipFastMsgId({ seqno: Uint8Array.of(1) })).not.toBe(gossipFastMsgId({ seqno: Uint8Array.of(1) }))
    expect(gossipFastMsgId({ from })).not.toBe(gossipFastMsgId({ from }))
  })
})
