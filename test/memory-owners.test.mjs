// Owners and writers of shared namespaces, and encrypted-namespace keys, across three real tabs
// (issue 10 items 10 and 11). A creates a namespace; B is not a writer: the API refuses B, and a
// record B pushes straight onto the sync protocol is ignored and counted by A and C; A grants B
// and B's write lands everywhere. A wrong key is refused with its sentence next to the field.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import * as Y from 'yjs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import canonicalize from 'canonicalize'
import { startMesh, waitForFullMesh } from './harness.mjs'

const b64url = (bytes) => Buffer.from(bytes).toString('base64url')

/** A Yjs update of a namespace doc holding one entry signed by `key` (a profile key that is not a writer). */
async function hostileUpdate(nsId, key) {
  const writer = `ed25519:${b64url(key.publicKey.raw)}`
  const payload = { kind: 'zerostate/memory-entry/1', ns: nsId, key: 'plan', writer, t: Date.now() + 60_000, value: '"hijacked"' }
  const signature = b64url(await key.sign(new TextEncoder().encode(canonicalize(payload))))
  const doc = new Y.Doc()
  doc.getMap('kv').set(`${writer}/plan`, { ...payload, signature })
  // A /zerostate/sync/2.0.0 update: a core payload descriptor with the bytes inline.
  const bytes = Buffer.from(Y.encodeStateAsUpdate(doc))
  return {
    type: 'update',
    id: 0,
    payload: { kind: 'bytes', size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex'), inline: bytes.toString('base64') }
  }
}

describe('namespace owners and writers across tabs', () => {
  let mesh
  let a, b, c
  before(async () => {
    mesh = await startMesh()
    ;[a, b, c] = await Promise.all([0, 1, 2].map(async () => mesh.newPeer({ context: await mesh.newContext() })))
    await waitForFullMesh([a, b, c], 20_000)
  })
  after(async () => {
    await mesh?.stop()
  })

  it("B's write is refused and counted on A and C until A grants B; then it lands everywhere", async () => {
    const [keyA, keyB] = await Promise.all([a, b].map((p) => p.evaluate(() => window.zerostate.publicKey)))
    await a.evaluate(async () => {
      await window.zerostate.memory.createNamespace('board', { mode: 'shared' })
      await window.zerostate.memory.set('board', 'plan', 'launch')
    })
    for (const p of [b, c]) await p.waitForFunction(() => window.zerostate.memory.get('board', 'plan') === 'launch', null, { timeout: 10_000, polling: 50 })

    // The Memory page shows the owner and the writers.
    await c.click('nav a[href="/memory"]') // client-side: the tab stays the same peer
    await c.click('[data-testid="namespace-row"][data-namespace="board"]')
    assert.equal(await c.getAttribute('[data-testid="namespace-owner"]', 'data-key'), keyA)
    await c.waitForSelector('[data-testid="namespace-writers-none"]')
    await c.waitForSelector('[data-testid="namespace-readonly"]')
    assert.equal(await c.locator('[data-testid="key-add"]').count(), 0)

    // The API refuses B ...
    const refused = await b.evaluate(() =>
      window.zerostate.memory.set('board', 'plan', 'abort').then(
        () => 'stored',
        (e) => e.name
      )
    )
    assert.equal(refused, 'NotWriterError')
    // ... and a stranger D goes around the API: a signed record of a non-writer, written straight onto the
    // sync protocol to A and C. (From D, not B: a raw stream from B would replace B's own sync channel for
    // that doc on A and C, which only tests the harness.)
    const d = await mesh.newPeer({ context: await mesh.newContext() })
    await waitForFullMesh([a, c, d], 20_000)
    const nsId = `${keyA}/board`
    const docName = `ns/${keyA.slice('ed25519:'.length)}/board`
    const update = await hostileUpdate(nsId, await generateKeyPair('Ed25519'))
    const targets = await Promise.all([a, c].map((p) => p.evaluate(() => window.zerostate.peerId)))
    const before = await Promise.all([a, c].map((p) => p.evaluate(() => window.zerostate.metrics()['memory.kv.writesRefused'] ?? 0)))
    await d.evaluate(
      async ({ targets, docName, update }) => {
        const enc = new TextEncoder()
        const frame = (msg) => {
          const body = enc.encode(JSON.stringify(msg))
          const prefix = []
          let n = body.byteLength
          while (n >= 0x80) {
            prefix.push((n & 0x7f) | 0x80)
            n >>>= 7
          }
          prefix.push(n)
          const out = new Uint8Array(prefix.length + body.byteLength)
          out.set(prefix)
          out.set(body, prefix.length)
          return out
        }
        const node = window.zerostate.mesh.libp2p
        for (const id of targets) {
          const conn = node.getConnections().find((x) => x.remotePeer.toString() === id && x.limits == null)
          const stream = await conn.newStream('/zerostate/sync/2.0.0')
          stream.send(frame({ type: 'open', doc: docName }))
          stream.send(frame(update))
        }
      },
      { targets, docName, update }
    )
    for (const [i, p] of [a, c].entries()) {
      await p.waitForFunction((n) => (window.zerostate.metrics()['memory.kv.writesRefused'] ?? 0) > n, before[i], { timeout: 10_000, polling: 50 })
      assert.equal(await p.evaluate(() => window.zerostate.memory.get('board', 'plan')), 'launch')
    }

    // A grants B: B's write lands everywhere, and C's page lists B as a writer.
    await a.evaluate((k) => window.zerostate.memory.grant('board', k), keyB)
    await b.waitForFunction(() => window.zerostate.memory.namespaces().find((n) => n.name === 'board')?.canWrite === true, null, { timeout: 10_000 })
    await b.evaluate(() => window.zerostate.memory.set('board', 'plan', 'go'))
    for (const p of [a, b, c]) await p.waitForFunction(() => window.zerostate.memory.get('board', 'plan') === 'go', null, { timeout: 10_000, polling: 50 })
    await c.waitForSelector(`[data-testid="namespace-writer"][data-key="${keyB}"]`, { timeout: 10_000 })
    for (const p of [a, b, c]) assert.deepEqual(p.__errors ?? [], [])
  })

  it('a wrong key is refused, with the sentence next to the field', async () => {
    await a.evaluate(async () => {
      await window.zerostate.memory.createNamespace('vault', { mode: 'encrypted', key: 'right passphrase' })
      await window.zerostate.memory.set('vault', 'secret', 42)
    })
    await c.waitForFunction(() => window.zerostate.memory.namespaces().some((n) => n.name === 'vault' && n.locked), null, { timeout: 10_000, polling: 50 })
    await c.click('[data-testid="namespace-row"][data-namespace="vault"]')
    await c.fill('[data-testid="unlock-key"]', 'not a key')
    await c.click('[data-testid="namespace-unlock"] button[type="submit"]')
    const error = await c.waitForSelector('[data-testid="unlock-error"]', { timeout: 15_000 })
    assert.match(await error.textContent(), /this key does not decrypt this namespace/i)
    assert.equal(await c.evaluate(() => window.zerostate.memory.namespaces().find((n) => n.name === 'vault')?.locked), true)
    await c.fill('[data-testid="unlock-key"]', 'right passphrase')
    await c.click('[data-testid="namespace-unlock"] button[type="submit"]')
    await c.waitForFunction(() => window.zerostate.memory.get('vault', 'secret') === 42, null, { timeout: 15_000, polling: 50 })
    await c.waitForSelector('[data-testid="key-row"][data-key="secret"]', { timeout: 10_000 })
  })
})
