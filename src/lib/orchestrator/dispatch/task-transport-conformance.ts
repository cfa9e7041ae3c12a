/** One conformance suite every `TaskTransport` implementation runs (automerge-repo style). */
import { describe, expect, it } from 'vitest'
import type { TaskMessage } from './task-protocol.ts'
import type { TaskTransport } from './task-transport.ts'

/** Two connected transports, and a way to make `b` disappear. */
export interface TransportPair {
  a: TaskTransport
  b: TaskTransport
  killB(): Promise<void> | void
  teardown(): Promise<void>
}

const next = (t: TaskTransport, n = 1): Promise<Array<[string, TaskMessage]>> =>
  new Promise((resolve) => {
    const got: Array<[string, TaskMessage]> = []
    const off = t.onMessage((from, m) => {
      got.push([from, m])
      if (got.length === n) {
        off()
        resolve(got)
      }
    })
  })

/** Run the suite against `setup`. */
export function runTaskTransportConformance(name: string, setup: () => Promise<TransportPair>): void {
  describe(`TaskTransport conformance: ${name}`, () => {
    it('delivers messages both ways, in order, with the sender id', async () => {
      const p = await setup()
      const atB = next(p.b, 3)
      for (let i = 1; i <= 3; i++) await p.a.send(p.b.self, { type: 'lease-renew', rid: `r${i}`, leaseMs: i })
      expect((await atB).map(([from, m]) => [from, m.rid])).toEqual([
        [p.a.self, 'r1'],
        [p.a.self, 'r2'],
        [p.a.self, 'r3']
      ])
      const atA = next(p.a)
      await p.b.send(p.a.self, { type: 'accept', rid: 'r1', leaseMs: 5 })
      expect((await atA)[0]).toEqual([p.b.self, { type: 'accept', rid: 'r1', leaseMs: 5 }])
      await p.teardown()
    })

    it('refuses to send an invalid message', async () => {
      const p = await setup()
      await expect(p.a.send(p.b.self, { type: 'accept', rid: 'bad rid with spaces', leaseMs: 1 } as TaskMessage)).rejects.toThrow()
      await p.teardown()
    })

    it('survives a throwing handler and reports a closed peer', async () => {
      const p = await setup()
      p.b.onMessage(() => {
        throw new Error('listener bug')
      })
      const ok = next(p.b)
      const closed = new Promise<string>((resolve) => {
        p.a.onPeerClosed(resolve)
      })
      await p.a.send(p.b.self, { type: 'cancel', rid: 'c1' })
      expect((await ok)[0][1].rid).toBe('c1')
      await p.killB()
      expect(await closed).toBe(p.b.self)
      await p.teardown()
    })
  })
}
