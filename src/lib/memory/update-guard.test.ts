import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import { Worker } from 'node:worker_threads'
import { UpdateKeyScanner, checkUpdate, checkStateVector } from './update-guard.ts'
import { RejectedUpdateError, UpdateDeadlineError } from './errors.ts'
import { WorkerUpdateChecker, type CheckWorker } from './update-checker.ts'
import { nodeUpdateChecker } from './node-update-checker.ts'
import { nodeWorkerHandle } from '../core/index.ts'
import { rng } from './test-helpers.ts'

/** A doc exercising every content type our guard must accept. */
function richDoc(seed: number): Y.Doc {
  const r = rng(seed)
  const doc = new Y.Doc()
  const text = doc.getText('t')
  text.insert(0, 'hello wörld 🌍')
  text.format(0, 5, { bold: true })
  text.insertEmbed(3, { image: 'x.png' })
  text.delete(1, 2)
  const map = doc.getMap('m')
  map.set('num', r())
  map.set('big', 2 ** 40)
  map.set('neg', -5)
  map.set('str', 'x'.repeat(300))
  map.set('obj', { a: [1, { b: null }], c: true, d: false })
  map.set('bin', new Uint8Array([1, 2, 3]))
  map.set('bigint', 12345678901234567890n)
  const nested = new Y.Map()
  map.set('nested', nested)
  nested.set('k', 'v')
  const arr = doc.getArray('a')
  arr.push([1, 'two', { three: 3 }, new Uint8Array(4)])
  arr.delete(1, 1)
  const xml = doc.getXmlFragment('x')
  const el = new Y.XmlElement('p')
  xml.push([el])
  el.setAttribute('class', 'c')
  el.push([new Y.XmlText('hi')])
  xml.push([new Y.XmlHook('hook') as unknown as Y.XmlElement])
  map.delete('str')
  return doc
}

describe('update guard (structural walk of v1 updates)', () => {
  it('accepts every update Yjs itself produces, including incremental ones and state vectors', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const doc = richDoc(seed)
      const updates: Uint8Array[] = []
      doc.on('update', (u: Uint8Array) => updates.push(u))
      doc.getText('t').insert(0, 'more')
      doc.getMap('m').set('later', seed)
      doc.getArray('a').delete(0, 1)
      expect(() => checkUpdate(Y.encodeStateAsUpdate(doc))).not.toThrow()
      for (const u of updates) expect(() => checkUpdate(u)).not.toThrow()
      expect(() => checkStateVector(Y.encodeStateVector(doc))).not.toThrow()
      expect(checkUpdate(Y.encodeStateAsUpdate(doc)).roots).toEqual(new Set(['t', 'm', 'a', 'x']))
    }
  })

  it('refuses root types outside the allowed set', () => {
    const doc = new Y.Doc()
    doc.getMap('evil').set('x', 1)
    expect(() => checkUpdate(Y.encodeStateAsUpdate(doc), new Set(['kv']))).toThrow(RejectedUpdateError)
  })

  it('refuses crafted payloads at once: huge counts, truncation, trailing bytes, the yjs#687 bytes, subdocs', () => {
    const valid = Y.encodeStateAsUpdate(richDoc(1))
    const crafted = [
      new Uint8Array([]),
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]), // 2^32 clients
      new Uint8Array([1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0]), // 2^32 structs in 2 bytes
      new Uint8Array([1, 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0]), // GC of length 2^49
      new Uint8Array([1, 1, 1, 0, 8, 1, 1, 1, 'a'.charCodeAt(0), 0xff, 0xff, 0xff, 0x7f]), // Any with 2^28 values
      Buffer.from('00010000000001000100010200001602000001fdffffffff7f0000', 'hex'), // yjs#687 (v2 bytes)
      valid.subarray(0, valid.length - 3),
      new Uint8Array([...valid, 0]),
      new Uint8Array(Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff))
    ]
    const subdoc = new Y.Doc()
    subdoc.getMap('m').set('d', new Y.Doc())
    crafted.push(Y.encodeStateAsUpdate(subdoc))
    const t = performance.now()
    for (const c of crafted) expect(() => checkUpdate(c), Buffer.from(c).toString('hex').slice(0, 40)).toThrow(RejectedUpdateError)
    expect(performance.now() - t).toBeLessThan(500) // linear walks: milliseconds, even on a loaded CI machine
  })

  it('fuzz: whatever the guard accepts, Yjs applies promptly; mutations never hang it', () => {
    const r = rng(99)
    const base = [Y.encodeStateAsUpdate(richDoc(3)), Y.encodeStateAsUpdate(richDoc(4))]
    let accepted = 0
    for (let i = 0; i < 3000; i++) {
      const src = base[i % 2]!
      const m = new Uint8Array(src)
      const flips = 1 + Math.floor(r() * 4)
      for (let f = 0; f < flips; f++) m[Math.floor(r() * m.length)] = Math.floor(r() * 256)
      let ok = true
      try {
        checkUpdate(m)
      } catch (err) {
        expect(err).toBeInstanceOf(RejectedUpdateError)
        ok = false
      }
      if (!ok) continue
      accepted++
      const t = performance.now()
      try {
        Y.applyUpdate(new Y.Doc(), m)
      } catch {
        /* Yjs may throw; it must not hang */
      }
      expect(performance.now() - t).toBeLessThan(500)
    }
    expect(accepted).toBeGreaterThan(0)
  })
})

describe('WorkerUpdateChecker', () => {
  it('accepts good updates and refuses ones Yjs throws on, in a worker thread', async () => {
    const checker = nodeUpdateChecker(5000)
    try {
      await expect(checker.check(Y.encodeStateAsUpdate(richDoc(5)))).resolves.toBeUndefined()
      await expect(checker.check(new Uint8Array([0xde, 0xad]))).rejects.toBeInstanceOf(RejectedUpdateError)
    } finally {
      checker.destroy()
    }
  })

  it('terminates and replaces a worker stuck on the yjs#687 payload, rejecting with UpdateDeadlineError', async () => {
    // A worker that feeds the bytes to Y.mergeUpdatesV2, which loops forever on them (yjs#687).
    const yjs = new URL('../../../node_modules/yjs/dist/yjs.cjs', import.meta.url).pathname
    const comlink = new URL('../../../node_modules/comlink/dist/umd/', import.meta.url).pathname
    const code = `const Y = require(${JSON.stringify(yjs)}); const { parentPort } = require('node:worker_threads');
      const { expose } = require(${JSON.stringify(`${comlink}comlink.js`)}); const nodeEndpoint = require(${JSON.stringify(`${comlink}node-adapter.js`)});
      expose({ check(update) { Y.mergeUpdatesV2([Y.encodeStateAsUpdateV2(new Y.Doc()), update]); return { ok: true } } }, nodeEndpoint(parentPort))`
    const spawn = (): CheckWorker => nodeWorkerHandle(new Worker(code, { eval: true }))
    const checker = new WorkerUpdateChecker(spawn, { deadlineMs: 300 })
    const hostile = Buffer.from('00010000000001000100010200001602000001fdffffffff7f0000', 'hex')
    const t = performance.now()
    const pending = [checker.check(hostile), checker.check(new Uint8Array([0]))]
    await expect(pending[0]).rejects.toBeInstanceOf(UpdateDeadlineError)
    await expect(pending[1]).rejects.toBeInstanceOf(UpdateDeadlineError) // queued behind it: a dead worker answers nobody
    expect(performance.now() - t).toBeLessThan(2000)
    expect(checker.replaced).toBe(1)
    checker.destroy()
  })
})

describe('WorkerUpdateChecker fallback', () => {
  it('a worker that cannot start marks the checker unavailable instead of refusing everything', async () => {
    const spawn = (): CheckWorker => {
      let onCrash: ((e: Error) => void) | undefined
      return {
        endpoint: {
          postMessage: () => {
            setTimeout(() => onCrash?.(new Error('404 worker script')), 5)
          },
          addEventListener: () => {},
          removeEventListener: () => {}
        },
        terminate: () => {},
        onCrash: (l) => {
          onCrash = l
        }
      }
    }
    const checker = new WorkerUpdateChecker(spawn, { deadlineMs: 1000 })
    checker.warm()
    await new Promise((r) => setTimeout(r, 50))
    expect(checker.available).toBe(false)
    await expect(checker.check(new Uint8Array([0, 0]))).resolves.toBeUndefined()
  })

  it('a worker that works stays strict after warming', async () => {
    const checker = nodeUpdateChecker(5000)
    checker.warm()
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (checker.available !== undefined) {
          clearInterval(t)
          resolve()
        }
      }, 10)
    })
    expect(checker.available).toBe(true)
    await expect(checker.check(new Uint8Array([0xde, 0xad]))).rejects.toBeInstanceOf(RejectedUpdateError)
    checker.destroy()
  })
})

describe('UpdateKeyScanner (the keys of an update as its chunks arrive)', () => {
  /** A doc of several clients writing map keys of two roots, with deletes and long values. */
  function mapDoc(): Uint8Array {
    const docs = [1, 2, 3].map((c) => {
      const d = new Y.Doc()
      d.clientID = c
      return d
    })
    for (const [c, d] of docs.entries()) {
      for (let i = 0; i < 40; i++) d.getMap('entries').set(`author${c}/k${i}`, { text: 'v'.repeat(i * 37), n: i })
      d.getMap('other').set(`o${c}`, 'x'.repeat(3000))
      d.getMap('entries').delete(`author${c}/k3`)
    }
    return Y.mergeUpdates(docs.map((d) => Y.encodeStateAsUpdate(d)))
  }

  const keysOf = (update: Uint8Array): string[] => [...checkUpdate(update).keys].flatMap(([root, keys]) => [...keys].map((k) => `${root}:${k}`)).sort()

  it('finds the keys checkUpdate finds, however the bytes are split', () => {
    const update = mapDoc()
    const want = keysOf(update)
    expect(want.length).toBeGreaterThan(120)
    for (const size of [1, 2, 7, 64, 1000, 4096, update.byteLength]) {
      const seen = new Set<string>()
      const scanner = new UpdateKeyScanner((root, key) => seen.add(`${root}:${key}`))
      for (let at = 0; at < update.byteLength; at += size) scanner.push(update.subarray(at, at + size))
      expect([...seen].sort(), `chunks of ${size}`).toEqual(want)
      expect(scanner.done).toBe(true)
    }
  })

  it('refuses at the key its admission throws on, before the rest of the update arrives', () => {
    const update = mapDoc()
    let keys = 0
    const scanner = new UpdateKeyScanner(() => {
      if (++keys > 10) throw new RejectedUpdateError('over quota')
    })
    let at = 0
    const size = 256
    expect(() => {
      for (; at < update.byteLength; at += size) scanner.push(update.subarray(at, at + size))
    }).toThrow('over quota')
    expect(keys).toBe(11)
    expect(at).toBeLessThan(update.byteLength / 3)
    expect(scanner.done).toBe(true)
    // Stopped: later bytes are not read.
    scanner.push(update.subarray(at))
    expect(keys).toBe(11)
  })

  it('gives up without a verdict on a struct larger than its carry, or on bytes it cannot read', () => {
    const doc = new Y.Doc()
    doc.getMap('entries').set('big', 'x'.repeat(50_000))
    doc.getMap('entries').set('after', 1)
    const update = Y.encodeStateAsUpdate(doc)
    const seen: string[] = []
    const small = new UpdateKeyScanner((_r, k) => seen.push(k), {}, 10_000)
    for (let at = 0; at < update.byteLength; at += 4096) small.push(update.subarray(at, at + 4096))
    expect(small.done).toBe(true)
    expect(seen).not.toContain('after')
    const junk = new UpdateKeyScanner(() => {
      throw new Error('no key expected')
    })
    // One struct under root "a" with content type 31, which no Yjs version has.
    junk.push(Uint8Array.from([1, 1, 5, 0, 0x1f, 1, 1, 0x61, 0]))
    expect(junk.done).toBe(true)
  })
})
