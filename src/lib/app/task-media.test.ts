import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { IndexedDbTaskMedia, MAX_KEPT_MEDIA_BYTES, MEDIA_STORE_BYTES, mediaTypeOf } from './task-media.ts'

describe('IndexedDbTaskMedia', () => {
  it('keeps outputs per task and step across connections, refuses one over the cap, and drops the oldest past the total', async () => {
    const name = `media-${Math.random()}`
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3])
    const store = new IndexedDbTaskMedia(name)
    await store.put('t1', 's1', { bytes: png, mediaType: mediaTypeOf(png) })
    await store.put('t1', 's2', { bytes: new Uint8Array([1, 2]), mediaType: 'application/octet-stream' })
    // A new connection (a reload) reads them back.
    const again = new IndexedDbTaskMedia(name)
    const got = await again.get('t1')
    expect([...got.keys()].sort()).toEqual(['s1', 's2'])
    expect(got.get('s1')).toEqual({ bytes: png, mediaType: 'image/png' })
    expect((await again.get('t2')).size).toBe(0)
    await expect(again.put('t3', 's', { bytes: new Uint8Array(MAX_KEPT_MEDIA_BYTES + 1), mediaType: 'image/png' })).rejects.toThrow(/larger than the 8\.0 MiB/)
    const n = Math.ceil(MEDIA_STORE_BYTES / MAX_KEPT_MEDIA_BYTES) + 1
    for (let i = 0; i < n; i++) await again.put(`big${i}`, 's', { bytes: new Uint8Array(MAX_KEPT_MEDIA_BYTES), mediaType: 'image/png' })
    expect((await again.get('t1')).size).toBe(0) // the oldest went first
    expect((await again.get('big0')).size).toBe(0)
    expect((await again.get(`big${n - 1}`)).size).toBe(1)
  })
})
