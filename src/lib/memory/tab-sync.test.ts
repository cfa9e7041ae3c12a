import { describe, it, expect, afterEach } from 'vitest'
import * as Y from 'yjs'
import { createMemoryLayer, type MemoryLayer } from './layer.ts'
import { TabSync } from './tab-sync.ts'
import { Counters } from '../core/index.ts'
import { fakeSha, newIdentity, until } from './test-helpers.ts'

// Node's BroadcastChannel spans the process, like a browser's spans a profile's tabs.
const open: MemoryLayer[] = []
afterEach(async () => {
  while (open.length > 0) await open.pop()!.stop()
})

async function tab(prefix: string) {
  const l = createMemoryLayer({ identity: await newIdentity(), persistence: 'none', dbPrefix: prefix, limits: { resyncIntervalMs: 0 } })
  await l.start()
  open.push(l)
  return l
}

describe('tabs of one profile', () => {
  it("see each other's writes live: memory, registry, journal, private namespaces", async () => {
    const a = await tab('tabs1:')
    const b = await tab('tabs1:')
    const other = await tab('another-profile:')
    await a.memory.set('notes', 'k', 'from a')
    await until(() => b.memory.get('notes', 'k') === 'from a')
    await b.memory.createNamespace('mine', { mode: 'private' })
    await b.memory.set('mine', 'p', 1)
    await until(() => a.memory.get('mine', 'p') === 1)
    await a.registry.publish({ id: 'tabbed', manifest: { name: 'T' }, moduleSha256: fakeSha(1) })
    await until(() => b.registry.list().length === 1)
    await b.journal.put({ id: 'task', status: 'running', createdAt: 1, updatedAt: 1, steps: [] })
    await until(() => a.journal.get('task')?.status === 'running')
    expect(other.memory.keys('notes')).toEqual([])
    expect(other.registry.list()).toEqual([])
  })

  it('a tab opened later catches up from the open ones', async () => {
    const a = await tab('tabs2:')
    await a.memory.set('n', 'k', 1)
    const b = await tab('tabs2:')
    await until(() => b.memory.get('n', 'k') === 1)
  })

  it('drops and counts invalid messages and hostile updates without throwing', async () => {
    const doc = new Y.Doc()
    const counters = new Counters('tabs')
    const sync = new TabSync('tabs3:d', doc, { counters })
    const bc = new BroadcastChannel('tabs3:d')
    bc.postMessage({ type: 'update', from: 'x' }) // missing bytes
    bc.postMessage('garbage')
    bc.postMessage({ type: 'update', from: 'x', update: new Uint8Array([1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0]) })
    const good = new Y.Doc()
    good.getMap('m').set('ok', true)
    bc.postMessage({ type: 'update', from: 'x', update: Y.encodeStateAsUpdate(good) })
    await until(() => doc.getMap('m').get('ok') === true)
    expect(counters.get('invalidMessages')).toBe(2)
    expect(counters.get('rejectedUpdates')).toBe(1)
    bc.close()
    sync.destroy()
  })
})
