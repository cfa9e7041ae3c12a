/**
 * Registry attacks of issue 11 items 1, 4 and 5, for the hostile peer: records built with
 * the app's own code (Registry, signPackage, the work stamp) under throwaway keys, and a
 * raw `/zerostate/sync/2.0.0` stream that pushes a Yjs update into a tab's registry doc.
 *
 *   await pushRegistryUpdate(h, tabId, 'update' | 'step2', bytes)   // one payload, chunked if large
 *   deepJsonRecordUpdate(author, depth)                            // item 1: ContentJSON nested `depth` deep
 *   await overQuotaUpdate(n)                                       // item 5: n entries by one fresh key
 *   await takeoverUpdate({ keys, perKey, capability, holder })      // item 4: valid, paid entries at price 0
 */
import { register } from 'tsx/esm/api'

register()
await import('../../src/lib/core/polyfills.ts')
const Y = await import('yjs')
const { frame, SYNC_PROTOCOL } = await import('./hostile-peer.mjs')
const { payloadMessages } = await import('../../src/lib/memory/sync-protocol.ts')
const { Registry } = await import('../../src/lib/memory/registry.ts')
const { DEFAULT_LIMITS } = await import('../../src/lib/memory/constants.ts')
const { entryKey } = await import('../../src/lib/memory/registry-schema.ts')
const { jsonContentUpdate, nestedJson, newIdentity } = await import('../../src/lib/memory/test-helpers.ts')
const { signPackage } = await import('../../src/lib/runtime/manifest.ts')
const { signJson } = await import('../../src/lib/core/index.ts')
const { mintWork } = await import('../../src/lib/memory/publish-work.ts')

let transfer = 1000
/** Open a sync stream to `tabId` for the registry doc and push one update as `kind`. */
export async function pushRegistryUpdate(h, tabId, kind, bytes) {
  const raw = await h.openRaw(tabId, SYNC_PROTOCOL)
  raw.write(frame(JSON.stringify({ type: 'open', doc: 'registry' })))
  for (const m of payloadMessages(kind, bytes, transfer++)) if (!raw.write(frame(JSON.stringify(m)))) break
  return raw
}

/** Item 1: a registry record for `author` whose manifest is JSON nested `depth` deep, as ContentJSON. */
export function deepJsonRecordUpdate(author, depth = 20_000) {
  const text =
    `{"kind":"zerostate/registry-entry/1","id":"deep","author":"${author}","manifest":${nestedJson(depth)},` +
    `"moduleSha256":"${'0'.repeat(64)}","version":1,"publishedAt":${Date.now()},"signature":"${'A'.repeat(86)}","work":"0"}`
  return jsonContentUpdate('entries', entryKey(author, 'deep'), [text])
}

/** Item 5: `n` validly signed entries by one fresh key, in one update. */
export async function overQuotaUpdate(n) {
  const identity = await newIdentity()
  const doc = new Y.Doc()
  const entries = doc.getMap('entries')
  const records = []
  for (let i = 0; i < n; i++) {
    const body = {
      kind: 'zerostate/registry-entry/1',
      id: `q${i}`,
      author: identity.publicKey,
      manifest: { name: `q${i}`, capabilities: ['word-count'], blob: 'x'.repeat(200) },
      moduleSha256: (i + 1).toString(16).padStart(64, '0'),
      version: 1,
      publishedAt: Date.now()
    }
    const signature = await signJson(identity, body)
    records.push([entryKey(identity.publicKey, body.id), { ...body, signature, work: await mintWork(signature, 4) }])
  }
  doc.transact(() => {
    for (const [k, r] of records) entries.set(k, r)
  })
  return { update: Y.encodeStateAsUpdate(doc), author: identity.publicKey }
}

/**
 * Item 4: `perKey` entries from each of `keys` fresh keys, each a real signed package claiming
 * `capability` at price 0 (ids the app's catalog accepts), with the tabs' proof of work, held by `holder`.
 */
export async function takeoverUpdate({ keys = 2, perKey = 4, capability = 'word-count', holder }) {
  const doc = new Y.Doc()
  const authors = []
  for (let k = 0; k < keys; k++) {
    const identity = await newIdentity()
    authors.push(identity.publicKey)
    const reg = new Registry(doc, identity, DEFAULT_LIMITS)
    for (let i = 0; i < perKey; i++) {
      const wasm = new TextEncoder().encode(`not a module ${k}/${i}`)
      const { id, manifest } = await signPackage(
        identity,
        {
          name: `cheap-${capability}-${k}-${i}`,
          version: '1.0.0',
          description: `the cheapest ${capability}`,
          capabilities: [capability],
          abi: 'json-v1',
          price: 0
        },
        wasm
      )
      const { createHash } = await import('node:crypto')
      await reg.publish({ id, manifest, moduleSha256: createHash('sha256').update(wasm).digest('hex'), holders: [holder] })
    }
  }
  return { update: Y.encodeStateAsUpdate(doc), authors }
}
